"""`mawaeed`: run the suite (embedded or one service per process) and the gateway of the distributed mode."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # nameko 2 is built on eventlet

import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything else imports socket, threading or time

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from shared import logs  # noqa: E402
from shared.config import gateway_address, gateway_upstreams, nameko_config  # noqa: E402

SERVICES = {
    "availability": "services.availability.service:AvailabilityService",
    "booking": "services.booking.service:BookingService",
    "queue": "services.queue.service:QueueService",
    "notifications": "services.notifications.service:NotificationsService",
    "web": "services.web.service:WebService",   # the pages: no log of its own, only the others' API
    "insights": "services.insights.service:InsightsService",  # figures; a database, its log stays empty
}
LOGGED = [name for name in SERVICES if name != "web"]  # the services with an event log


def service_classes(names):
    import importlib
    classes = []
    for name in names:
        module, cls = SERVICES[name].split(":")
        classes.append(getattr(importlib.import_module(module), cls))
    return classes


def run(args) -> int:
    from nameko.runners import ServiceRunner
    names = args.services or list(SERVICES)
    config = nameko_config({**os.environ, **({"WEB_SERVER_ADDRESS": args.listen} if args.listen else {})})
    runner = ServiceRunner(config)
    for cls in service_classes(names):
        runner.add_service(cls)
    mode = "embedded" if config["AMQP_URI"].startswith("memory") else "distributed"
    logging.getLogger("mawaeed").info("starting %s (%s) on %s", ", ".join(names), mode, config["WEB_SERVER_ADDRESS"])
    stopping = eventlet.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.ready() or stopping.send())
    runner.start()
    address = config["WEB_SERVER_ADDRESS"]
    eventlet.spawn(_announce_when_ready, address, stopping,
                   f"Mawaeed is ready: {_base_url(address)}/" if set(names) == set(SERVICES) else
                   # one service of several: the gateway's address is the one to open, not this one
                   f"{', '.join(names)} ready ({mode}) on {address}, behind the gateway")
    stopping.wait()
    runner.stop()
    return 0


def _base_url(address: str) -> str:
    host, _, port = address.rpartition(":")
    return f"http://{'localhost' if host in ('', '0.0.0.0', '127.0.0.1', '::', '[::]') else host}:{port}"


def _announce_when_ready(address: str, stopping, line: str) -> None:
    """Print `line` once this process's /health/ready answers 200: not before, so the address printed serves."""
    import urllib.request
    host, _, port = address.rpartition(":")
    url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0', '::', '[::]') else host}:{port}/health/ready"
    while not stopping.ready():
        try:
            with urllib.request.urlopen(url, timeout=5):
                print(line, flush=True)
                return
        except Exception:  # not listening yet, or 503 while starting
            eventlet.sleep(0.2)


def gateway(args) -> int:
    from services.gateway import serve
    serve(args.listen, gateway_upstreams(), announce=lambda listen: f"Mawaeed is ready: {_base_url(listen)}/")
    return 0


