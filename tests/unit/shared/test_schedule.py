"""The schedule of the service centres (shared/schedule.py): a branch document folded from availability's events
(apply), its opening periods, slots and closings, and the booking window, over the seed catalogue's branches."""
import re
import uuid
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest

from shared import schedule
from shared.clock import LOCAL, UTC
from shared.errors import NotFound
from shared.events import Event
from services.availability import catalogue_file

ARABIC = re.compile(r"[\u0600-\u06FF]")
SUNDAY, FRIDAY, SATURDAY, HOLIDAY = date(2026, 12, 6), date(2026, 12, 11), date(2026, 12, 12), date(2026, 12, 16)
MALLS = {"traffic-dana-mall", "traffic-wadi-al-sail-mall", "traffic-galleria-zinj-mall"}
ISA_TOWN, PASSPORT = "npra-isa-town", "passport-renewal"   # office hours 07:00-14:00, 20-minute slots


@pytest.fixture(scope="module")
def branches() -> dict:
    """The seed catalogue's branch documents (what folding its events with `apply` gives: see
    tests/unit/availability/test_catalogue_file.py)."""
    return catalogue_file.desired(catalogue_file.read())[1]


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=LOCAL)


def event(type_: str, **payload) -> Event:
    return Event(str(uuid.uuid4()), f"availability.{type_}", 1, "branch-b", 1, 1, datetime.now(UTC), "c", None,
                 "npra", {"branch": "b", **payload})


# -- apply: a branch document from its events --------------------------------------------------------------

def test_apply_folds_a_branchs_events_into_its_document():
    doc = None
    for e in [event("BranchRegistered", directorate="npra", name_en="B", name_ar="ب", min_notice_minutes=60,
                    max_days_ahead=30, address_en="Building 1, Road 2, Block 3, Isa Town",
                    address_ar="مبنى 1، طريق 2، مجمع 3، مدينة عيسى"),
              event("CounterCapacitySet", service="s", counters=3, online_capacity=2),  # before its offer: kept
              event("ServiceOffered", service="s", name_en="S", name_ar="س", duration_minutes=20, ticket_prefix="P"),
              event("OpeningHoursSet", week={"sun": [{"opens": "07:00", "closes": "14:00"}]}),
              event("QueuePolicySet", max_recalls=2),
              event("HolidayDeclared", date="2026-12-16", name_en="National Day", name_ar="اليوم الوطني")]:
        doc = schedule.apply(doc, e)
    assert doc == {
        "id": "b", "directorate": "npra", "name_en": "B", "name_ar": "ب", "min_notice_minutes": 60,
        "address_en": "Building 1, Road 2, Block 3, Isa Town", "address_ar": "مبنى 1، طريق 2، مجمع 3، مدينة عيسى",
        "max_days_ahead": 30, "week": {"sun": [["07:00", "14:00"]]}, "queue": {"max_recalls": 2},
        "services": {"s": {"id": "s", "name_en": "S", "name_ar": "س", "duration_minutes": 20, "ticket_prefix": "P",
                           "counters": 3, "online_capacity": 2}},
        "holidays": {"2026-12-16": {"name_en": "National Day", "name_ar": "اليوم الوطني"}}}


def test_a_branch_registered_again_takes_its_new_address_and_keeps_the_rest():
    registered = dict(directorate="npra", name_en="B", name_ar="ب", min_notice_minutes=60, max_days_ahead=30)
    doc = schedule.apply(None, event("BranchRegistered", **registered))   # a v1 payload: no address yet
    doc = schedule.apply(doc, event("ServiceOffered", service="s", name_en="S", name_ar="س", duration_minutes=20,
                                    ticket_prefix="P"))
    assert (doc["address_en"], doc["address_ar"]) == ("", "")   # as the v1 -> v2 upcaster says
    moved = schedule.apply(doc, event("BranchRegistered", **registered, address_en="Building 9, Road 8, Block 7, Riffa",
                                      address_ar="مبنى 9، طريق 8، مجمع 7، الرفاع"))
    assert (moved["address_en"], moved["address_ar"]) == ("Building 9, Road 8, Block 7, Riffa",
                                                          "مبنى 9، طريق 8، مجمع 7، الرفاع")
    assert moved["services"] == doc["services"] and doc["address_en"] == ""


def test_every_seed_branch_has_its_address_in_both_languages(branches):
    for branch in branches.values():
        assert re.search(r"Building \d+, Road \d+, Block \d+, \w", branch["address_en"]), branch["id"]
        assert re.search(r"مبنى \d+، طريق \d+، مجمع \d+، \w", branch["address_ar"]), branch["id"]


