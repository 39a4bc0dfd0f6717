"""What the availability service answers and records (services/availability/commands.py): the catalogue synced
from its file, directorates and branches, and a day's slots with the places left, on SQLite and PostgreSQL."""
import copy
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
import yaml

from shared import catalogue, metrics
from shared.clock import LOCAL
from shared.errors import NotFound
from shared.events import Event
from shared.eventstore import EventStore
from shared.projection import latest
from services.availability import catalogue_file, commands, projection

BRANCH, PASSPORT = "npra-isa-town", "passport-renewal"   # office hours 07:00-14:00, 20-minute slots, 3 online
MONDAY, FRIDAY, HOLIDAY = date(2026, 12, 7), date(2026, 12, 11), date(2026, 12, 16)
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=LOCAL)


@pytest.fixture
def db(open_db):
    db = open_db("availability", projection.metadata)
    commands.sync_catalogue(db, None)
    return db


def edited(tmp_path, edit) -> str:
    """A copy of the seed catalogue file with `edit` applied to it."""
    source = copy.deepcopy(catalogue_file.read())
    edit(source)
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(source, allow_unicode=True), encoding="utf-8")
    return str(path)


def booking(reference: str, start: datetime) -> Event:
    """A SlotBooked with what counting places reads of it."""
    return Event(reference, "booking.SlotBooked", 2, "s", 1, 1, NOW, "c", None, "npra",
                 {"branch": BRANCH, "service": PASSPORT, "start": start.isoformat()})


def retried() -> float:
    return metrics.COMMAND_RETRIES.labels("availability", "sync-catalogue")._value.get()


def log_of(db) -> list:
    with db.transaction() as uow:
        return uow.store.read_all(limit=10_000)


# -- sync_catalogue -------------------------------------------------------------------------------------------

def test_a_sync_records_what_the_file_changed_and_nothing_the_second_time(db, tmp_path):
    recorded = len(log_of(db))
    assert recorded == len(catalogue_file.changes(catalogue_file.read(), {}, {}))
    assert commands.sync_catalogue(db, None) == 0
    path = edited(tmp_path, lambda c: c["opening_hours"]["office"].update(sun=[["07:30", "13:30"]]))
    offices = {b["id"] for d in catalogue_file.read()["directorates"] for b in d["branches"]
               if b["opening_hours"] == "office"}
    assert commands.sync_catalogue(db, path) == len(offices)
    assert {(e.type, e.payload["branch"]) for e in log_of(db)[recorded:]} == {
        ("availability.OpeningHoursSet", branch) for branch in offices}
    assert commands.sync_catalogue(db, path) == 0


def test_a_sync_that_meets_a_conflict_decides_again(db, tmp_path, monkeypatch):
    """Another instance syncing at the same moment: the first attempt reads a stream's version just before the
    other's append, so its own append is refused, and it decides again from what is there now."""
    read = EventStore.stream_version
    stale = iter([True])

    def stream_version(store, stream_id):
        return read(store, stream_id) - next(stale, False)

    monkeypatch.setattr(EventStore, "stream_version", stream_version)
    path = edited(tmp_path, lambda c: c["directorates"][3].update(name_en="Criminal Investigation Directorate"))
    retries = retried()
    assert commands.sync_catalogue(db, path) == 1
    assert retried() == retries + 1
    assert [e.payload["name_en"] for e in log_of(db) if e.stream_id == "directorate-cid"] == [
        "Criminal Information Directorate", "Criminal Investigation Directorate"]
    assert commands.directorates(db)[0]["name_en"] == "Criminal Investigation Directorate"


# -- directorates and branches ----------------------------------------------------------------------------------

def test_directorates_and_branches_in_id_order(db):
    assert [d["id"] for d in commands.directorates(db)] == ["cid", "customs", "npra", "traffic"]
    every = commands.branches(db, None)
    assert len(every) == 13 and [b["id"] for b in every] == sorted(b["id"] for b in every)
    assert [b["id"] for b in commands.branches(db, "npra")] == ["npra-isa-town", "npra-security-complex"]
    isa_town = commands.branches(db, "npra")[0]
    assert (isa_town["directorate"], isa_town["name_en"]) == ("npra", "Isa Town branch")
    assert [(s["id"], s["name_en"], s["duration_minutes"]) for s in isa_town["services"]] == [
        (PASSPORT, "Passport renewal", 20), ("residence-permit", "Residence permit", 30)]
    assert set(isa_town["services"][0]) == {"id", "name_en", "name_ar", "duration_minutes"}  # no capacities


