"""The catalogue file (services/availability/catalogue_file.py): the seed file, the events that load it
(changes) and what folding them gives back, and the errors a malformed file raises."""
import copy
import re
import uuid
from collections import Counter
from datetime import date, datetime

import pytest

from shared import schedule
from shared.clock import UTC
from shared.contracts import CONTRACTS, latest_version, validated_payload
from shared.events import Event
from services.availability import catalogue_file

ARABIC = re.compile(r"[\u0600-\u06FF]")
SUNDAY = date(2026, 12, 6)
MALLS = {"traffic-dana-mall", "traffic-wadi-al-sail-mall", "traffic-galleria-zinj-mall"}

DESIGN_BRANCHES = {
    "traffic": {("Dana Mall branch", "فرع مجمع الدانة"), ("Wadi Al Sail Mall branch", "فرع مجمع وادي السيل"),
                ("Main Building", "المبنى الرئيسي"),
                ("Traffic Operations and Monitoring Directorate", "إدارة العمليات والمراقبة المرورية"),
                ("Galleria Zinj Mall", "مجمع جاليريا الزنج"), ("Driving School", "مدرسة السياقة"),
                ("Nabih Saleh Office", "مكتب النبيه صالح")},
    "npra": {("Isa Town branch", "فرع مدينة عيسى"), ("Security Complex branch", "فرع المجمع الأمني")},
    "customs": {("Customs Clearance Service Centre, Khalifa bin Salman Port",
                 "مركز خدمات التخليص الجمركي في ميناء خليفة بن سلمان"), ("Land Port", "المنفذ البري")},
    "cid": {("Security Complex branch", "فرع المجمع الأمني"), ("Southern branch", "فرع الجنوبية")},
}


@pytest.fixture
def seed():
    return catalogue_file.read()


def as_stored(changes) -> list[Event]:
    """The changes as the store would record them: latest version, payload through its contract, positions."""
    events, versions = [], Counter()
    for position, change in enumerate(changes, start=1):
        new = change.event
        version = new.version or latest_version(new.type)
        versions[change.stream_id] += 1
        events.append(Event(
            event_id=new.event_id, type=new.type, version=version, stream_id=change.stream_id,
            stream_version=versions[change.stream_id], position=position,
            occurred_at=datetime(2026, 12, 1, tzinfo=UTC), correlation_id=new.correlation_id or new.event_id,
            causation_id=None, directorate=new.directorate, payload=validated_payload(new.type, version, new.payload)))
    return events


def project(events, directorates=None, branches=None) -> tuple[dict, dict]:
    """What shared.catalogue.project keeps, in memory: directorates by id and branch documents by id."""
    directorates, branches = dict(directorates or {}), dict(branches or {})
    for event in events:
        p = event.payload
        if event.type == "availability.DirectorateRegistered":
            directorates[p["directorate"]] = {"id": p["directorate"], "name_en": p["name_en"], "name_ar": p["name_ar"]}
        else:
            branches[p["branch"]] = schedule.apply(branches.get(p["branch"]), event)
    return directorates, branches


@pytest.fixture
def loaded(seed):
    return project(as_stored(catalogue_file.changes(seed, {}, {})))


# -- the seed file ---------------------------------------------------------------------------------------

def test_seed_has_four_directorates_and_thirteen_branches(seed):
    directorates, branches = catalogue_file.desired(seed)
    assert sorted(directorates) == ["cid", "customs", "npra", "traffic"]
    assert len(branches) == 13
    assert Counter(b["directorate"] for b in branches.values()) == {"traffic": 7, "npra": 2, "customs": 2, "cid": 2}


def test_every_name_exists_in_arabic_and_english(seed):
    directorates, branches = catalogue_file.desired(seed)
    named = list(directorates.values()) + list(branches.values()) + \
        [s for b in branches.values() for s in b["services"].values()] + \
        [h for b in branches.values() for h in b["holidays"].values()]
    assert len(named) > 4 + 13
    for thing in named:
        assert isinstance(thing["name_en"], str) and thing["name_en"].strip(), thing
        assert isinstance(thing["name_ar"], str) and ARABIC.search(thing["name_ar"]), thing
        assert not ARABIC.search(thing["name_en"]), thing