def test_apply_leaves_the_document_it_was_given_as_it_was():
    before = schedule.apply(None, event("ServiceOffered", service="s", name_en="S", name_ar="س", duration_minutes=20,
                                        ticket_prefix="P"))
    after = schedule.apply(before, event("CounterCapacitySet", service="s", counters=1, online_capacity=1))
    assert (before["services"]["s"]["counters"], after["services"]["s"]["counters"]) == (0, 1)
    assert schedule.apply(after, event("HolidayDeclared", date="2027-01-01", name_en="N", name_ar="ن"))["holidays"]
    assert after["holidays"] == {}


# -- slots and closings ----------------------------------------------------------------------------------

def test_working_day_slots_have_the_online_capacity(branches):
    for branch in branches.values():
        for service_id, service in branch["services"].items():
            day = schedule.slots(branch, service_id, SUNDAY)
            assert day, (branch["id"], service_id)
            assert {s.capacity for s in day} == {service["online_capacity"]}
            assert all(s.end - s.start == timedelta(minutes=service["duration_minutes"]) for s in day)
            assert all(a.end <= b.start for a, b in zip(day, day[1:]))
            assert schedule.closed_reason(branch, SUNDAY) is None


def test_main_building_slot_counts(branches):
    main = branches["traffic-main-building"]
    assert len(schedule.slots(main, "licence-renewal", SUNDAY)) == 28        # 7 h / 15 min
    assert len(schedule.slots(main, "vehicle-registration", SUNDAY)) == 21   # 7 h / 20 min
    assert len(schedule.slots(main, "licence-issue", SUNDAY)) == 14          # 7 h / 30 min
    assert schedule.slots(main, "passport-renewal", SUNDAY) == []


@pytest.mark.parametrize("day", [FRIDAY, SATURDAY, HOLIDAY, date(2026, 12, 17)])
def test_weekends_and_holidays_have_no_slots(branches, day):
    for branch in branches.values():
        for service_id in branch["services"]:
            assert schedule.slots(branch, service_id, day) == [], (branch["id"], service_id, day)


def test_closed_reason(branches):
    branch = branches["cid-southern"]
    assert schedule.closed_reason(branch, HOLIDAY) == {"code": "HOLIDAY", "name_en": "National Day",
                                                        "name_ar": "اليوم الوطني"}
    for day in (FRIDAY, SATURDAY):
        reason = schedule.closed_reason(branch, day)
        assert reason["code"] == "CLOSED" and reason["name_en"] and ARABIC.search(reason["name_ar"])
    assert schedule.closed_reason(branch, SUNDAY) is None


def test_mall_branches_have_evening_slots_and_others_do_not(branches):
    for branch in branches.values():
        starts = [s.start.astimezone(LOCAL) for s in schedule.slots(branch, next(iter(branch["services"])), SUNDAY)]
        evening = [s for s in starts if s.hour >= 19]   # ports close at 19:00, offices at 14:00
        if branch["id"] in MALLS:
            assert evening and max(starts).hour == 20, branch["id"]
            assert not [s for s in starts if 13 <= s.hour < 16], branch["id"]   # the afternoon break
        else:
            assert not evening, branch["id"]


def test_ports_work_a_long_single_shift(branches):
    day = schedule.slots(branches["customs-khalifa-port"], "customs-clearance", SUNDAY)
    assert day[0].start.astimezone(LOCAL).strftime("%H:%M") == "07:00"
    assert day[-1].end.astimezone(LOCAL).strftime("%H:%M") == "19:00"
    assert len(day) == 24


def test_a_slot_is_found_only_at_a_slot_start(branches):
    branch = branches[ISA_TOWN]
    found = schedule.slot_at(branch, PASSPORT, local(SUNDAY, 7, 20))
    assert found == schedule.Slot(local(SUNDAY, 7, 20).astimezone(UTC), local(SUNDAY, 7, 40).astimezone(UTC), 3)
    assert schedule.slot_at(branch, PASSPORT, local(SUNDAY, 7, 20).astimezone(UTC)) == found  # any offset
    for off_grid in (local(SUNDAY, 7, 10), local(SUNDAY, 14), local(FRIDAY, 9)):
        assert schedule.slot_at(branch, PASSPORT, off_grid) is None
    assert schedule.slot_at(branch, "no-such-service", local(SUNDAY, 7, 20)) is None


