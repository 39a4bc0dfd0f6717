"""Schema migrations (Alembic) of every service's own database: its event store's tables, its projections and its
copy of the catalogue. One environment (env.py) and one versions folder per service (versions/<service>/, each a
line of revisions 0001, 0002, ...), the version table (`alembic_version`) in the service's own schema (or SQLite
file). `store` is the event store's tables alone, for a database of no service (tests' own tables).

A service migrates its database to the head at start (shared.dependencies.open_database), operators with
`mawaeed migrate`. Replicas starting together take turns: one transaction holds an advisory lock on the service's
schema (PostgreSQL), or the database's write lock (SQLite's BEGIN IMMEDIATE), from reading the version to the
commit, so the second finds the work done. A database made before migrations (by create_all: tables, no version
table) is stamped at the baseline, 0001, which is exactly that schema, then upgraded.
"""
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

# Alembic says every step at INFO ("Context impl SQLiteImpl.", each revision's whole docstring): this module says
# one line per database that moved instead.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from alembic.util import CommandError  # noqa: E402

from shared.eventstore import SCHEMA_LOCK_KEY  # noqa: E402  (with the schema's hash as the second key)

HERE = Path(__file__).resolve().parent
STORE = "store"
SERVICES = tuple(sorted(p.name for p in (HERE / "versions").iterdir()
                        if p.is_dir() and p.name not in (STORE, "__pycache__")))
BASELINE = "0001"
# Alembic's `op` and `context` are module globals: the services of one process (each starting in its own greenlet)
# migrate one at a time, or one's statements would run on another's connection.
_one_at_a_time = threading.Lock()


class MigrationError(Exception):
    """A revision that does not exist, a database that cannot be migrated: one line for an operator."""


def chain_of(service: str) -> str:
    """The versions folder of a service's database: its own, or the store's alone for a database of no service."""
    return service if service in SERVICES else STORE


def _config(chain: str, conn: sa.Connection | None = None, schema: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(HERE / "versions" / chain))
    config.attributes.update(connection=conn, schema=schema)
    return config


def script(chain: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(_config(chain))


@dataclass
class State:
    current: str | None   # the revision the database is at (None: no version table)
    head: str
    pending: list[str]    # revisions an upgrade to the head would apply, oldest first
    unversioned: bool     # tables made before migrations: stamped at the baseline when migrated
    empty: bool           # nothing there yet


def _current(conn: sa.Connection, schema: str | None) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table_schema": schema}).get_current_revision()


def _state(conn: sa.Connection, schema: str | None, chain: str) -> State:
    scripts = script(chain)
    head = scripts.get_current_head()
    current = _current(conn, schema)
    has_events = sa.inspect(conn).has_table("events", schema=schema)
    start = current or (BASELINE if has_events else None)
    pending = [r.revision for r in reversed(list(scripts.iterate_revisions(head, start)))]
    if not has_events and current is None:
        pending = [r.revision for r in reversed(list(scripts.iterate_revisions(head, "base")))]
    return State(current, head, pending, unversioned=current is None and has_events,
                 empty=current is None and not has_events)


def status(engine: sa.Engine, schema: str | None, service: str) -> State:
    """Where a database stands, read without changing anything."""
    with engine.connect() as conn:
        return _state(conn, schema, chain_of(service))


def migrate(engine: sa.Engine, schema: str | None, service: str, to: str = "head") -> tuple[State, str | None]:
    """Upgrade (or downgrade) a service's database to `to` (a revision of its folder, or "head"), in one
    transaction under the schema's lock. Returns (the state found, the revision it is at now)."""
    chain = chain_of(service)
    scripts = script(chain)
    try:
        target = scripts.get_revision(to)
    except CommandError:
        target = None
    if target is None and to != "base":
        raise MigrationError(f"{service}: no revision {to!r} (revisions: {', '.join(_revisions(scripts))})")
    with _one_at_a_time, engine.connect() as conn:
        with conn.begin():  # SQLite: BEGIN IMMEDIATE (shared.eventstore.make_engine), the file's write lock
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(:schema))"),
                             {"key": SCHEMA_LOCK_KEY, "schema": schema or ""})
                if schema:
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            found = _state(conn, schema, chain)
            config = _config(chain, conn, schema)
            if found.unversioned:
                command.stamp(config, BASELINE)
            current = found.current or (BASELINE if found.unversioned else None)
            if target is None or (current and target.revision != current
                                  and target.revision in {r.revision for r in scripts.iterate_revisions(current, "base")}):
                command.downgrade(config, to)
            else:
                command.upgrade(config, to)
            now = _current(conn, schema)
            if now != found.current:
                log.info("%s: database migrated %s -> %s", service, found.current or "(new)", now)
            return found, now


def _revisions(scripts: ScriptDirectory) -> list[str]:
    return [r.revision for r in reversed(list(scripts.walk_revisions()))]


def describe(chain: str, revision: str) -> str:
    """A revision's first docstring line, for `mawaeed migrate --status`."""
    doc = script(chain).get_revision(revision).doc or ""
    return doc.split(":")[0].strip().rstrip(".")