def test_the_branches_of_the_design_are_all_there(seed):
    _, branches = catalogue_file.desired(seed)
    found = {}
    for b in branches.values():
        found.setdefault(b["directorate"], set()).add((b["name_en"], b["name_ar"]))
    assert found == DESIGN_BRANCHES


def test_every_branch_offers_services_with_sane_capacity(seed):
    _, branches = catalogue_file.desired(seed)
    for b in branches.values():
        assert b["services"], b["id"]
        assert b["week"], b["id"]
        for s in b["services"].values():
            assert 0 < s["online_capacity"] <= s["counters"], (b["id"], s["id"])
            assert s["duration_minutes"] > 0


# -- changes(): the events that load the file ------------------------------------------------------------

def test_changes_on_an_empty_projection_are_valid_events(seed):
    changes = catalogue_file.changes(seed, {}, {})
    kinds = Counter(c.event.type for c in changes)
    assert kinds["availability.DirectorateRegistered"] == 4
    assert kinds["availability.BranchRegistered"] == 13
    assert kinds["availability.OpeningHoursSet"] == 13
    assert kinds["availability.ServiceOffered"] == kinds["availability.CounterCapacitySet"] == 23
    assert kinds["availability.HolidayDeclared"] == 13 * len(seed["holidays"])
    for change in changes:
        event = change.event
        assert f"{event.type}.v{latest_version(event.type)}" in CONTRACTS
        assert validated_payload(event.type, latest_version(event.type), event.payload) is not None
        assert event.directorate in {"traffic", "npra", "customs", "cid"}
        if event.type == "availability.DirectorateRegistered":
            assert change.stream_id == f"directorate-{event.payload['directorate']}"
        else:
            assert change.stream_id == f"branch-{event.payload['branch']}"
    assert len({c.event.event_id for c in changes}) == len(changes)


def test_a_branch_is_registered_before_anything_else_on_its_stream(seed):
    first = {}
    for change in catalogue_file.changes(seed, {}, {}):
        first.setdefault(change.stream_id, change.event.type)
    assert {t for s, t in first.items() if s.startswith("branch-")} == {"availability.BranchRegistered"}


def test_applying_the_changes_gives_back_the_file(seed, loaded):
    assert loaded == catalogue_file.desired(seed)


def test_loading_the_same_file_twice_changes_nothing(seed, loaded):
    assert catalogue_file.changes(seed, *loaded) == []


def test_editing_one_branchs_hours_yields_one_opening_hours_set(seed, loaded):
    edited = copy.deepcopy(seed)
    branch = edited["directorates"][0]["branches"][6]
    assert branch["id"] == "traffic-nabih-saleh"
    branch["opening_hours"] = {day: [["07:30", "13:30"]] for day in ("sun", "mon", "tue", "wed", "thu")}
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type) for c in changes] == [
        ("branch-traffic-nabih-saleh", "availability.OpeningHoursSet")]
    _, branches = project(as_stored(changes), *loaded)
    assert branches["traffic-nabih-saleh"]["week"]["sun"] == [["07:30", "13:30"]]
    assert catalogue_file.changes(edited, *project(as_stored(changes), *loaded)) == []


def test_editing_a_shared_pattern_yields_one_event_per_branch_using_it(seed, loaded):
    edited = copy.deepcopy(seed)
    edited["opening_hours"]["mall"]["thu"] = [["09:00", "13:00"], ["16:00", "22:00"]]
    changes = catalogue_file.changes(edited, *loaded)
    assert {c.event.type for c in changes} == {"availability.OpeningHoursSet"}
    assert {c.event.payload["branch"] for c in changes} == MALLS


def test_changing_counters_yields_one_counter_capacity_set(seed, loaded):
    edited = copy.deepcopy(seed)
    edited["directorates"][1]["branches"][0]["services"]["passport-renewal"] = {"counters": 5, "online": 4}
    changes = catalogue_file.changes(edited, *loaded)
    assert len(changes) == 1
    change = changes[0]
    assert (change.stream_id, change.event.type) == ("branch-npra-isa-town", "availability.CounterCapacitySet")
    assert change.event.payload == {"branch": "npra-isa-town", "service": "passport-renewal",
                                    "counters": 5, "online_capacity": 4}
    _, branches = project(as_stored(changes), *loaded)
    assert schedule.slots(branches["npra-isa-town"], "passport-renewal", SUNDAY)[0].capacity == 4


