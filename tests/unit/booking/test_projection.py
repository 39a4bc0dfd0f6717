"""The booking service's tables and statements (services/booking/projection.py), on SQLite and PostgreSQL: what
commands read and write, and the replay's page-at-a-time writes. (The projection from the log agreeing with the
fold and with the time travel: test_fold.py.)"""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from shared.clock import UTC
from shared.errors import ConcurrencyError
from shared.masking import ERASED
from shared.projection import pages
from services.booking import projection
from tests.unit.booking.test_fold import booked, cancelled, moved

START = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
STREAM = "slot-npra-isa-town-passport-renewal-20261207T0400Z"


def row(reference: str, cpr: str = "900112345", start: datetime = START, status: str = "active", **extra) -> dict:
    return {"reference": reference, "version": 1, "cpr": cpr, "branch": "npra-isa-town",
            "service": extra.pop("service", "passport-renewal"), "start": start.replace(tzinfo=None),
            "end": (start + timedelta(minutes=20)).replace(tzinfo=None), "status": status, "name": "فاطمة علي",
            "mobile": None, "email": "f@example.com", "language": "ar", "channel": "web",
            "created_at": NOW.replace(tzinfo=None), "updated_at": NOW.replace(tzinfo=None), **extra}


@pytest.fixture
def db(open_db):
    return open_db("booking", projection.metadata)


def test_a_booking_is_written_read_and_changed_by_its_reference(db):
    with db.transaction() as uow:
        assert projection.booking(uow, "AC3D-9FGH") is None
        projection.insert(uow, row("AC3D-9FGH"))
        projection.update(uow, "AC3D-9FGH", status="cancelled")
        found = projection.booking(uow, "AC3D-9FGH")
    assert (found.reference, found.status, found.start, found.version) == \
        ("AC3D-9FGH", "cancelled", START.replace(tzinfo=None), 1)


def test_a_persons_active_bookings_are_those_still_to_come(db):
    with db.transaction() as uow:
        projection.insert(uow, row("AAAA-0001"))
        projection.insert(uow, row("AAAA-0002", service="good-conduct", start=START + timedelta(days=1)))
        projection.insert(uow, row("AAAA-0003", status="cancelled"))
        projection.insert(uow, row("AAAA-0004", start=NOW))  # not after now
        projection.insert(uow, row("AAAA-0005", cpr="900112346"))
        active = projection.active_bookings(uow, "900112345", NOW)
    assert sorted((r.reference, r.service, r.start) for r in active) == [
        ("AAAA-0001", "passport-renewal", START.replace(tzinfo=None)),
        ("AAAA-0002", "good-conduct", (START + timedelta(days=1)).replace(tzinfo=None))]


def test_claiming_a_person_creates_their_row_then_bumps_it(db):
    for version in (1, 2, 3):
        with db.transaction() as uow:
            projection.claim_person(uow, "900112345")
            assert uow.execute(sa.select(projection.people.c.version)).scalar_one() == version


def test_the_slots_version_and_count_are_read_together(db):
    with db.transaction() as uow:
        assert projection.slot_version_and_taken(uow, STREAM, "npra-isa-town", "passport-renewal", START) == (0, 0)
        uow.append(STREAM, 0, [booked(1, START)])
        projection.insert(uow, row("AAAA-0001"))
        projection.insert(uow, row("AAAA-0002", status="cancelled"))           # no place taken
        projection.insert(uow, row("AAAA-0003", start=START + timedelta(minutes=20)))  # another slot
        assert projection.slot_version_and_taken(uow, STREAM, "npra-isa-town", "passport-renewal", START) == (1, 1)
        assert uow.store.stream_version(STREAM) == 1
        statement = sa.select(uow.store.version_of(STREAM), uow.store.version_of("slot-nowhere"))
        assert tuple(uow.execute(statement).one()) == (1, 0)  # the store's version, inside another statement


def test_a_bump_at_a_stale_version_is_a_concurrency_error(db):
    with db.transaction() as uow:
        projection.insert(uow, row("AC3D-9FGH"))
        projection.bump(uow, "AC3D-9FGH", 1)
        with pytest.raises(ConcurrencyError, match="AC3D-9FGH changed meanwhile"):
            projection.bump(uow, "AC3D-9FGH", 1)
        assert projection.booking(uow, "AC3D-9FGH").version == 2


def test_forgetting_a_person_scrubs_their_bookings_and_drops_their_row(db):
    with db.transaction() as uow:
        projection.insert(uow, row("AAAA-0001"))
        projection.insert(uow, row("AAAA-0002", start=START + timedelta(days=1), mobile="+97333001122"))
        projection.insert(uow, row("AAAA-0003", cpr="900112346"))
        projection.claim_person(uow, "900112345")
        assert projection.forget(uow, "900112345") == 2
        rows = {r.reference: r for r in uow.execute(sa.select(projection.bookings))}
        assert uow.execute(sa.select(projection.people)).all() == []
    for reference in ("AAAA-0001", "AAAA-0002"):
        assert (rows[reference].cpr, rows[reference].name, rows[reference].email) == (ERASED, ERASED, ERASED)
    assert (rows["AAAA-0001"].mobile, rows["AAAA-0002"].mobile) == (None, ERASED)  # an empty field stays empty
    assert (rows["AAAA-0003"].cpr, rows["AAAA-0003"].status) == ("900112346", "active")
    assert {c.name for c in projection.bookings.columns if c.info.get("personal")} == {"cpr", "name", "mobile", "email"}


def test_a_replay_writes_two_statements_a_page_whatever_the_page_holds(db):
    """New bookings in one statement, changes to bookings of earlier pages in another."""
    later = START + timedelta(minutes=20)
    with db.transaction() as uow:
        for new in (booked(1, START), booked(2, START), cancelled(1, START), moved(2, START, later), booked(3, later),
                    cancelled(2, later)):
            uow.append(STREAM, uow.store.stream_version(STREAM), [new])
    with db.transaction() as uow:  # sequenced after the commit (PostgreSQL)
        events = uow.store.read_all()
    statements = []

    def count(conn, cursor, statement, *_):
        statements.append(statement)

    with db.transaction() as uow:
        sa.event.listen(uow.conn, "before_cursor_execute", count)
        projection.rebuild(uow, pages(events, 2))
        sa.event.remove(uow.conn, "before_cursor_execute", count)
        rows = {r.reference: (r.status, r.start) for r in uow.execute(sa.select(projection.bookings))}
    assert len(statements) == 4  # pages: two new bookings; changes to them; a new booking and a change
    assert rows == {"AAAA-0001": ("cancelled", START.replace(tzinfo=None)),
                    "AAAA-0002": ("cancelled", later.replace(tzinfo=None)),
                    "AAAA-0003": ("active", later.replace(tzinfo=None))}
