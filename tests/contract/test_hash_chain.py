"""The log's hash chain (shared.eventstore.chain_hash), on both backends: PostgreSQL hashes in sequence_events
(the sequencer, after the commit), SQLite in Python as it appends, and the two give the same chain; `mawaeed verify` finds an event changed by hand and still
passes once a person is erased (their personal fields are hashed sealed, as stored)."""
import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from services.booking import commands, projection as booking
from services.cli import main
from shared import eventstore
from shared.clock import UTC, clock
from shared.contracts import from_dict
from shared.dependencies import open_database
from shared.events import NewEvent
from shared.eventstore import GENESIS, chain_hash, verify_chain
from tests.conftest import PG_URL

CPR = "850612345"


def holiday(n: int, actor: dict | None = None) -> NewEvent:
    return NewEvent("availability.HolidayDeclared", {"branch": "npra-isa-town", "date": f"2027-01-{n % 28 + 1:02d}",
                                                     "name_en": f"Holiday {n}", "name_ar": f"عطلة {n}: «عيد»"},
                    "npra", event_id=f"00000000-0000-4000-8000-{n:012d}", actor=actor)


def slot_booked(reference: str = "AC3D-9FGH", cpr: str = CPR) -> NewEvent:
    with open("shared/contracts/samples/booking.SlotBooked.v1.json", encoding="utf-8") as sample:
        event = from_dict(json.load(sample))
    payload = {**event.payload, "reference": reference, "person": {**event.payload["person"], "cpr": cpr}}
    return NewEvent(event.type, payload, event.directorate, version=1)


def append(db, stream: str, events: list[NewEvent]):
    """Append and sequence (as the relay does after every commit on PostgreSQL)."""
    with db.transaction() as uow:
        uow.append(stream, uow.store.stream_version(stream), events)
    db.sequence()


def fill(db) -> None:
    """A little of everything the chain covers: a batch, an actor, Arabic text, personal fields, new streams."""
    append(db, "branch-npra-isa-town", [holiday(1), holiday(2), holiday(3)])
    append(db, "branch-npra-isa-town", [holiday(4, actor={"subject": "clerk-1", "role": "clerk",
                                                          "branch": "npra-isa-town"})])
    append(db, "slot-1", [slot_booked()])
    append(db, "branch-npra-isa-town", [holiday(5)])


def verify(db, start: int = 1):
    with db.engine.connect() as conn:
        return verify_chain(conn, start)


def hashes(db) -> list[str]:
    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT hash FROM events ORDER BY position")).scalars().all()


@pytest.fixture
def db(open_db):
    return open_db("booking", booking.metadata)


@pytest.fixture
def frozen_clock():
    """The suite's clock stopped at one instant, so that two logs written one after the other are alike."""
    speed = clock.speed
    clock.speed = 0
    clock.travel_to(datetime(2026, 12, 6, 6, 0, 5, 250000, tzinfo=UTC))
    yield clock
    clock.speed = speed
    clock.travel_to(datetime.now(UTC))


def test_every_event_is_chained_to_the_one_before(db):
    fill(db)
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(eventstore.ENVELOPE)}, hash FROM events ORDER BY position")
                            .columns(occurred_at=sa.DateTime)).all()
    previous = GENESIS
    for *row, stored in rows:  # recomputed in Python whichever backend hashed them
        assert stored == chain_hash(previous, row)
        previous = stored
    assert len(set(hashes(db))) == 6


def test_an_untouched_log_verifies(db):
    fill(db)
    assert verify(db) == (6, None)
    assert verify(db, start=4) == (3, None)


def test_a_payload_changed_by_hand_is_named_by_its_position(db):
    fill(db)
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE events SET payload = replace(payload, 'Holiday 4', 'Holiday 9') "
                             "WHERE position = 4"))
    checked, (position, what) = verify(db)
    assert (checked, position) == (3, 4)
    assert "changed after it was written" in what


def test_an_event_rewritten_with_a_fresh_hash_breaks_the_next_link(db):
    fill(db)
    with db.engine.begin() as conn:
        row = conn.execute(sa.text(f"SELECT {', '.join(eventstore.ENVELOPE)} FROM events WHERE position = 2")
                           .columns(occurred_at=sa.DateTime)).one()
        before = conn.execute(sa.text("SELECT hash FROM events WHERE position = 1")).scalar_one()
        forged = list(row)
        forged[-1] = row[-1].replace("Holiday 2", "Holiday 8")
        conn.execute(sa.text("UPDATE events SET payload = :p, hash = :h WHERE position = 2"),
                     {"p": forged[-1], "h": chain_hash(before, forged)})
    assert verify(db)[1][0] == 3