def test_online_capacity_defaults_to_all_counters(seed, loaded):
    edited = copy.deepcopy(seed)
    edited["directorates"][2]["branches"][1]["services"]["customs-clearance"] = {"counters": 5}
    changes = catalogue_file.changes(edited, *loaded)
    assert [c.event.payload for c in changes] == [{"branch": "customs-land-port", "service": "customs-clearance",
                                                   "counters": 5, "online_capacity": 5}]


def test_a_new_holiday_yields_one_holiday_declared_per_branch(seed, loaded):
    # Holidays in the file are public holidays: they close every branch, and HolidayDeclared names one branch.
    edited = copy.deepcopy(seed)
    edited["holidays"].append({"date": date(2027, 4, 4), "name_en": "Test holiday", "name_ar": "عطلة تجريبية"})
    changes = catalogue_file.changes(edited, *loaded)
    assert {c.event.type for c in changes} == {"availability.HolidayDeclared"}
    assert Counter(c.event.payload["branch"] for c in changes) == Counter({b: 1 for b in loaded[1]})
    assert {c.event.payload["date"] for c in changes} == {"2027-04-04"}
    _, branches = project(as_stored(changes), *loaded)
    assert schedule.slots(branches["npra-isa-town"], "passport-renewal", date(2027, 4, 4)) == []
    assert schedule.closed_reason(branches["npra-isa-town"], date(2027, 4, 4))["code"] == "HOLIDAY"


def test_a_new_service_at_a_branch_yields_its_offer_and_capacity(seed, loaded):
    edited = copy.deepcopy(seed)
    edited["directorates"][0]["branches"][5]["services"]["licence-renewal"] = {"counters": 1, "online": 1}
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type) for c in changes] == [
        ("branch-traffic-driving-school", "availability.ServiceOffered"),
        ("branch-traffic-driving-school", "availability.CounterCapacitySet"),
        ("branch-traffic-driving-school", "availability.QueuePolicySet")]  # the new service's walk-in quota


def test_changing_a_directorate_name_yields_one_directorate_registered(seed, loaded):
    edited = copy.deepcopy(seed)
    edited["directorates"][3]["name_en"] = "Criminal Investigation Directorate"
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type) for c in changes] == [
        ("directorate-cid", "availability.DirectorateRegistered")]


def test_a_branch_booking_window_override_yields_one_branch_registered(seed, loaded):
    edited = copy.deepcopy(seed)
    edited["directorates"][2]["branches"][0]["booking_window"] = {"max_days_ahead": 60}
    changes = catalogue_file.changes(edited, *loaded)
    assert [c.event.type for c in changes] == ["availability.BranchRegistered"]
    assert changes[0].event.payload["max_days_ahead"] == 60
    assert changes[0].event.payload["min_notice_minutes"] == 60   # the default still applies


def test_every_branch_has_a_street_address_in_english_and_arabic(seed):
    _, branches = catalogue_file.desired(seed)
    for b in branches.values():
        assert re.fullmatch(r"(.+, )?Building \d+, Road \d+, Block \d+, [A-Z][A-Za-z ]+", b["address_en"]), b["id"]
        assert re.fullmatch(r"(.+، )?مبنى \d+، طريق \d+، مجمع \d+، [\u0600-\u06FF ]+", b["address_ar"]), b["id"]
        assert not ARABIC.search(b["address_en"])
    assert branches["npra-isa-town"]["address_en"] == "Building 123, Road 613, Block 806, Isa Town"
    assert branches["npra-isa-town"]["address_ar"] == "مبنى 123، طريق 613، مجمع 806، مدينة عيسى"


def test_the_address_is_registered_with_the_branch(seed):
    [registered] = [c for c in catalogue_file.changes(seed, {}, {})
                    if c.event.type == "availability.BranchRegistered" and c.stream_id == "branch-npra-isa-town"]
    assert (registered.event.version or latest_version(registered.event.type)) == 2
    assert (registered.event.payload["address_en"], registered.event.payload["address_ar"]) == (
        "Building 123, Road 613, Block 806, Isa Town", "مبنى 123، طريق 613، مجمع 806، مدينة عيسى")