class CliError(Exception):
    """Something the person at the terminal can put right: said in one line on stderr, exit `code`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def instant(text: str):
    """argparse type: an ISO 8601 instant with its offset; a bare date, "yesterday" or a local time is refused
    rather than guessed (the suite's times are instants, the centres' clocks are +03:00)."""
    from shared.clock import parse_instant
    try:
        return parse_instant(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an instant with an offset; write e.g. 2026-12-07T10:42:00+03:00 or "
            "2026-12-07T07:42:00Z") from None


def open_existing(service: str, metadata):
    """A service's database, only if it is there: the tools that read one (replay, export, at, erase) must not
    create an empty one and then report on nothing."""
    from pathlib import Path

    import sqlalchemy as sa
    from shared.dependencies import open_database
    config = nameko_config()
    if config.get("DATABASE_URL"):
        schema = f"{config.get('DATABASE_SCHEMA_PREFIX', 'mawaeed_')}{service}"
        where = f"schema {schema} of DATABASE_URL"
        engine = sa.create_engine(config["DATABASE_URL"])
        try:
            with engine.connect() as conn:
                there = conn.execute(sa.text("SELECT 1 FROM information_schema.tables WHERE table_schema = :schema "
                                             "AND table_name = 'events'"), {"schema": schema}).first() is not None
        finally:
            engine.dispose()
    else:  # as shared.config.database_for names it, without making the folder
        path = Path(config.get("MAWAEED_DATA_DIR") or "./var") / f"{service}.sqlite3"
        where, there = str(path), path.is_file()
    if not there:
        raise CliError(f"no {service} database at {where}: point MAWAEED_DATA_DIR or DATABASE_URL at the suite's "
                       "(nothing was created)")
    db = open_database(config, service, metadata)
    # events committed a moment before the service stopped may have no position yet: the tools read the whole log
    db.sequence()
    return db


def replay(args) -> int:
    """Rebuild a service's projections from the logs into scratch tables and compare them with the live ones: each
    service's replay.py does the work (one signature, one report shape); this only opens and prints."""
    import importlib

    from shared.auth import service_credentials
    from shared.dependencies import service_metadata
    from shared.projection import Logs
    from urllib.error import URLError
    service = args.service if args.projection == "catalogue" else args.projection
    db = open_existing(service, importlib.import_module(f"services.{service}.projection").metadata)
    replay_module = importlib.import_module("shared.catalogue" if args.projection == "catalogue"
                                            else f"services.{service}.replay")
    direct = (lambda source: open_existing(source, service_metadata())) if args.direct else None
    bar, advance = _log_progress(db, f"replaying {args.projection}")
    try:
        with bar:
            logs = Logs(db, args.api, direct, service_credentials(nameko_config()).authorization)
            reports = replay_module.replay(db, logs, advance)
    except URLError as exc:
        raise CliError(f"cannot read the events feed at {args.api}: {exc.reason} (start the suite, pass --api URL, "
                       "or --direct)") from None
    for report in reports:
        _print_report(report)
    return 0 if all(report.identical for report in reports) else 1


def _print_report(report) -> None:
    differences = report.differences
    print(f"replayed {report.events} events {report.note + ' ' if report.note else ''}into a fresh {report.what} "
          f"in {report.seconds:.2f} s ({report.rate:,.0f} events/s): "
          + ("identical to the live one" if not differences else f"{len(differences)} differ"))
    for name, (live_only, rebuilt_only) in differences.items():
        print(f"  {name}: {len(live_only)} only live, {len(rebuilt_only)} only rebuilt")
        for row in (live_only + rebuilt_only)[:10]:
            print(f"    {row}")


def events_catalogue(args) -> int:
    """Write the event catalogue (docs/events/) from the contracts, or with --check compare it and write nothing."""
    from pathlib import Path
    from services.cli import event_catalogue
    out = Path(args.out) if args.out else event_catalogue.DEFAULT_OUT
    try:
        if args.check:
            differences = event_catalogue.differences(out)
            for line in differences:
                print(f"  {line}")
            print(f"{out}: {'out of date, run `mawaeed events catalogue`' if differences else 'up to date'}")
            return 1 if differences else 0
        for path in event_catalogue.write(out):
            print(f"wrote {path}")
    except event_catalogue.CatalogueError as exc:
        print(f"cannot build the event catalogue: {exc}", file=sys.stderr)
        return 2
    return 0


def _progress(description: str, total: int):
    """A rich progress bar over log positions; returns (context manager, advance-to-position callback)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   transient=True)
    task = bar.add_task(description, total=max(total, 1))
    return bar, lambda position: bar.update(task, completed=position)


def _log_progress(db, description: str):
    """A progress bar over a service's log, from position 0 to its head."""
    with db.transaction() as uow:
        return _progress(description, uow.store.head())


def export_events(args) -> int:
    """Write a service's events to JSON Lines or Parquet, personal fields pseudonymised unless --clear."""
    from pathlib import Path

    from services.cli.export import FORMATS, event_types, export, select
    from shared.eventstore import event_tables
    import sqlalchemy as sa
    out = Path(args.out)
    if out.suffix not in FORMATS:
        raise CliError(f"{out.name}: export writes {' or '.join('name' + f for f in FORMATS)}")
    if not out.parent.is_dir():
        raise CliError(f"no folder {out.parent} to write {out.name} into")
    try:
        types = event_types(args.service, args.types) if args.types else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    key = None if args.clear else os.environ.get("MAWAEED_EXPORT_KEY")
    if not args.clear and not key:
        print("set MAWAEED_EXPORT_KEY (the key of the pseudonyms; keep it to join exports) or pass --clear",
              file=sys.stderr)
        return 2
    metadata = sa.MetaData()
    event_tables(metadata)
    db = open_existing(args.service, metadata)
    events = select(db, args.since, args.until, types)
    bar, advance = _log_progress(db, f"exporting {args.service}")
    with bar:
        count = export(events, out, key, advance)
    print(f"wrote {count} {args.service} events to {args.out}" + (" (personal fields in clear)" if args.clear else
                                                                  " (personal fields pseudonymised)"))
    return 0