def test_a_slot_stream_names_the_slot_in_utc():
    assert schedule.slot_stream(ISA_TOWN, PASSPORT, local(SUNDAY, 7, 20)) == \
        "slot-npra-isa-town-passport-renewal-20261206T0420Z"


@pytest.mark.parametrize("start, problem", [
    (local(SUNDAY, 8, 0), "SLOT_IN_PAST"),
    (local(SUNDAY, 9, 0), "SLOT_IN_PAST"),              # now itself
    (local(SUNDAY, 9, 40), "TOO_SOON"),                 # less than the 60 minutes' notice
    (local(SUNDAY, 10, 0), None),
    (local(SUNDAY + timedelta(days=30), 13, 40), None),  # the last day of the window
    (local(SUNDAY + timedelta(days=31), 7, 0), "OUTSIDE_BOOKING_WINDOW"),
])
def test_the_booking_window(branches, start, problem):
    assert schedule.window_problem(branches[ISA_TOWN], start, local(SUNDAY, 9, 0)) == problem


@pytest.mark.parametrize("instant, open_", [
    (local(SUNDAY, 6, 59), False), (local(SUNDAY, 7, 0), True), (local(SUNDAY, 13, 59), True),
    (local(SUNDAY, 14, 0), False), (local(FRIDAY, 10), False), (local(HOLIDAY, 10), False),
    (local(SUNDAY, 10).astimezone(UTC), True),
])
def test_is_open_during_the_opening_periods_only(branches, instant, open_):
    assert schedule.is_open(branches[ISA_TOWN], instant) is open_


def test_closing_time_is_the_end_of_the_last_period(branches):
    assert schedule.closing_time(branches[ISA_TOWN], SUNDAY) == local(SUNDAY, 14)
    assert schedule.closing_time(branches["traffic-dana-mall"], SUNDAY) == local(SUNDAY, 21)
    assert schedule.closing_time(branches[ISA_TOWN], SATURDAY) is None
    assert schedule.closing_time(branches[ISA_TOWN], HOLIDAY) is None


def test_the_local_day_of_an_instant_is_bahrains():
    assert schedule.local_day(datetime(2026, 12, 5, 21, 0, tzinfo=UTC)) == SUNDAY    # midnight in Bahrain
    assert schedule.local_day(datetime(2026, 12, 5, 20, 59, tzinfo=UTC)) == SUNDAY - timedelta(days=1)


def test_require_service_names_what_is_unknown(branches):
    assert schedule.require_service(branches[ISA_TOWN], ISA_TOWN, PASSPORT)["duration_minutes"] == 20
    with pytest.raises(NotFound) as unknown_branch:
        schedule.require_service(None, "nowhere", PASSPORT)
    with pytest.raises(NotFound) as unknown_service:
        schedule.require_service(branches[ISA_TOWN], ISA_TOWN, "licence-renewal")
    assert (unknown_branch.value.code, unknown_service.value.code) == ("UNKNOWN_BRANCH", "UNKNOWN_SERVICE")


# -- the catalogue shrinks -------------------------------------------------------------------------------

def _event(type_: str, **payload):
    return SimpleNamespace(type=type_, payload={"branch": "b", **payload})


def _branch() -> dict:
    doc = schedule.apply(None, _event("availability.BranchRegistered", directorate="d", name_en="B", name_ar="ب",
                                      address_en="a", address_ar="ع", min_notice_minutes=60, max_days_ahead=30))
    doc = schedule.apply(doc, _event("availability.ServiceOffered", service="s", name_en="S", name_ar="خ",
                                     duration_minutes=20, ticket_prefix="P"))
    doc = schedule.apply(doc, _event("availability.CounterCapacitySet", service="s", counters=2, online_capacity=2))
    doc = schedule.apply(doc, _event("availability.OpeningHoursSet", week={"mon": [{"opens": "07:00",
                                                                                  "closes": "08:00"}]}))
    return schedule.apply(doc, _event("availability.HolidayDeclared", date="2026-12-14", name_en="H", name_ar="ع"))


MONDAYS = date(2026, 12, 7), date(2026, 12, 14)


def test_a_withdrawn_service_leaves_the_branch_but_keeps_its_names_and_twice_is_once():
    before = _branch()
    after = schedule.apply(before, _event("availability.ServiceWithdrawn", service="s"))
    assert "s" in before["services"] and "s" not in after["services"]   # a new dict: the old one is untouched
    assert schedule.slots(after, "s", MONDAYS[0]) == []
    assert schedule.with_former_services(after)["services"]["s"]["name_ar"] == "خ"
    assert schedule.apply(after, _event("availability.ServiceWithdrawn", service="s")) == after
    again = schedule.apply(after, _event("availability.ServiceOffered", service="s", name_en="S", name_ar="خ",
                                         duration_minutes=20, ticket_prefix="P"))
    assert "withdrawn_services" not in again and "s" in again["services"]