@pytest.mark.parametrize("key", ["address_en", "address_ar"])
def test_changing_an_address_yields_one_branch_registered_and_folds_into_the_branch(seed, loaded, key):
    edited = copy.deepcopy(seed)
    moved = {"address_en": "Building 9, Road 4410, Block 944, Riffa", "address_ar": "مبنى 9، طريق 4410، مجمع 944، الرفاع"}
    edited["directorates"][1]["branches"][0][key] = moved[key]    # npra-isa-town
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type) for c in changes] == [("branch-npra-isa-town", "availability.BranchRegistered")]
    assert changes[0].event.payload[key] == moved[key]
    _, branches = project(as_stored(changes), *loaded)
    assert branches["npra-isa-town"][key] == moved[key]
    assert branches["npra-isa-town"]["services"] == loaded[1]["npra-isa-town"]["services"]
    assert catalogue_file.changes(edited, *project(as_stored(changes), *loaded)) == []


def test_a_branch_registered_before_addresses_is_registered_again_with_its_address(seed, loaded):
    """A log written before BranchRegistered v2: the projection has "" (the upcaster's value), the file an address."""
    directorates, branches = loaded
    old = {bid: {**b, "address_en": "", "address_ar": ""} for bid, b in branches.items()}
    changes = catalogue_file.changes(seed, directorates, old)
    assert Counter(c.event.type for c in changes) == {"availability.BranchRegistered": 13}
    assert catalogue_file.changes(seed, *project(as_stored(changes), directorates, old)) == []


# -- malformed catalogues --------------------------------------------------------------------------------

def _drop_directorates(c):
    del c["directorates"]


def _unknown_service(c):
    c["directorates"][0]["branches"][0]["services"]["no-such-service"] = {"counters": 1}


def _unknown_pattern(c):
    c["directorates"][0]["branches"][0]["opening_hours"] = "nightclub"


def _services_as_list(c):
    c["directorates"][0]["branches"][0]["services"] = ["licence-renewal"]


def _no_window(c):
    del c["booking_window"]


def _holiday_without_name(c):
    del c["holidays"][0]["name_ar"]


def _counters_missing(c):
    c["directorates"][1]["branches"][0]["services"]["passport-renewal"] = {"online": 1}


def _no_address(c):
    del c["directorates"][0]["branches"][0]["address_en"]


def _blank_arabic_address(c):
    c["directorates"][2]["branches"][1]["address_ar"] = "  "


def _address_as_a_list(c):
    c["directorates"][3]["branches"][0]["address_en"] = ["Building 147", "Road 2904"]


@pytest.mark.parametrize("breakage", [_drop_directorates, _unknown_service, _unknown_pattern, _services_as_list,
                                      _no_window, _holiday_without_name, _counters_missing, _no_address,
                                      _blank_arabic_address, _address_as_a_list])
def test_a_malformed_catalogue_raises_catalogue_error(seed, breakage):
    broken = copy.deepcopy(seed)
    breakage(broken)
    with pytest.raises(catalogue_file.CatalogueError):
        catalogue_file.desired(broken)
    with pytest.raises(catalogue_file.CatalogueError):
        catalogue_file.changes(broken, {}, {})


@pytest.mark.parametrize("text", ["directorates: [unclosed", "", "just a string\n"])
def test_an_unreadable_or_empty_file_raises_catalogue_error(tmp_path, text):
    path = tmp_path / "catalogue.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(catalogue_file.CatalogueError):
        catalogue_file.desired(catalogue_file.read(path))


def test_a_missing_file_raises_catalogue_error(tmp_path):
    with pytest.raises(catalogue_file.CatalogueError):
        catalogue_file.read(tmp_path / f"{uuid.uuid4().hex}.yml")


@pytest.mark.parametrize("breakage", [
    lambda c: c["opening_hours"]["office"].update(sun=[["7:00", "14:00"]]),
    lambda c: c["directorates"][0]["services"][0].update(ticket_prefix="AB"),
    lambda c: c["directorates"][0]["services"][0].update(duration_minutes=0),
    lambda c: c["holidays"][0].update(date="16 December"),
], ids=["hour-without-leading-zero", "two-letter-prefix", "zero-duration", "unparseable-date"])
def test_a_wrong_value_in_the_catalogue_is_named_before_anything_is_written(seed, breakage):
    broken = copy.deepcopy(seed)
    breakage(broken)
    with pytest.raises(catalogue_file.CatalogueError, match="invalid"):
        catalogue_file.changes(broken, {}, {})


