"""`mawaeed verify SERVICE [--from POS]`: walk a service's log and recompute its hash chain
(shared.eventstore.chain_hash): the first position where it breaks (exit 1), else "N events, chain intact"."""
import sqlalchemy as sa

from services.cli import LOGGED, CliError
from services.cli.migrate import locate
from shared.eventstore import make_engine, verify_chain


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a service's log against its hash chain: was any event changed?")
    p.add_argument("service", metavar="SERVICE", help=f"one of: {', '.join(LOGGED)}")
    p.add_argument("--from", dest="start", type=int, default=1, metavar="POS",
                   help="start at this position, taking the hash before it as written (default: 1)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.service not in LOGGED:
        raise CliError(f"no service {args.service} has a log; choose from {', '.join(LOGGED)}")
    url, schema, where, there = locate(args.service)
    if not there:
        raise CliError(f"no {args.service} database at {where}: point MAWAEED_DATA_DIR or DATABASE_URL at it")
    # SQLite: a plain engine, whose reads take no write lock (make_engine's BEGIN IMMEDIATE would hold appends)
    engine = make_engine(url, schema) if schema else sa.create_engine(url)
    try:
        with engine.connect() as conn:  # reads only: nothing is migrated or created
            inspector = sa.inspect(conn)
            if not inspector.has_table("events", schema=schema):
                raise CliError(f"{args.service}: no log at {where}")
            if "hash" not in {c["name"] for c in inspector.get_columns("events", schema=schema)}:
                raise CliError(f"{args.service}: the log has no hash chain yet; run `mawaeed migrate {args.service}`")
            head = conn.execute(sa.text("SELECT coalesce(max(position), 0) FROM events")).scalar_one()
            if not 1 <= args.start <= max(head, 1):
                raise CliError(f"{args.service}: --from {args.start} is outside the log (positions 1 to {head})")
            checked, broken = verify_chain(conn, args.start)
            # read only, so not sequenced here: the relay gives them their positions (and hashes) when it runs
            waiting = conn.execute(sa.text("SELECT count(*) FROM events WHERE position IS NULL")).scalar_one()
            head_hash = conn.execute(sa.text("SELECT hash FROM events WHERE position = :p"), {"p": head}).scalar()
    finally:
        engine.dispose()
    if broken:
        position, what = broken
        print(f"{args.service}: chain broken at position {position}: {what} "
              f"({checked} events before it intact)")
        return 1
    # the head's hash vouches for everything before it: kept elsewhere, it also shows a rewritten tail
    print(f"{args.service}: {checked} events, chain intact"
          + (f" (head {head}, hash {head_hash})" if head else "")
          + (f"; {waiting} more committed, not yet given a position (the service's relay gives them)"
             if waiting else ""))
    return 0