def test_a_branch_shows_its_week_sunday_first_and_its_booking_window(db):
    isa_town, dana_mall = commands.branches(db, "npra")[0], commands.branches(db, "traffic")[0]
    week = isa_town["opening_hours"]
    assert [d["day"] for d in week] == ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    assert (week[0]["day_name_en"], week[0]["day_name_ar"]) == ("Sunday", "الأحد")
    assert week[1]["periods"] == [{"opens": "07:00", "closes": "14:00"}]
    assert week[5]["periods"] == [] and week[6]["periods"] == []          # the weekend: closed
    assert [p["opens"] for p in dana_mall["opening_hours"][0]["periods"]] == ["09:00", "16:00"]  # two periods
    assert isa_town["booking_window"] == {"min_notice_minutes": 60, "max_days_ahead": 30}


ISA_TOWN_ADDRESS = ("Building 123, Road 613, Block 806, Isa Town", "مبنى 123، طريق 613، مجمع 806، مدينة عيسى")


def test_a_branch_shows_its_street_address_in_both_languages(db):
    isa_town = commands.branches(db, "npra")[0]
    assert (isa_town["address_en"], isa_town["address_ar"]) == ISA_TOWN_ADDRESS
    every = commands.branches(db, None)
    assert all(b["address_en"] and b["address_ar"] for b in every)
    assert len({b["address_en"] for b in every}) == 13   # no two centres at one door


def test_a_new_address_in_the_file_is_recorded_once_and_answered(db, tmp_path):
    moved = "Building 200, Road 621, Block 806, Isa Town"
    path = edited(tmp_path, lambda c: c["directorates"][1]["branches"][0].update(address_en=moved))
    recorded = len(log_of(db))
    assert commands.sync_catalogue(db, path) == 1
    [event] = log_of(db)[recorded:]
    assert (event.type, event.version, event.payload["address_en"], event.payload["address_ar"]) == (
        "availability.BranchRegistered", 2, moved, ISA_TOWN_ADDRESS[1])
    assert commands.branches(db, "npra")[0]["address_en"] == moved
    assert commands.sync_catalogue(db, path) == 0


def test_a_catalogue_synced_before_addresses_gets_them_at_the_next_sync(open_db):
    """A log whose BranchRegistered events are v1 (no address): the branches answer "" until the next sync, which
    registers every branch again with its address (v2); the rest of the catalogue is left as it is."""
    db = open_db("availability", projection.metadata)
    with db.transaction() as uow:
        for change in catalogue_file.changes(catalogue_file.read(), {}, {}):
            new = change.event
            if new.type == "availability.BranchRegistered":   # as the suite wrote it before v2
                new = replace(new, version=1, payload={k: v for k, v in new.payload.items()
                                                       if k not in ("address_en", "address_ar")})
            for event in uow.append(change.stream_id, uow.store.stream_version(change.stream_id), [new]):
                catalogue.project(uow, latest(event))
    assert {(b["address_en"], b["address_ar"]) for b in commands.branches(db, None)} == {("", "")}
    recorded = len(log_of(db))
    assert commands.sync_catalogue(db, None) == 13
    assert {(e.type, e.version) for e in log_of(db)[recorded:]} == {("availability.BranchRegistered", 2)}
    isa_town = commands.branches(db, "npra")[0]
    assert (isa_town["address_en"], isa_town["address_ar"]) == ISA_TOWN_ADDRESS
    assert commands.sync_catalogue(db, None) == 0


def test_an_unknown_directorate_is_not_found(db):
    with pytest.raises(NotFound) as raised:
        commands.branches(db, "no-such-directorate")
    assert raised.value.code == "UNKNOWN_DIRECTORATE"


# -- availability -----------------------------------------------------------------------------------------------

def test_a_days_slots_with_the_places_left_and_whether_they_can_be_booked_now(db):
    start = datetime(2026, 12, 7, 11, 0, tzinfo=LOCAL)
    with db.transaction() as uow:
        for reference in ("AAAA-0001", "AAAA-0002"):
            projection.apply_booking_event(uow, booking(reference, start))
    answer = commands.availability(db, BRANCH, PASSPORT, MONDAY, NOW)
    assert (answer["branch"], answer["service"], answer["date"]) == (BRANCH, PASSPORT, "2026-12-07")
    assert "closed" not in answer
    slots = {s["start"]: s for s in answer["slots"]}
    assert len(slots) == 21
    assert slots[start.isoformat()] == {"start": "2026-12-07T11:00:00+03:00", "end": "2026-12-07T11:20:00+03:00",
                                        "capacity": 3, "remaining": 1, "bookable": True}
    assert [s["bookable"] for s in answer["slots"][:11]] == [False] * 9 + [True] * 2  # past or under an hour away