def test_a_retired_branch_has_no_slots_is_not_bookable_and_reopens_when_registered_again():
    retired = schedule.apply(_branch(), _event("availability.BranchRetired"))
    assert retired["name_en"] == "B" and schedule.slots(retired, "s", MONDAYS[0]) == []
    assert schedule.closed_reason(retired, MONDAYS[0])["code"] == "RETIRED"
    with pytest.raises(NotFound):
        schedule.require_service(retired, "b", "s")
    reopened = schedule.apply(retired, _event("availability.BranchRegistered", directorate="d", name_en="B",
                                              name_ar="ب", address_en="a", address_ar="ع", min_notice_minutes=60,
                                              max_days_ahead=30))
    assert len(schedule.slots(reopened, "s", MONDAYS[0])) == 3


def test_a_cancelled_holiday_opens_its_day_again():
    doc = _branch()
    assert schedule.slots(doc, "s", MONDAYS[1]) == []
    opened = schedule.apply(doc, _event("availability.HolidayCancelled", date="2026-12-14"))
    assert len(schedule.slots(opened, "s", MONDAYS[1])) == 3 and schedule.closed_reason(opened, MONDAYS[1]) is None


def test_the_release_delay_is_none_unless_set():
    doc = _branch()
    assert schedule.release_delay(doc) == timedelta(0)
    assert schedule.release_delay(schedule.apply(doc, _event("availability.ReleaseDelaySet",
                                                             release_delay_minutes=15))) == timedelta(minutes=15)


# -- wait_targets: the waiting-time targets of the queue policy ---------------------------------------------

def test_wait_targets_default_to_10_and_30_minutes_for_80_percent():
    defaults = {"appointment": 10, "walk_in": 30, "service_level": 0.8}
    assert schedule.wait_targets(None) == schedule.wait_targets({}, PASSPORT) == defaults
    assert schedule.wait_targets({"queue": {"max_recalls": 2}}, PASSPORT) == defaults   # a policy without targets
    assert schedule.DEFAULT_WAIT_TARGETS == {"appointment_wait_minutes": 10, "walk_in_wait_minutes": 30,
                                             "service_level": 0.8}


def test_a_branchs_targets_override_the_defaults_key_by_key():
    branch = {"queue": {"targets": {"walk_in_wait_minutes": 45, "service_level": 0.9}}}
    assert schedule.wait_targets(branch, PASSPORT) == {"appointment": 10, "walk_in": 45, "service_level": 0.9}
    assert schedule.wait_targets(branch) == schedule.wait_targets(branch, "any-service")


def test_a_services_targets_override_its_branchs():
    branch = {"queue": {"targets": {"appointment_wait_minutes": 15, "walk_in_wait_minutes": 40,
                                    "services": {PASSPORT: {"walk_in_wait_minutes": 20, "service_level": 0.7}}}}}
    assert schedule.wait_targets(branch, PASSPORT) == {"appointment": 15, "walk_in": 20, "service_level": 0.7}
    assert schedule.wait_targets(branch, "residence-permit") == {"appointment": 15, "walk_in": 40,
                                                                 "service_level": 0.8}
    assert schedule.wait_targets(branch) == {"appointment": 15, "walk_in": 40, "service_level": 0.8}


def test_the_seed_branches_carry_the_catalogues_targets(branches):
    for branch in branches.values():
        assert branch["queue"]["targets"] == {"appointment_wait_minutes": 10, "walk_in_wait_minutes": 30,
                                              "service_level": 0.8}
        assert schedule.wait_targets(branch, PASSPORT) == {"appointment": 10, "walk_in": 30, "service_level": 0.8}


def test_a_queue_policy_folds_its_targets_into_the_branch():
    targets = {"appointment_wait_minutes": 12, "services": {PASSPORT: {"walk_in_wait_minutes": 20}}}
    doc = schedule.apply(None, event("QueuePolicySet", max_recalls=2, targets=targets))
    assert doc["queue"] == {"max_recalls": 2, "targets": targets}
    assert schedule.wait_targets(doc, PASSPORT) == {"appointment": 12, "walk_in": 20, "service_level": 0.8}
