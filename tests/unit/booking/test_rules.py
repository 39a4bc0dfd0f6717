"""The booking rules (services/booking/rules.py), the CPRs they take and the schedule they read (shared/schedule.py).

Branch documents come from the real seed catalogue file through catalogue_file.desired(), or are built by
applying availability events with shared.schedule.apply, as the booking service's projection does.
"""
import uuid
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from shared import schedule
from shared.clock import LOCAL, UTC
from shared.contracts import validated_payload
from shared.events import Event
from shared.contracts.fields import validate_cpr
from shared.errors import Conflict, NotFound
from services.availability import catalogue_file
from services.booking import rules

# 2026-12-06 is a Sunday (a working day); 2026-12-11/12 are Friday/Saturday; 2026-12-16 is National Day.
SUNDAY = date(2026, 12, 6)
FRIDAY, SATURDAY, HOLIDAY = date(2026, 12, 11), date(2026, 12, 12), date(2026, 12, 16)
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=LOCAL)   # 06:00 UTC

OFFICE = "traffic-main-building"   # office hours 07:00-14:00 local, min notice 60 min, 30 days ahead
MALL = "traffic-dana-mall"         # 09:00-13:00 and 16:00-21:00 local
RENEWAL = "licence-renewal"        # 15 minutes


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """An instant given in Bahrain local time."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=LOCAL)


@pytest.fixture(scope="module")
def branches():
    _, found = catalogue_file.desired(catalogue_file.read())
    return found


def stored(type_: str, payload: dict, position: int) -> Event:
    """An availability event as the store would hand it out (payload passed through its contract)."""
    return Event(event_id=str(uuid.uuid4()), type=type_, version=1, stream_id="branch-test", stream_version=position,
                 position=position, occurred_at=datetime(2026, 12, 1, tzinfo=UTC), correlation_id=str(uuid.uuid4()),
                 causation_id=None, directorate="test", payload=validated_payload(type_, 1, payload))


def branch_from_events(min_notice: int = 0, max_days: int = 1, online: int = 2) -> dict:
    events = [
        ("availability.BranchRegistered", {"branch": "test", "directorate": "test", "name_en": "Test",
                                           "name_ar": "اختبار", "min_notice_minutes": min_notice,
                                           "max_days_ahead": max_days}),
        ("availability.ServiceOffered", {"branch": "test", "service": "svc", "name_en": "Service",
                                         "name_ar": "خدمة", "duration_minutes": 30, "ticket_prefix": "A"}),
        ("availability.CounterCapacitySet", {"branch": "test", "service": "svc", "counters": 3,
                                             "online_capacity": online}),
        ("availability.OpeningHoursSet", {"branch": "test", "week": {
            "sun": [{"opens": "08:00", "closes": "10:00"}], "mon": [{"opens": "08:00", "closes": "10:00"}]}}),
        ("availability.HolidayDeclared", {"branch": "test", "date": "2026-12-07", "name_en": "Day off",
                                          "name_ar": "عطلة"}),
    ]
    doc = None
    for position, (type_, payload) in enumerate(events, start=1):
        doc = schedule.apply(doc, stored(type_, payload, position))
    return doc


def refused(excinfo, code: str, status: int = 409) -> None:
    assert excinfo.value.code == code
    assert excinfo.value.status == status
    assert excinfo.value.message and excinfo.value.message_ar
    assert excinfo.value.as_body()["error"]["code"] == code


# -- CPR -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cpr", ["850612345", "000112345", "991212345", "031098765"])
def test_valid_cpr_is_accepted(cpr):
    validate_cpr(cpr)


@pytest.mark.parametrize("cpr", [
    "85061234",      # 8 digits
    "8506123456",    # 10 digits
    "850012345",     # month 00
    "851312345",     # month 13
    "852012345",     # month 20
    "85061234A",     # a letter
    "A50612345",
    "8506-2345",
    " 850612345",
    "",
    "８５０６１２３４５",  # full-width digits
])
def test_malformed_cpr_is_refused(cpr):
    with pytest.raises(ValidationError):
        validate_cpr(cpr)


@pytest.mark.parametrize("cpr", [850612345, None, 8.5e8, ["850612345"], b"850612345"])
def test_cpr_must_be_a_string(cpr):
    with pytest.raises(ValidationError):
        validate_cpr(cpr)


def test_cpr_with_trailing_newline_is_refused():
    with pytest.raises(ValidationError):
        validate_cpr("850612345\n")


def test_cpr_with_non_ascii_digits_is_refused():
    with pytest.raises(ValidationError):
        validate_cpr("٨٥06١٢٣٤٥")


# -- bookable_slot ---------------------------------------------------------------------------------------

def test_a_working_day_slot_is_bookable_and_returned_in_utc(branches):
    slot = rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(SUNDAY, 10, 15), NOW)
    assert slot.start == datetime(2026, 12, 6, 7, 15, tzinfo=UTC)
    assert slot.start.utcoffset() == timedelta(0)
    assert slot.end - slot.start == timedelta(minutes=15)
    assert slot.capacity == 3   # main building: 4 counters, 3 online


def test_unknown_branch_is_404(branches):
    with pytest.raises(NotFound) as excinfo:
        rules.bookable_slot(branches.get("nowhere"), "nowhere", RENEWAL, at(SUNDAY, 10), NOW)
    refused(excinfo, "UNKNOWN_BRANCH", 404)


def test_unknown_service_is_404(branches):
    with pytest.raises(NotFound) as excinfo:   # the driving school only issues new licences
        rules.bookable_slot(branches["traffic-driving-school"], "traffic-driving-school", RENEWAL,
                            at(SUNDAY, 10), NOW)
    refused(excinfo, "UNKNOWN_SERVICE", 404)


def test_unknown_service_wins_over_a_past_time(branches):
    with pytest.raises(NotFound) as excinfo:
        rules.bookable_slot(branches[OFFICE], OFFICE, "passport-renewal", at(SUNDAY, 7), NOW)
    refused(excinfo, "UNKNOWN_SERVICE", 404)


@pytest.mark.parametrize("start", [at(SUNDAY, 8, 45), at(SUNDAY, 9, 0), at(SUNDAY - timedelta(days=3), 10)])
def test_slot_in_the_past(branches, start):
    with pytest.raises(Conflict) as excinfo:
        rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, start, NOW)
    refused(excinfo, "SLOT_IN_PAST")


def test_too_soon_inside_the_minimum_notice(branches):
    assert branches[OFFICE]["min_notice_minutes"] == 60
    with pytest.raises(Conflict) as excinfo:
        rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(SUNDAY, 9, 45), NOW)
    refused(excinfo, "TOO_SOON")
    # exactly the minimum notice is allowed
    assert rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(SUNDAY, 10, 0), NOW).start == \
        at(SUNDAY, 10, 0)


def test_outside_the_booking_window(branches):
    assert branches[OFFICE]["max_days_ahead"] == 30
    last_day = SUNDAY + timedelta(days=30)      # Tuesday 2027-01-05
    assert rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(last_day, 13, 45), NOW)
    with pytest.raises(Conflict) as excinfo:
        rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(last_day + timedelta(days=1), 7), NOW)
    refused(excinfo, "OUTSIDE_BOOKING_WINDOW")


@pytest.mark.parametrize("start, why", [
    (at(FRIDAY, 10), "Friday"),
    (at(SATURDAY, 10), "Saturday"),
    (at(HOLIDAY, 10), "National Day"),
    (at(SUNDAY, 10, 5), "not aligned to a 15-minute slot"),
    (at(SUNDAY, 10, 15) + timedelta(seconds=30), "seconds off a slot start"),
    (at(SUNDAY, 14, 0), "the closing time"),
    (at(SUNDAY, 14, 30), "after closing"),
    (at(SUNDAY + timedelta(days=1), 6, 45), "before opening"),
])
def test_slot_unavailable(branches, start, why):
    with pytest.raises(Conflict) as excinfo:
        rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, start, NOW)
    refused(excinfo, "SLOT_UNAVAILABLE")


def test_mall_evening_slot_is_bookable_and_the_afternoon_break_is_not(branches):
    evening = rules.bookable_slot(branches[MALL], MALL, RENEWAL, at(SUNDAY, 20, 45), NOW)
    assert evening.start == datetime(2026, 12, 6, 17, 45, tzinfo=UTC)
    assert evening.end.astimezone(LOCAL).hour == 21
    with pytest.raises(Conflict) as excinfo:
        rules.bookable_slot(branches[MALL], MALL, RENEWAL, at(SUNDAY, 14, 0), NOW)
    refused(excinfo, "SLOT_UNAVAILABLE")


def test_branch_built_from_events_follows_its_own_window_and_hours():
    branch = branch_from_events(min_notice=0, max_days=1, online=2)
    now = at(SUNDAY, 7, 0)
    slot = rules.bookable_slot(branch, "test", "svc", at(SUNDAY, 9, 30), now)
    assert (slot.start, slot.capacity) == (datetime(2026, 12, 6, 6, 30, tzinfo=UTC), 2)
    with pytest.raises(Conflict) as excinfo:   # 10:00 is closing time
        rules.bookable_slot(branch, "test", "svc", at(SUNDAY, 10, 0), now)
    refused(excinfo, "SLOT_UNAVAILABLE")
    with pytest.raises(Conflict) as excinfo:   # Monday is declared a holiday
        rules.bookable_slot(branch, "test", "svc", at(SUNDAY + timedelta(days=1), 8, 0), now)
    refused(excinfo, "SLOT_UNAVAILABLE")
    with pytest.raises(Conflict) as excinfo:   # one day ahead at most
        rules.bookable_slot(branch, "test", "svc", at(SUNDAY + timedelta(days=7), 8, 0), now)
    refused(excinfo, "OUTSIDE_BOOKING_WINDOW")


# -- Bahrain local time ----------------------------------------------------------------------------------

def test_slots_are_generated_in_bahrain_time_and_returned_in_utc(branches):
    day = schedule.slots(branches[OFFICE], RENEWAL, SUNDAY)
    assert len(day) == 28   # 07:00-14:00 in 15-minute slots
    assert day[0].start == datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
    assert day[-1].end == datetime(2026, 12, 6, 11, 0, tzinfo=UTC)
    assert all(s.start.utcoffset() == timedelta(0) and s.end.utcoffset() == timedelta(0) for s in day)
    assert [s.start.astimezone(LOCAL).strftime("%H:%M") for s in day[:3]] == ["07:00", "07:15", "07:30"]


def test_the_same_instant_in_any_offset_is_the_same_slot(branches):
    branch = branches[OFFICE]
    local = at(SUNDAY, 10, 0)
    in_utc = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    in_other = datetime(2026, 12, 6, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    slots = {rules.bookable_slot(branch, OFFICE, RENEWAL, s, NOW) for s in (local, in_utc, in_other)}
    assert len(slots) == 1
    assert schedule.slot_stream(OFFICE, RENEWAL, local) == f"slot-{OFFICE}-{RENEWAL}-20261206T0700Z"
    # 07:00 *UTC* is 10:00 local; 07:00 local is 04:00 UTC, before NOW
    with pytest.raises(Conflict) as excinfo:
        rules.bookable_slot(branch, OFFICE, RENEWAL, datetime(2026, 12, 6, 4, 0, tzinfo=UTC), NOW)
    refused(excinfo, "SLOT_IN_PAST")


def test_booking_window_counts_local_days_not_utc_days(branches):
    # 22:30 UTC on Sunday is already 01:30 on Monday in Bahrain: the window runs to Wednesday 2027-01-06 local.
    now = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    slot = rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(date(2027, 1, 6), 7, 0), now)
    assert slot.start == datetime(2027, 1, 6, 4, 0, tzinfo=UTC)
    with pytest.raises(Conflict) as excinfo:
        rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(date(2027, 1, 7), 7, 0), now)
    refused(excinfo, "OUTSIDE_BOOKING_WINDOW")


def test_friday_in_utc_terms_is_judged_by_its_local_day(branches):
    # Thursday 2026-12-10 21:00 UTC is Friday 00:00 in Bahrain; Sunday 2026-12-06 04:00 UTC is Sunday 07:00.
    assert schedule.slot_at(branches[OFFICE], RENEWAL, datetime(2026, 12, 6, 4, 0, tzinfo=UTC)) is not None
    thursday_night_utc = datetime(2026, 12, 10, 21, 0, tzinfo=UTC)
    assert schedule.slot_at(branches[OFFICE], RENEWAL, thursday_night_utc) is None
    assert schedule.slots(branches[OFFICE], RENEWAL, thursday_night_utc.astimezone(LOCAL).date()) == []


# -- room and person -------------------------------------------------------------------------------------

def test_check_room_refuses_at_capacity(branches):
    slot = rules.bookable_slot(branches[OFFICE], OFFICE, RENEWAL, at(SUNDAY, 11), NOW)
    for taken in range(slot.capacity):
        rules.check_room(slot, taken)
    for taken in (slot.capacity, slot.capacity + 1):
        with pytest.raises(Conflict) as excinfo:
            rules.check_room(slot, taken)
        refused(excinfo, "SLOT_FULL")


def test_check_room_with_no_online_capacity_refuses_the_first_booking():
    branch = branch_from_events(online=0)
    slot = rules.bookable_slot(branch, "test", "svc", at(SUNDAY, 9, 0), at(SUNDAY, 7, 0))
    assert slot.capacity == 0
    with pytest.raises(Conflict) as excinfo:
        rules.check_room(slot, 0)
    refused(excinfo, "SLOT_FULL")


def booking(service: str, ref: str = "AC3D-9FGH") -> rules.ActiveBooking:
    return rules.ActiveBooking(ref, service, at(SUNDAY + timedelta(days=1), 10))


def test_check_person_allows_other_services_under_the_cap():
    rules.check_person([], RENEWAL)
    rules.check_person([booking("passport-renewal"), booking("good-conduct")], RENEWAL)


def test_check_person_refuses_a_second_booking_for_the_same_service():
    with pytest.raises(Conflict) as excinfo:
        rules.check_person([booking("passport-renewal"), booking(RENEWAL, "XY34-7KMN")], RENEWAL)
    refused(excinfo, "ALREADY_BOOKED")
    assert "XY34-7KMN" in excinfo.value.message and "XY34-7KMN" in excinfo.value.message_ar


def test_check_person_refuses_at_the_booking_limit():
    assert rules.MAX_ACTIVE_BOOKINGS == 3
    active = [booking("passport-renewal"), booking("good-conduct"), booking("fingerprinting")]
    with pytest.raises(Conflict) as excinfo:
        rules.check_person(active, RENEWAL)
    refused(excinfo, "BOOKING_LIMIT")
    rules.check_person(active, RENEWAL, limit=4)
    with pytest.raises(Conflict) as excinfo:
        rules.check_person(active[:1], RENEWAL, limit=1)
    refused(excinfo, "BOOKING_LIMIT")


# -- a booking's changes ---------------------------------------------------------------------------------

STARTS = at(SUNDAY, 11)   # after NOW


def test_a_booking_is_only_found_with_its_own_cpr():
    mine = SimpleNamespace(cpr="900112345")
    rules.check_owner(mine, "900112345")
    for booking, cpr in ((mine, "900112346"), (None, "900112345")):  # a wrong CPR reads as an unknown reference
        with pytest.raises(NotFound) as excinfo:
            rules.check_owner(booking, cpr)
        refused(excinfo, "BOOKING_NOT_FOUND", 404)


def test_cancelling_an_active_booking_before_it_starts():
    assert rules.check_cancel("active", STARTS, NOW) is True


def test_cancelling_twice_is_not_an_error_even_once_started():
    assert rules.check_cancel("cancelled", STARTS, NOW) is False
    assert rules.check_cancel("cancelled", NOW, NOW) is False


@pytest.mark.parametrize("status", ["active", "expired"])
@pytest.mark.parametrize("start", [NOW, NOW - timedelta(minutes=1)])
def test_a_started_appointment_cannot_be_cancelled(status, start):
    with pytest.raises(Conflict) as excinfo:
        rules.check_cancel(status, start, NOW)
    refused(excinfo, "BOOKING_STARTED")
    assert "cancelled" in excinfo.value.message


def test_rescheduling_moves_an_active_booking_unless_it_is_already_there():
    later = STARTS + timedelta(minutes=15)
    assert rules.check_reschedule("active", STARTS, later, NOW) is True
    assert rules.check_reschedule("active", STARTS, STARTS, NOW) is False
    assert rules.check_reschedule("active", STARTS, STARTS.astimezone(UTC), NOW) is False  # the same instant


@pytest.mark.parametrize("status", ["cancelled", "expired"])
def test_only_an_active_booking_is_rescheduled(status):
    with pytest.raises(Conflict) as excinfo:   # even to where it already is
        rules.check_reschedule(status, STARTS, STARTS, NOW)
    refused(excinfo, "BOOKING_CANCELLED")


@pytest.mark.parametrize("start", [NOW, NOW - timedelta(minutes=1)])
def test_a_started_appointment_cannot_be_moved(start):
    with pytest.raises(Conflict) as excinfo:
        rules.check_reschedule("active", start, STARTS, NOW)
    refused(excinfo, "BOOKING_STARTED")
    assert "moved" in excinfo.value.message


def test_only_an_active_booking_expires():
    assert rules.expires("active")
    assert not rules.expires("cancelled") and not rules.expires("expired")


@pytest.mark.parametrize("forgot_something, recorded_before, records", [
    (True, False, True), (True, True, True),   # something was forgotten now
    (False, False, True),                      # a person this service never knew: the others may
    (False, True, False),                      # erasing twice records nothing new
])
def test_erasing_a_person_is_recorded_once_unless_there_is_more_to_forget(forgot_something, recorded_before, records):
    assert rules.records_erasure(forgot_something, recorded_before) is records