def test_a_full_slot_has_none_left_never_fewer(db):
    start = datetime(2026, 12, 7, 11, 0, tzinfo=LOCAL)
    with db.transaction() as uow:
        for n in range(4):
            projection.apply_booking_event(uow, booking(f"AAAA-000{n}", start))
    slot = next(s for s in commands.availability(db, BRANCH, PASSPORT, MONDAY, NOW)["slots"]
                if s["start"] == start.isoformat())
    assert (slot["capacity"], slot["remaining"]) == (3, 0)


@pytest.mark.parametrize("day, code", [(FRIDAY, "CLOSED"), (HOLIDAY, "HOLIDAY")])
def test_a_closed_day_has_no_slots_and_says_why(db, day, code):
    answer = commands.availability(db, BRANCH, PASSPORT, day, NOW)
    assert answer["slots"] == [] and answer["closed"]["code"] == code


@pytest.mark.parametrize("branch, service, code", [("nowhere", PASSPORT, "UNKNOWN_BRANCH"),
                                                   (BRANCH, "licence-renewal", "UNKNOWN_SERVICE")])
def test_an_unknown_branch_or_service_is_not_found(db, branch, service, code):
    with pytest.raises(NotFound) as raised:
        commands.availability(db, branch, service, MONDAY, NOW)
    assert raised.value.code == code



# -- the catalogue shrinks; the release delay -----------------------------------------------------------------

def shrunk(source):
    npra = source["directorates"][1]
    del npra["branches"][1]                                            # npra-security-complex closes down
    del npra["branches"][0]["services"]["residence-permit"]           # Isa Town stops issuing residence permits
    source["holidays"] = [h for h in source["holidays"] if str(h["date"]) != "2026-12-16"]  # National Day off


def test_what_the_file_no_longer_has_is_no_longer_offered(db, tmp_path):
    path = edited(tmp_path, shrunk)
    assert commands.sync_catalogue(db, path) > 0
    listed = {b["id"]: b for b in commands.branches(db, "npra")}
    assert set(listed) == {BRANCH}
    assert [s["id"] for s in listed[BRANCH]["services"]] == [PASSPORT]
    for branch, service, code in ((BRANCH, "residence-permit", "UNKNOWN_SERVICE"),
                                  ("npra-security-complex", PASSPORT, "UNKNOWN_BRANCH")):
        with pytest.raises(NotFound) as missing:
            commands.availability(db, branch, service, MONDAY, NOW)
        assert missing.value.code == code
    reopened = commands.availability(db, BRANCH, PASSPORT, HOLIDAY, NOW)
    assert reopened["slots"] and "closed" not in reopened
    assert commands.sync_catalogue(db, path) == 0


def cancelled(reference: str, start: datetime, at: datetime) -> Event:
    return Event(f"{reference}-x", "booking.BookingCancelled", 2, "s", 2, 2, at, "c", None, "npra",
                 {"branch": BRANCH, "service": PASSPORT, "start": start.isoformat(), "cancelled_by": "person",
                  "reason": "requested"})


@pytest.mark.parametrize("delay, minutes_after, remaining", [
    (0, 0, 3),            # no delay: free at once
    (30, 29, 2),          # still held a minute before the delay has passed
    (30, 30, 3),          # free from cancelled_at + delay on
])
def test_a_cancelled_place_counts_as_taken_until_the_release_delay_has_passed(db, tmp_path, delay, minutes_after,
                                                                              remaining):
    if delay:
        commands.sync_catalogue(db, edited(tmp_path, lambda c: c["booking_window"].update(
            release_delay_minutes=delay)))
    start = datetime(2026, 12, 8, 7, 0, tzinfo=LOCAL)
    at = NOW + timedelta(minutes=1)
    with db.transaction() as uow:
        projection.apply_booking_event(uow, booking("AAAA-0001", start))
        projection.apply_booking_event(uow, cancelled("AAAA-0001", start, at))
    day = commands.availability(db, BRANCH, PASSPORT, start.date(), at + timedelta(minutes=minutes_after))
    [slot] = [s for s in day["slots"] if s["start"] == start.isoformat()]
    assert (slot["capacity"], slot["remaining"]) == (3, remaining)
