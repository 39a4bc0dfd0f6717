"""`mawaeed migrate [SERVICE...] [--to REV] [--status]`: bring services' databases to this release's schema (each
service also does it at start), take one to a given revision (down too), or say where each stands."""
import logging
from pathlib import Path

import sqlalchemy as sa

from services.cli import LOGGED, CliError
from shared import migrations
from shared.config import nameko_config
from shared.eventstore import make_engine


def register(sub) -> None:
    p = sub.add_parser("migrate", help="bring services' databases to this release's schema (or --to a revision)")
    p.add_argument("names", nargs="*", metavar="SERVICE", help=f"any of: {', '.join(LOGGED)} (default: all)")
    p.add_argument("--to", default="head", metavar="REV",
                   help="the revision to take them to, up or down: 0002, head (default) or base")
    p.add_argument("--status", action="store_true", help="say where each database stands; change nothing")
    p.set_defaults(func=run)


def locate(service: str, config: dict | None = None) -> tuple[str, str | None, str, bool]:
    """(SQLAlchemy URL, PostgreSQL schema or None, where it is in words, whether it exists), without creating
    anything (shared.config.database_for makes the data folder)."""
    config = config or nameko_config()
    if config.get("DATABASE_URL"):
        schema = f"{config.get('DATABASE_SCHEMA_PREFIX', 'mawaeed_')}{service}"
        engine = sa.create_engine(config["DATABASE_URL"])
        try:
            with engine.connect() as conn:
                there = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"),
                                     {"s": schema}).first() is not None
        finally:
            engine.dispose()
        return config["DATABASE_URL"], schema, f"schema {schema}", there
    path = (Path(config.get("MAWAEED_DATA_DIR") or "./var") / f"{service}.sqlite3").resolve()
    return f"sqlite:///{path}", None, str(path), path.is_file()


def _names(args) -> list[str]:
    unknown = [name for name in args.names if name not in LOGGED]
    if unknown:
        raise CliError(f"no service {', '.join(unknown)} has a database; choose from {', '.join(LOGGED)}")
    return args.names or list(LOGGED)


def _titles(service: str, revisions: list[str]) -> str:
    return ", ".join(f"{r} ({migrations.describe(service, r)})" for r in revisions)


def run(args) -> int:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per service is the report
    for service in _names(args):
        url, schema, where, there = locate(service)
        if args.status and not there:
            pending = migrations.script(service).get_current_head()
            print(f"{service}: no database yet at {where}; a start (or migrate) creates it at {pending}")
            continue
        engine = make_engine(url, schema)
        try:
            if args.status:
                print(f"{service}: {_status_line(service, migrations.status(engine, schema, service))}")
                continue
            try:
                found, now = migrations.migrate(engine, schema, service, args.to)
            except migrations.MigrationError as exc:
                raise CliError(str(exc)) from None
        finally:
            engine.dispose()
        before = found.current or (migrations.BASELINE if found.unversioned else None)
        if before == now:
            print(f"{service}: at {now}{' (head)' if now == found.head else ''}, nothing to do")
        else:
            stamped = f"made before migrations, stamped at {migrations.BASELINE}; " if found.unversioned else ""
            print(f"{service}: {stamped}{before or 'empty'} -> {now or 'base'}")
    return 0


def _status_line(service: str, state: migrations.State) -> str:
    if state.empty:
        return f"empty; migrating applies {_titles(service, state.pending)}"
    if state.unversioned:
        return (f"made before migrations (no version table): stamped at {migrations.BASELINE} when migrated"
                + (f", then {_titles(service, state.pending)}" if state.pending else ""))
    if not state.pending:
        return f"at {state.current} (head)"
    return f"at {state.current}, {len(state.pending)} to apply: {_titles(service, state.pending)}"