def time_travel(args) -> int:
    """The state of a branch's waiting room, or of a slot's bookings, at a past instant, from the log."""
    import json

    from shared.clock import LOCAL
    instant = args.instant
    if args.what == "queue":
        from services.queue import projection
        from services.queue.replay import waiting_room_at
        db = open_existing("queue", projection.metadata)
        with db.transaction() as uow:
            from shared import catalogue
            if catalogue.load_branch(uow, args.branch) is None:
                print(f"no branch {args.branch!r}", file=sys.stderr)
                return 1
        state = waiting_room_at(db, args.branch, instant)
    else:
        from services.booking import history, projection
        db = open_existing("booking", projection.metadata)
        state = {"branch": args.branch, "service": args.service,  # times as the centres read them, +03:00
                 "start": args.start.astimezone(LOCAL).isoformat(), "at": instant.astimezone(LOCAL).isoformat(),
                 "bookings": history.slot_at(db, args.branch, args.service, args.start, instant)}
    print(json.dumps(state, ensure_ascii=False, indent=2))
    return 0


def erase_person(args) -> int:
    """Forget a person (crypto-shredding): run beside the booking service, against its database."""
    from shared.contracts.fields import CPR_PATTERN
    from shared.errors import NotFound
    from shared.masking import mask_cpr
    from services.booking import commands, projection
    if not CPR_PATTERN.match(args.cpr):
        print("a CPR is 9 digits, the first four YYMM of birth", file=sys.stderr)
        return 2
    db = open_existing("booking", projection.metadata)
    walk_in = _queue_knows(args.cpr)  # a walk-in who never booked is known to the queue only
    if not walk_in and not commands.known(db, args.cpr):
        print("nobody with this CPR is known to the suite", file=sys.stderr)  # a typo must not erase anyone
        return 1
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("erasing cannot be undone: confirm at a terminal, or pass --yes in a script")
        typed = input(f"Erase {mask_cpr(args.cpr)} for good? Type the last 3 digits of the CPR to confirm: ")
        if typed.strip() != args.cpr[-3:]:
            print("not confirmed: nothing was erased", file=sys.stderr)
            return 1
    try:
        result = commands.erase(db, args.cpr, known_elsewhere=walk_in)
    except NotFound:  # forgotten meanwhile by someone else
        print("nobody with this CPR is known to the suite", file=sys.stderr)
        return 1
    print(f"erased {mask_cpr(args.cpr)} (subject {result['subject']}): {result['bookings']} bookings scrubbed; "
          "the other services forget their copies when PersonErased reaches them")
    return 0


def _queue_knows(cpr: str) -> bool:
    """Whether the queue holds a key of the person (their check-ins): read from its database when this machine
    reaches it, else False (then only booking's knowledge counts)."""
    import sqlalchemy as sa
    from shared import vault
    from shared.dependencies import service_metadata
    try:
        db = open_existing("queue", service_metadata())
    except CliError:
        return False
    with db.transaction() as uow:
        keys = db.metadata.tables["person_keys"]
        return uow.execute(sa.select(keys.c.subject).where(keys.c.subject == vault.subject_of(cpr))).first() \
            is not None


def audit(args) -> int:
    """Who did what at a branch on a day, from the queue's log (beside the queue service, against its database)."""
    import json
    from datetime import date

    from shared.dependencies import open_database
    from services.queue import audit as queue_audit, projection
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        print(f"{args.date!r} is not a date like 2026-12-07", file=sys.stderr)
        return 2
    entries = queue_audit.trail(open_database(nameko_config(), "queue", projection.metadata), args.branch, day)
    if args.json:
        print(json.dumps(entries, ensure_ascii=False, indent=2))
        return 0
    for entry in entries:
        actor = entry["actor"] or {}
        who = f"{actor.get('role', '-')} {actor.get('subject', '(the suite or the public)')}"
        details = " ".join(f"{k}={v}" for k, v in entry["details"].items() if k != "ticket_id")
        print(f"{entry['at'][11:19]}  {entry['event']:<18} {who:<40} {details}")
    print(f"{len(entries)} events at {args.branch} on {day}")
    return 0


