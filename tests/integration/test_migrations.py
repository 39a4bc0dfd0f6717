"""Schema migrations (shared/migrations) on both backends: a database made before migrations (create_all, no
version table) is stamped at the baseline and upgraded without losing a row; the migrations make exactly the
schema the code's metadata describes; replicas starting together take turns; down and up again."""
import importlib
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.cli import main
from shared import migrations
from shared.config import database_for
from shared.dependencies import open_database
from shared.eventstore import make_engine, verify_chain
from tests.conftest import PG_URL

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def metadata_of(service: str) -> sa.MetaData:
    return importlib.import_module(f"services.{service}.projection").metadata


def engine_for(config: dict, service: str) -> tuple[sa.Engine, str | None]:
    url, schema = database_for(config, service)
    return make_engine(url, schema), schema


def made_before_migrations(config: dict, service: str, without_actor: bool = False) -> sa.Engine:
    """A database as the release before migrations left it: the baseline's tables (exactly its create_all), no
    version table, and (`without_actor`) a log from before events named their actor."""
    engine, schema = engine_for(config, service)
    migrations.migrate(engine, schema, service, to=migrations.BASELINE)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
        if without_actor:
            conn.execute(sa.text("ALTER TABLE events DROP COLUMN actor"))
    return engine


def events(n: int, with_actor: bool = True) -> list[dict]:
    rows = [{"position": p, "event_id": f"00000000-0000-4000-8000-{p:012d}", "stream_id": f"stream-{p % 3}",
             "stream_version": (p + 2) // 3, "type": "availability.HolidayDeclared", "version": 1,
             "occurred_at": datetime(2026, 12, 6, 6, 0, p), "correlation_id": f"c-{p}", "causation_id": None,
             "directorate": "npra", "actor": '{"subject":"clerk-1","role":"clerk"}' if p % 2 else None,
             "payload": f'{{"branch":"npra-isa-town","name_ar":"عطلة {p}"}}'} for p in range(1, n + 1)]
    if not with_actor:
        for row in rows:
            del row["actor"]
    return rows


def sample_row(table: sa.Table, n: int) -> dict:
    """A row of made-up values that fit the table's columns."""
    def value(column: sa.Column):
        kind = column.type
        if isinstance(kind, sa.Boolean):
            return n % 2 == 0
        if isinstance(kind, sa.Integer):
            return n
        if isinstance(kind, sa.DateTime):
            return datetime(2026, 12, 7, 6, n)
        if isinstance(kind, sa.String) and kind.length:
            return f"{column.name[:3]}{n}"[:kind.length]
        return f'{{"n": {n}, "ar": "مواعيد"}}'
    return {c.name: value(c) for c in table.columns}


def dump(engine: sa.Engine, table: str, leave_out=("hash", "seq")) -> list[dict]:
    with engine.connect() as conn:
        reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
        rows = conn.execute(sa.select(reflected).order_by(*reflected.primary_key.columns)).mappings().all()
    return [{k: v for k, v in row.items() if k not in leave_out} for row in rows]


def fill(engine: sa.Engine, with_actor: bool = True) -> dict[str, list[dict]]:
    """Events, their outbox rows and two rows in every other table; returns every table's rows."""
    with engine.begin() as conn:
        names = [name for name in sa.inspect(conn).get_table_names() if name != "alembic_version"]
        for name in names:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            if name == "events":
                rows = events(5, with_actor)
            elif name == "outbox":
                rows = [{"position": 4}, {"position": 5}]  # not yet confirmed by the broker
            else:
                rows = [sample_row(table, 1), sample_row(table, 2)]
            conn.execute(table.insert(), rows)
    return {name: dump(engine, name) for name in names}


@pytest.mark.parametrize("service", migrations.SERVICES)
def test_a_database_made_before_migrations_upgrades_and_loses_nothing(backend_config, service):
    old = made_before_migrations(backend_config, service)
    before = fill(old)
    old.dispose()
    db = open_database(backend_config, service, metadata_of(service))  # a service starting on it
    try:
        for name, rows in before.items():
            assert dump(db.engine, name) == rows, name
        assert [(r["seq"], r["position"]) for r in dump(db.engine, "events", leave_out=())] == [(p, p) for p in range(1, 6)]
        with db.engine.connect() as conn:
            assert migrations._current(conn, db.schema) == migrations.script(service).get_current_head()
            assert verify_chain(conn) == (5, None)  # the events already there, hashed in position order
        with db.transaction() as uow:  # and the log goes on from there
            uow.append("stream-9", 0, [_holiday(9)])
        db.sequence()
        with db.transaction() as uow:
            assert [(e.position, e.stream_id) for e in uow.store.read_all(after=5)] == [(6, "stream-9")]
        assert dump(db.engine, "outbox") == [{"position": p} for p in (4, 5, 6)]
        with db.engine.connect() as conn:
            assert verify_chain(conn) == (6, None)
    finally:
        db.dispose()


def test_a_log_from_before_actors_gains_the_column(backend_config):
    old = made_before_migrations(backend_config, "booking", without_actor=True)
    before = fill(old, with_actor=False)
    old.dispose()
    db = open_database(backend_config, "booking", metadata_of("booking"))
    try:
        assert dump(db.engine, "events") == [{**row, "actor": None} for row in before["events"]]
        with db.transaction() as uow:
            assert [e.actor for e in uow.store.read_all()] == [None] * 5
        with db.engine.connect() as conn:
            assert verify_chain(conn) == (5, None)
    finally:
        db.dispose()