def test_a_deleted_event_is_a_gap(db):
    fill(db)
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM outbox WHERE position = 5"))
        conn.execute(sa.text("DELETE FROM events WHERE position = 5"))
    assert verify(db)[1][0] == 5


def test_erasing_a_person_leaves_the_chain_intact(db):
    fill(db)
    before = hashes(db)
    commands.erase(db, CPR)
    db.sequence()
    with db.transaction() as uow:
        [booked] = uow.store.read_all(types=["booking.SlotBooked"])
    assert booked.payload["person"]["name"] == "[erased]"
    assert hashes(db)[:6] == before
    assert verify(db) == (7, None)  # and the PersonErased appended after it


def test_postgresql_and_sqlite_make_the_same_chain(tmp_path, schema_prefix, frozen_clock):
    logs = [open_database({"MAWAEED_DATA_DIR": str(tmp_path), "DATABASE_URL": ""}, "availability_twin",
                          booking.metadata),
            open_database({"DATABASE_URL": PG_URL, "DATABASE_SCHEMA_PREFIX": schema_prefix}, "availability_twin",
                          booking.metadata)]
    try:
        for db in logs:
            append(db, "branch-npra-isa-town", [holiday(1), holiday(2, actor={"subject": "s", "role": "clerk"})])
            append(db, "branch-npra-isa-town", [holiday(3)])
        sqlite_chain, postgresql_chain = map(hashes, logs)
        assert None not in sqlite_chain and sqlite_chain == postgresql_chain
    finally:
        for db in logs:
            db.dispose()


EDGES = [  # (previous, ENVELOPE values): NULLs, empty strings, separators, multi-byte text, whole seconds
    (GENESIS, (1, "e", "s", 1, "t", 1, datetime(2026, 1, 1), "c", None, None, None, "{}")),
    ("ab" * 32, (42, "", "s:1", 7, "a.B", 3, datetime(2026, 12, 6, 6, 0, 5, 1), "", "", "", "",
                 '{"n":"فاطمة 🇧🇭\\n-:"}')),
    ("ff" * 32, (9_000_000_000, "x", "-", 2, "-", 1, datetime(1999, 12, 31, 23, 59, 59, 999999), "c", "d",
                 "npra", '{"subject":"s"}', "1:2")),
]


@pytest.mark.parametrize("previous, row", EDGES)
def test_the_sql_hash_is_the_python_hash(schema_prefix, previous, row):
    db = open_database({"DATABASE_URL": PG_URL, "DATABASE_SCHEMA_PREFIX": schema_prefix}, "booking",
                       booking.metadata)
    try:
        with db.engine.connect() as conn:
            in_sql = conn.execute(sa.text("SELECT chain_hash(:a, :b, :c, :d, :e, :f, :g, :h, :i, :j, :k, :l, :m)"),
                                  dict(zip("abcdefghijklm", (previous, *row)))).scalar_one()
        assert in_sql == chain_hash(previous, row)
    finally:
        db.dispose()


def test_the_migrated_functions_are_the_store_s(schema_prefix):
    """Migrations 0003 and 0004 install frozen copies of the hash, append and sequencer functions: they must be
    the code's own (a scratch database gets eventstore's, Database.create_tables)."""
    db = open_database({"DATABASE_URL": PG_URL, "DATABASE_SCHEMA_PREFIX": schema_prefix}, "booking",
                       booking.metadata)
    try:
        with db.engine.connect() as conn:
            installed = dict(conn.execute(sa.text(
                "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = current_schema()::regnamespace")).all())
        code = eventstore.CHAIN_FUNCTIONS + eventstore.APPEND_FUNCTION + eventstore.SEQUENCE_FUNCTION
        assert set(installed) == {"append_events", "sequence_events", "chain_hash", "chain_field"}
        for source in installed.values():
            assert source in code
    finally:
        db.dispose()


def test_verify_on_the_command_line(backend_config, db, monkeypatch, capsys):
    for name, value in backend_config.items():
        monkeypatch.setenv(name, value)
    fill(db)
    assert main(["verify", "booking"]) == 0
    assert "booking: 6 events, chain intact" in capsys.readouterr().out
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE events SET actor = NULL WHERE position = 4"))
    assert main(["verify", "booking", "--from", "2"]) == 1
    assert "chain broken at position 4" in capsys.readouterr().out
    assert main(["verify", "booking", "--from", "99"]) == 2
    assert capsys.readouterr().err.strip().endswith("--from 99 is outside the log (positions 1 to 6)")
    assert main(["verify", "web"]) == 2