def issue_token(args) -> int:
    """Print a token of the embedded development issuer (same MAWAEED_DATA_DIR as the suite) for any role."""
    from shared.auth import ROLES, development_issuer
    from shared.issuer import parse_ttl
    if args.role not in ROLES:
        print(f"unknown role {args.role!r}; choose from {', '.join(ROLES)}", file=sys.stderr)
        return 2
    try:
        issuer = development_issuer(nameko_config())
        ttl = parse_ttl(args.ttl)
    except (RuntimeError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(issuer.issue(args.role, branches=args.branch, directorates=[args.directorate] if args.directorate else [],
                       counter=args.counter, cpr=args.cpr, scopes=args.scope, ttl_seconds=ttl, subject=args.subject))
    return 0


def main(argv=None) -> int:
    logs.configure()
    parser = OneLineErrors(prog="mawaeed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run services (all of them by default) in this process")
    p_run.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of: {', '.join(SERVICES)}")
    p_run.add_argument("--listen", help="HOST:PORT to serve HTTP on (default: WEB_SERVER_ADDRESS, "
                                        "else 127.0.0.1:$MAWAEED_PORT, else 127.0.0.1:8000; 0.0.0.0:PORT "
                                        "to serve the network)")
    p_run.set_defaults(func=run)
    p_gw = sub.add_parser("gateway", help="serve the public API at one base URL in front of separate services")
    p_gw.add_argument("--listen", default=gateway_address(),
                      help="HOST:PORT (default: GATEWAY_ADDRESS, else 127.0.0.1:$MAWAEED_PORT, else 127.0.0.1:8000)")
    p_gw.set_defaults(func=gateway)
    p_replay = sub.add_parser("replay", help="rebuild a projection from its log into fresh tables and compare")
    p_replay.add_argument("projection", choices=["availability", "queue", "booking", "notifications", "insights", "catalogue"],
                          help="availability: slot counts from the booking log; queue: every waiting room; "
                               "booking: the bookings table; notifications: the messages; insights: its rows; "
                               "catalogue: a service's copy of the catalogue (--service)")
    p_replay.add_argument("--service", default="booking", choices=LOGGED,
                          help="whose catalogue projection to rebuild (replay catalogue)")
    p_replay.add_argument("--api", default=os.environ.get("MAWAEED_API") or nameko_config()["MAWAEED_FEED_URL"],
                          help="base URL whose events feed serves the source logs (default: MAWAEED_FEED_URL)")
    p_replay.add_argument("--direct", action="store_true",
                          help="read the source logs straight from their services' databases (DATABASE_URL, "
                               "or the SQLite files of MAWAEED_DATA_DIR) instead of the feed")
    p_replay.set_defaults(func=replay)
    from services.cli import dead_letters
    dead_letters.register(sub)  # mawaeed dead-letters list|show|replay|discard (RabbitMQ)
    from services.cli import migrate, verify
    migrate.register(sub)  # mawaeed migrate [SERVICE...] [--to REV] [--status]
    verify.register(sub)  # mawaeed verify SERVICE [--from POS]
    from services.cli import simulate
    simulate.register(sub)  # mawaeed simulate --branch B --date D [--speed] [--api] [--seed] [--scale]
    from services.cli import report
    report.register(sub)  # mawaeed report --branch B|--directorate D --month YYYY-MM --out name.html|.pdf
    from services.cli import insights
    insights.register(sub)  # mawaeed insights --branch B|--directorate D|--all --from --to [--by] [--format]
    p_events = sub.add_parser("events", help="the published events")
    events_sub = p_events.add_subparsers(dest="events_command", required=True)
    p_catalogue = events_sub.add_parser("catalogue", help="write the event catalogue (catalogue.json, README.md)")
    p_catalogue.add_argument("--check", action="store_true",
                             help="write nothing; exit 1 and say what differs if the files are out of date")
    p_catalogue.add_argument("--out", help="folder of the catalogue (default: docs/events of this checkout)")
    p_catalogue.set_defaults(func=events_catalogue)
    p_export = sub.add_parser("export", help="write a service's events to .jsonl or .parquet (pseudonymised)")
    p_export.add_argument("service", choices=LOGGED)
    p_export.add_argument("out", help="the file to write: name.jsonl or name.parquet")
    p_export.add_argument("--since", type=instant, help="only events at or after this instant (ISO 8601 with an "
                                                        "offset, e.g. 2026-12-07T00:00:00+03:00)")
    p_export.add_argument("--until", type=instant, help="only events before this instant (ISO 8601 with an offset)")
    p_export.add_argument("--types", help="only these event types, comma-separated: SlotBooked,BookingCancelled "
                                          "(the exported service's) or booking.SlotBooked; an unknown one is refused")
    p_export.add_argument("--clear", action="store_true",
                          help="write CPR, names and contacts as they are (default: keyed hashes, MAWAEED_EXPORT_KEY)")
    p_export.set_defaults(func=export_events)
    p_erase = sub.add_parser("erase", help="forget a person: their CPR, name and contacts read as erased everywhere")
    p_erase.add_argument("cpr")
    p_erase.add_argument("--yes", action="store_true",
                         help="do not ask (scripts); at a terminal it asks for the CPR's last 3 digits")
    p_erase.set_defaults(func=erase_person)
    p_audit = sub.add_parser("audit", help="who did what at a branch on a day (the queue's log, with each actor)")
    p_audit.add_argument("--branch", required=True)
    p_audit.add_argument("--date", required=True, help="the local date, e.g. 2026-12-07")
    p_audit.add_argument("--json", action="store_true", help="the entries as JSON")
    p_audit.set_defaults(func=audit)
    p_token = sub.add_parser("token", help="tokens of the embedded development issuer (never in production)")
    token_sub = p_token.add_subparsers(dest="token_command", required=True)
    p_issue = token_sub.add_parser("issue", help="print a signed token for a role (and its places)")
    p_issue.add_argument("--role", required=True)
    p_issue.add_argument("--branch", action="append", default=[], help="a branch it acts at (repeatable)")
    p_issue.add_argument("--directorate", help="the directorate of a directorate_admin")
    p_issue.add_argument("--counter", help="a clerk's counter")
    p_issue.add_argument("--cpr", help="a citizen's CPR (as a national eID would give it)")
    p_issue.add_argument("--scope", action="append", default=[], help="e.g. events:booking, events:personal")
    p_issue.add_argument("--subject", help="who the token names (default: the role and a random suffix)")
    p_issue.add_argument("--ttl", default="8h", help="how long it lasts: 30m, 8h, 2d (default 8h)")
    p_issue.set_defaults(func=issue_token)
    p_at = sub.add_parser("at", help="time travel: a waiting room or a slot's bookings as they were at an instant")
    at_sub = p_at.add_subparsers(dest="what", required=True)
    p_at_queue = at_sub.add_parser("queue", help="a branch's waiting room")
    p_at_queue.add_argument("branch")
    p_at_queue.add_argument("instant", type=instant, help="ISO 8601 with an offset, e.g. 2026-12-07T10:42:00+03:00")
    p_at_slot = at_sub.add_parser("slot", help="the bookings of one slot")
    for name in ("branch", "service"):
        p_at_slot.add_argument(name)
    p_at_slot.add_argument("start", type=instant, help="the slot's start, ISO 8601 with an offset")
    p_at_slot.add_argument("instant", type=instant, help="ISO 8601 with an offset")
    for p in (p_at_queue, p_at_slot):
        p.set_defaults(func=time_travel)
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "services", None) or []) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}")
    return _handled(args)


class OneLineErrors(argparse.ArgumentParser):
    """A mistyped command says what is wrong in one line (not the whole usage first); --help has the rest."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _handled(args) -> int:
    """The subcommand, with what goes wrong in the ordinary course (a mistyped argument, an unreachable feed or
    database, a missing folder) said in one line on stderr, exit 2, instead of a traceback."""
    from urllib.error import URLError

    from sqlalchemy.exc import OperationalError
    try:
        return args.func(args)
    except CliError as exc:
        message, code = str(exc), exc.code
    except URLError as exc:  # before OSError: it is one
        message, code = f"cannot reach {getattr(exc, 'url', None) or 'the server'}: {exc.reason}", 2
    except OperationalError as exc:
        message, code = f"cannot use the database: {exc.orig}", 2
    except (OSError, ValueError) as exc:
        message, code = str(exc) or type(exc).__name__, 2
    print(f"mawaeed {args.command}: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