# -- the catalogue shrinks -------------------------------------------------------------------------------------

def test_a_service_taken_from_a_branch_yields_one_service_withdrawn(seed, loaded):
    edited = copy.deepcopy(seed)
    del edited["directorates"][1]["branches"][0]["services"]["residence-permit"]
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type, c.event.payload) for c in changes if c.event.type != "availability.QueuePolicySet"] \
        == [("branch-npra-isa-town", "availability.ServiceWithdrawn",
             {"branch": "npra-isa-town", "service": "residence-permit"})]
    _, branches = project(as_stored(changes), *loaded)
    isa_town = branches["npra-isa-town"]
    assert "residence-permit" not in isa_town["services"]
    assert schedule.slots(isa_town, "residence-permit", SUNDAY) == []
    assert isa_town["withdrawn_services"]["residence-permit"]["name_ar"] == "تصريح الإقامة"  # kept for history
    assert catalogue_file.changes(edited, *project(as_stored(changes), *loaded)) == []


def test_a_branch_taken_from_the_file_is_retired_once_and_reopens_when_put_back(seed, loaded):
    edited = copy.deepcopy(seed)
    del edited["directorates"][3]["branches"][1]
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type, c.event.payload) for c in changes] == [
        ("branch-cid-southern", "availability.BranchRetired", {"branch": "cid-southern"})]
    assert changes[0].event.directorate == "cid"
    retired = project(as_stored(changes), *loaded)
    southern = retired[1]["cid-southern"]
    assert southern["retired"] and southern["name_en"] == "Southern branch" and southern["services"]
    assert schedule.slots(southern, "good-conduct", SUNDAY) == []
    assert schedule.closed_reason(southern, SUNDAY)["code"] == "RETIRED"
    assert catalogue_file.changes(edited, *retired) == []   # retired once

    reopened = catalogue_file.changes(seed, *retired)
    assert [c.event.type for c in reopened] == ["availability.BranchRegistered"]
    _, branches = project(as_stored(reopened), *retired)
    assert "retired" not in branches["cid-southern"]
    assert schedule.slots(branches["cid-southern"], "good-conduct", SUNDAY)


def test_a_holiday_taken_from_the_file_is_cancelled_at_every_branch_and_the_day_opens(seed, loaded):
    edited = copy.deepcopy(seed)
    edited["holidays"] = [h for h in edited["holidays"] if str(h["date"]) != "2026-12-17"]
    changes = catalogue_file.changes(edited, *loaded)
    assert {c.event.type for c in changes} == {"availability.HolidayCancelled"}
    assert Counter(c.event.payload["branch"] for c in changes) == Counter({b: 1 for b in loaded[1]})
    assert {c.event.payload["date"] for c in changes} == {"2026-12-17"}
    _, branches = project(as_stored(changes), *loaded)
    assert schedule.slots(branches["npra-isa-town"], "passport-renewal", date(2026, 12, 17))
    assert schedule.closed_reason(branches["npra-isa-town"], date(2026, 12, 17)) is None


def test_a_release_delay_is_set_per_branch_and_defaults_to_none(seed, loaded):
    assert all("release_delay_minutes" not in b for b in loaded[1].values())
    edited = copy.deepcopy(seed)
    edited["directorates"][1]["branches"][0]["booking_window"] = {"release_delay_minutes": 45}
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type, c.event.payload) for c in changes] == [
        ("branch-npra-isa-town", "availability.ReleaseDelaySet", {"branch": "npra-isa-town",
                                                                  "release_delay_minutes": 45})]
    delayed = project(as_stored(changes), *loaded)
    assert schedule.release_delay(delayed[1]["npra-isa-town"]).total_seconds() == 45 * 60
    back = catalogue_file.changes(seed, *delayed)   # taken out again: back to 0
    assert [c.event.payload["release_delay_minutes"] for c in back] == [0]


# -- the waiting-time targets travel in the queue policy (QueuePolicySet v2) ---------------------------------

def _isa_town(catalogue: dict) -> dict:
    return next(b for d in catalogue["directorates"] for b in d["branches"] if b["id"] == "npra-isa-town")