@pytest.mark.parametrize("service", migrations.SERVICES)
def test_the_migrations_make_the_schema_of_the_metadata(backend_config, service):
    db = open_database(backend_config, service, metadata_of(service))
    try:
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata_of(service)) == []
    finally:
        db.dispose()


def test_down_and_up_again_hashes_the_same_chain(backend_config):
    db = open_database(backend_config, "booking", metadata_of("booking"))
    engine, schema = db.engine, db.schema
    try:
        with db.transaction() as uow:
            uow.append("branch-npra-isa-town", 0, [_holiday(n) for n in range(1, 4)])
        db.sequence()
        chained = dump(engine, "events", leave_out=())
        migrations.migrate(engine, schema, "booking", to="0002")
        assert not {"hash", "seq"} & {c["name"] for c in sa.inspect(engine).get_columns("events")}
        assert dump(engine, "events") == [{k: v for k, v in row.items() if k not in ("hash", "seq")} for row in chained]
        migrations.migrate(engine, schema, "booking")
        assert dump(engine, "events", leave_out=()) == chained  # the back-fill gives the hashes appends gave
    finally:
        db.dispose()


def test_events_not_yet_sequenced_are_sequenced_by_a_downgrade(backend_config):
    """Back to 0003 (positions given at the append): what was committed without a position gets it first, with its
    hash and outbox row, in insertion order; and appends at 0003 carry on after it."""
    db = open_database(backend_config, "booking", metadata_of("booking"))
    try:
        for n in range(1, 4):
            with db.transaction() as uow:
                uow.append(f"stream-{n}", 0, [_holiday(n), _holiday(n + 10)])
        migrations.migrate(db.engine, db.schema, "booking", to="0003")
        events = dump(db.engine, "events")
        assert [(e["position"], e["stream_id"]) for e in events] == [
            (p, f"stream-{(p + 1) // 2}") for p in range(1, 7)]
        assert dump(db.engine, "outbox") == [{"position": p} for p in range(1, 7)]
        with db.engine.connect() as conn:
            assert verify_chain(conn) == (6, None)
        with db.engine.begin() as conn:  # an append as 0003 made it
            conn.execute(sa.text("INSERT INTO events (position, event_id, stream_id, stream_version, type, version, "
                                 "occurred_at, correlation_id, payload) VALUES (7, 'e7', 's', 1, 't', 1, "
                                 "'2026-12-06 06:00:00', 'e7', '{}')"))
        migrations.migrate(db.engine, db.schema, "booking")
        assert [(r["seq"], r["position"]) for r in dump(db.engine, "events", leave_out=())] == [(p, p) for p in range(1, 8)]
        with db.transaction() as uow:
            uow.append("stream-9", 0, [_holiday(9)])
        db.sequence()
        with db.transaction() as uow:
            assert [(e.position, e.stream_id) for e in uow.store.read_all(after=6)] == [(7, "s"), (8, "stream-9")]
    finally:
        db.dispose()


def _holiday(n: int):
    from shared.events import NewEvent
    return NewEvent("availability.HolidayDeclared", {"branch": "npra-isa-town", "date": f"2027-01-{n:02d}",
                                                     "name_en": f"Holiday {n}", "name_ar": f"عطلة {n}"}, "npra")


REPLICA = """
import sys
from shared import migrations
from shared.eventstore import make_engine
url, schema = sys.argv[1:]
engine = make_engine(url, schema)
found, now = migrations.migrate(engine, schema, "queue")
print(found.empty, now)
"""


def test_replicas_starting_together_take_turns(schema_prefix):
    """Four processes migrating one schema at once (one migration at a time within a process, shared.migrations):
    the schema's advisory lock lets one do the work; the others wait, then find it done."""
    schema = f"{schema_prefix}queue"
    replicas = [subprocess.Popen([sys.executable, "-c", REPLICA, PG_URL, schema], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(4)]
    outcomes = [replica.communicate(timeout=120) for replica in replicas]
    assert [replica.returncode for replica in replicas] == [0] * 4, [err for _, err in outcomes]
    head = migrations.script("queue").get_current_head()
    assert sorted(out.split() for out, _ in outcomes) == [["False", head]] * 3 + [["True", head]]


def test_migrate_on_the_command_line(backend_config, monkeypatch, capsys):
    for name, value in backend_config.items():
        monkeypatch.setenv(name, value)
    made_before_migrations(backend_config, "booking").dispose()
    assert main(["migrate", "booking", "queue", "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("booking: made before migrations (no version table): stamped at 0001 when migrated")
    assert lines[1].startswith("queue: no database yet")
    assert main(["migrate", "booking", "queue"]) == 0
    head = migrations.script("booking").get_current_head()
    assert capsys.readouterr().out.splitlines() == [
        f"booking: made before migrations, stamped at 0001; 0001 -> {head}", f"queue: empty -> {head}"]
    assert main(["migrate", "booking", "--to", "0002"]) == 0
    assert capsys.readouterr().out == f"booking: {head} -> 0002\n"
    assert main(["migrate", "booking", "--status"]) == 0
    assert capsys.readouterr().out.startswith("booking: at 0002, 2 to apply: 0003 (The hash chain), 0004 (Positions "
                                              "given after the commit)")
    assert main(["migrate", "booking", "--to", "0099"]) == 2
    assert capsys.readouterr().err.strip() == ("mawaeed migrate: booking: no revision '0099' (revisions: 0001, 0002, "
                                               "0003, 0004)")
    assert main(["migrate", "web"]) == 2