def test_the_queue_policy_carries_the_catalogues_targets(seed):
    assert seed["queue"]["targets"] == {"appointment_wait_minutes": 10, "walk_in_wait_minutes": 30,
                                        "service_level": 0.8}
    policies = [c.event for c in catalogue_file.changes(seed, {}, {}) if c.event.type == "availability.QueuePolicySet"]
    assert len(policies) == 13 and latest_version("availability.QueuePolicySet") == 2
    for new in policies:
        assert new.payload["targets"] == seed["queue"]["targets"]
        assert validated_payload(new.type, 2, new.payload) == new.payload


def test_targets_default_when_the_catalogue_sets_none(seed):
    del seed["queue"]["targets"]
    _, branches = catalogue_file.desired(seed)
    assert {tuple(sorted(b["queue"]["targets"].items())) for b in branches.values()} == {
        tuple(sorted(schedule.DEFAULT_WAIT_TARGETS.items()))}
    no_queue = {k: v for k, v in seed.items() if k != "queue"}   # as the deploy catalogues are written
    _, branches = catalogue_file.desired(no_queue)
    assert branches["npra-isa-town"]["queue"]["targets"] == schedule.DEFAULT_WAIT_TARGETS


def test_a_branch_and_a_service_override_the_targets_key_by_key(seed):
    seed["queue"]["targets"]["services"] = {"licence-renewal": {"walk_in_wait_minutes": 25}}
    _isa_town(seed)["queue"] = {"targets": {"appointment_wait_minutes": 15,
                                            "services": {"passport-renewal": {"walk_in_wait_minutes": 20},
                                                         "licence-issue": {"walk_in_wait_minutes": 5}}}}
    _, branches = catalogue_file.desired(seed)
    isa_town = branches["npra-isa-town"]
    assert isa_town["queue"]["targets"] == {   # licence-issue is not offered there: left out
        "appointment_wait_minutes": 15, "walk_in_wait_minutes": 30, "service_level": 0.8,
        "services": {"passport-renewal": {"walk_in_wait_minutes": 20}}}
    assert schedule.wait_targets(isa_town, "passport-renewal") == {"appointment": 15, "walk_in": 20,
                                                                   "service_level": 0.8}
    assert branches["traffic-dana-mall"]["queue"]["targets"]["services"] == {
        "licence-renewal": {"walk_in_wait_minutes": 25}}
    assert "services" not in branches["npra-security-complex"]["queue"]["targets"]


def test_changing_a_target_yields_one_queue_policy_set_and_folds_into_the_branch(seed, loaded):
    edited = copy.deepcopy(seed)
    _isa_town(edited)["queue"] = {"targets": {"walk_in_wait_minutes": 20}}
    changes = catalogue_file.changes(edited, *loaded)
    assert [(c.stream_id, c.event.type) for c in changes] == [("branch-npra-isa-town", "availability.QueuePolicySet")]
    _, branches = project(as_stored(changes), *loaded)
    assert schedule.wait_targets(branches["npra-isa-town"], "passport-renewal")["walk_in"] == 20
    assert catalogue_file.changes(edited, *project(as_stored(changes), *loaded)) == []


def test_a_policy_folded_before_targets_travelled_is_set_again_with_them(seed, loaded):
    """A log written before QueuePolicySet v2 and folded without upcasting: no targets; the file has them."""
    directorates, branches = loaded
    old = {bid: {**b, "queue": {k: v for k, v in b["queue"].items() if k != "targets"}} for bid, b in branches.items()}
    changes = catalogue_file.changes(seed, directorates, old)
    assert Counter(c.event.type for c in changes) == {"availability.QueuePolicySet": 13}
    assert catalogue_file.changes(seed, *project(as_stored(changes), directorates, old)) == []


@pytest.mark.parametrize("targets", [{"walk_in_wait_minutes": 0}, {"service_level": 1.5},
                                     {"appointment_wait_minutes": "ten"}, {"unknown": 1},
                                     {"services": {"passport-renewal": {"walk_in_wait_minutes": -5}}}])
def test_a_wrong_target_is_named_before_anything_is_written(seed, targets):
    _isa_town(seed)["queue"] = {"targets": targets}
    with pytest.raises(catalogue_file.CatalogueError, match="branch-npra-isa-town"):
        catalogue_file.changes(seed, {}, {})
