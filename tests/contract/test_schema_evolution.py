"""Schema evolution: booking.SlotBooked v2 adds `channel` (how the booking was made), with an upcaster from v1.

Old logs must replay and old messages must still decode: a v1 event becomes a v2 one on the web channel, the only
channel there was. The replay and booking tests run on both SQLite and PostgreSQL.
"""
import copy
import itertools
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from marshmallow import ValidationError

import services.availability.projection as availability
import services.booking.projection as booking_projection
from services.availability import catalogue_file
from services.booking import commands
from services.booking.service import BookingRequest
from shared import catalogue, schedule
from shared.clock import LOCAL, UTC
from shared.projection import rebuild_and_compare
from shared.contracts import from_dict, latest_version, upcast, validated_payload
from shared.events import Event, NewEvent
from shared.errors import ContractError
from shared.projection import apply_once
from shared.topology import SUBSCRIPTIONS

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
SLOT_BOOKED = "booking.SlotBooked"
CHANNELS = ["web", "app", "call_centre", "counter"]


def golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


# -- the contract ----------------------------------------------------------------------------------------

def test_slot_booked_is_at_version_2():
    assert latest_version(SLOT_BOOKED) == 2


def test_the_v1_golden_upcasts_to_a_valid_v2_on_the_web():
    data = golden("booking.SlotBooked.v1")
    old = from_dict(data)
    new = upcast(old)
    assert (new.version, new.wire_name) == (2, "booking.SlotBooked.v2")
    assert new.payload == {**data["payload"], "channel": "web"}
    assert validated_payload(SLOT_BOOKED, 2, new.payload) == new.payload
    # the envelope is the same event; only the version and the payload moved on
    assert {k: v for k, v in new.to_dict().items() if k not in ("version", "payload")} == \
        {k: v for k, v in data.items() if k not in ("version", "payload")}
    assert old.payload == data["payload"] and "channel" not in old.payload   # the stored event is left alone


def test_the_v2_golden_round_trips():
    data = golden("booking.SlotBooked.v2")
    original = copy.deepcopy(data)
    event = from_dict(data)
    assert (event.version, event.payload["channel"]) == (2, "call_centre")
    assert event.to_dict() == data and data == original
    assert from_dict(json.loads(event.to_json())) == event
    assert upcast(event) is event   # already the latest


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_is_accepted(channel):
    data = golden("booking.SlotBooked.v2")
    data["payload"]["channel"] = channel
    assert from_dict(data).payload["channel"] == channel


@pytest.mark.parametrize("channel", ["fax", "WEB", "", None, 3])
def test_a_wrong_channel_is_refused(channel):
    data = golden("booking.SlotBooked.v2")
    data["payload"]["channel"] = channel
    with pytest.raises(ContractError):
        from_dict(data)


def test_v2_needs_a_channel_and_v1_has_none():
    v2 = golden("booking.SlotBooked.v2")
    del v2["payload"]["channel"]
    with pytest.raises(ContractError):
        from_dict(v2)
    v1 = golden("booking.SlotBooked.v1")
    v1["payload"]["channel"] = "web"
    with pytest.raises(ContractError):   # a v1-only reader refuses a v2 payload as it stands...
        from_dict(v1)


def test_a_v1_only_reader_can_downcast_by_dropping_the_channel():
    v2 = golden("booking.SlotBooked.v2")
    downcast = {k: v for k, v in v2["payload"].items() if k != "channel"}
    assert validated_payload(SLOT_BOOKED, 1, downcast) == downcast   # ...and takes it without `channel`


def test_the_suite_subscribes_to_every_version_of_slot_booked():
    subscribers = [s for s in SUBSCRIPTIONS.values() if SLOT_BOOKED in s.types]
    assert {s.name for s in subscribers} >= {"availability.bookings", "queue.bookings", "notifications.bookings"}
    for subscription in subscribers:
        keys = {b.routing_key for b in subscription.queue().bindings}
        assert f"{SLOT_BOOKED}.*" in keys and f"{SLOT_BOOKED}.v1" not in keys, subscription.name


# -- an old log replays ----------------------------------------------------------------------------------

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"
A, B, C, D = (datetime(2026, 12, 7, hh, mm, tzinfo=LOCAL) for hh, mm in ((7, 0), (7, 20), (7, 40), (8, 0)))


def _booked(reference: str, start: datetime, channel: str | None) -> dict:
    payload = {"reference": reference, "branch": BRANCH, "service": SERVICE, "start": start.isoformat(),
               "end": (start + timedelta(minutes=20)).isoformat(),
               "person": {"cpr": "900112345", "name": "Person", "mobile": None, "email": None, "language": "ar"}}
    return payload if channel is None else {**payload, "channel": channel}


def _history(all_v2: bool) -> list[tuple[datetime, NewEvent]]:
    """The same history of a few slots; the first bookings were logged before v2 unless `all_v2`."""
    def booked(reference, start, channel=None):
        if channel is None and not all_v2:   # written before v2 existed
            return start, NewEvent(SLOT_BOOKED, _booked(reference, start, None), "npra", version=1)
        return start, NewEvent(SLOT_BOOKED, _booked(reference, start, channel or "web"), "npra")

    def cancelled(reference, start):
        return start, NewEvent("booking.BookingCancelled", {
            "reference": reference, "branch": BRANCH, "service": SERVICE, "start": start.isoformat(),
            "cancelled_by": "person", "reason": "requested"}, "npra")

    def rescheduled(reference, previous, start):
        return start, NewEvent("booking.BookingRescheduled", {
            "reference": reference, "branch": BRANCH, "service": SERVICE, "previous_start": previous.isoformat(),
            "start": start.isoformat(), "end": (start + timedelta(minutes=20)).isoformat()}, "npra")

    return [
        booked("AAAA-0001", A), booked("AAAA-0002", A), booked("AAAA-0003", B), booked("AAAA-0004", C),
        cancelled("AAAA-0003", B),
        booked("AAAA-0005", A, "app"), booked("AAAA-0006", B, "counter"),
        rescheduled("AAAA-0004", C, D), booked("AAAA-0007", C, "call_centre"), cancelled("AAAA-0001", A),
    ]


def _replay(db, all_v2: bool) -> tuple[list[Event], dict]:
    """Write the history to the log, read it back as a consumer does (upcast), project it, return the counts."""
    for start, new in _history(all_v2):
        with db.transaction() as uow:
            stream = schedule.slot_stream(BRANCH, SERVICE, start)
            uow.append(stream, uow.store.stream_version(stream), [new])
    with db.transaction() as uow:
        stored = uow.store.read_all()
        for event in stored:
            availability.apply_booking_event(uow, upcast(event))
        counts = availability.booked_counts(uow, BRANCH, SERVICE, A, D.replace(hour=9))
    rebuilt = rebuild_and_compare(db, [upcast(e) for e in stored], availability.apply_booking_event, ["slot_bookings"])
    assert rebuilt.events == len(stored) and rebuilt.identical
    return stored, counts


def test_a_log_of_v1_and_v2_bookings_replays_into_the_same_counts_as_if_all_were_v2(open_db):
    mixed_log, mixed = _replay(open_db("availability", availability.metadata), all_v2=False)
    v2_log, all_v2 = _replay(open_db("availability_all_v2", availability.metadata), all_v2=True)

    assert {e.version for e in mixed_log if e.type == SLOT_BOOKED} == {1, 2}   # the log really is mixed
    assert {e.version for e in v2_log if e.type == SLOT_BOOKED} == {2}
    assert mixed == all_v2 == {A.astimezone(UTC): 2, B.astimezone(UTC): 1, C.astimezone(UTC): 1,
                               D.astimezone(UTC): 1}
    # upcast, the two logs say the same thing
    assert [(e.type, e.version, e.payload) for e in map(upcast, mixed_log)] == \
        [(e.type, e.version, e.payload) for e in v2_log]
    assert [upcast(e).payload["channel"] for e in mixed_log if e.type == SLOT_BOOKED] == \
        ["web", "web", "web", "web", "app", "counter", "call_centre"]


# -- the booking service records the channel -------------------------------------------------------------

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=LOCAL)
_positions = itertools.count(1)


def _learn_catalogue(db) -> None:
    """The seed catalogue's events for Isa Town, applied by booking's catalogue consumer."""
    for change in catalogue_file.changes(catalogue_file.read(), {}, {}):
        if change.stream_id in ("directorate-npra", f"branch-{BRANCH}"):
            position = next(_positions)
            version = latest_version(change.event.type)   # as the catalogue sync writes it
            event = Event(event_id=str(uuid.uuid4()), type=change.event.type, version=version,
                          stream_id=change.stream_id, stream_version=position, position=position,
                          occurred_at=datetime(2026, 12, 1, tzinfo=UTC), correlation_id=str(uuid.uuid4()),
                          causation_id=None, directorate=change.event.directorate,
                          payload=validated_payload(change.event.type, version, change.event.payload))
            assert apply_once(db, booking_projection.CATALOGUE_CONSUMER, event, catalogue.project)


def _request(cpr: str, **extra) -> dict:
    return BookingRequest().load({"cpr": cpr, "branch": BRANCH, "service": SERVICE, "start": A.isoformat(),
                                  "name": "فاطمة علي", "language": "ar", **extra})


def test_the_booking_request_takes_an_optional_channel():
    assert _request("900112345")["channel"] == "web"
    assert _request("900112345", channel="counter")["channel"] == "counter"
    for wrong in ("fax", "", None):
        with pytest.raises(ValidationError) as refused:
            _request("900112345", channel=wrong)
        assert "channel" in refused.value.messages


def test_a_booking_stores_and_answers_its_channel_and_logs_a_v2_event(open_db):
    db = open_db("booking", booking_projection.metadata)
    _learn_catalogue(db)
    by_phone = commands.book(db, _request("900112345", channel="call_centre"), NOW, 3)
    on_the_web = commands.book(db, _request("910212345"), NOW, 3)
    assert (by_phone["channel"], on_the_web["channel"]) == ("call_centre", "web")
    assert commands.get(db, by_phone["reference"], "900112345")["channel"] == "call_centre"
    assert commands.get(db, on_the_web["reference"], "910212345")["channel"] == "web"

    with db.transaction() as uow:
        rows = dict(uow.execute(sa.select(booking_projection.bookings.c.reference,
                                          booking_projection.bookings.c.channel)).all())
        logged = [e for e in uow.store.read_all() if e.type == SLOT_BOOKED]
    assert rows == {by_phone["reference"]: "call_centre", on_the_web["reference"]: "web"}
    assert [(e.wire_name, e.payload["reference"], e.payload["channel"]) for e in logged] == [
        ("booking.SlotBooked.v2", by_phone["reference"], "call_centre"),
        ("booking.SlotBooked.v2", on_the_web["reference"], "web")]
    for event in logged:
        assert from_dict(event.to_dict()) == event


def test_replaying_the_bookings_table_upcasts_a_v1_log(open_db):
    """`mawaeed replay booking` over a log written before channels existed."""
    from services.booking import projection as booking
    db = open_db("booking", booking.metadata)
    for start, new in _history(all_v2=False):
        with db.transaction() as uow:
            stream = schedule.slot_stream(BRANCH, SERVICE, start)
            uow.append(stream, uow.store.stream_version(stream), [new])
    with db.transaction() as uow:
        stored = uow.store.read_all()
    assert {e.version for e in stored if e.type == "booking.SlotBooked"} >= {1}
    rebuilt = rebuild_and_compare(db, stored, booking.project, [])
    assert rebuilt.events == len(stored)


# -- availability.BranchRegistered v2 adds the street address ----------------------------------------------------

BRANCH_REGISTERED = "availability.BranchRegistered"


def test_branch_registered_is_at_version_2_and_the_catalogue_sync_writes_it():
    assert latest_version(BRANCH_REGISTERED) == 2
    registered = [c.event for c in catalogue_file.changes(catalogue_file.read(), {}, {})
                  if c.event.type == BRANCH_REGISTERED]
    assert len(registered) == 13 and {e.version for e in registered} == {0}   # 0: the latest
    for new in registered:
        assert validated_payload(BRANCH_REGISTERED, 2, new.payload) == new.payload
        assert new.payload["address_en"] and new.payload["address_ar"]


def test_the_v1_branch_golden_upcasts_to_a_v2_with_empty_addresses():
    data = golden("availability.BranchRegistered.v1")
    old = from_dict(data)
    new = upcast(old)
    assert new.wire_name == "availability.BranchRegistered.v2"
    assert new.payload == {**data["payload"], "address_en": "", "address_ar": ""}
    assert validated_payload(BRANCH_REGISTERED, 2, new.payload) == new.payload
    assert "address_en" not in old.payload   # the stored event is left alone
    # folded, the old event gives a branch without an address, as the new one folded from scratch would say ""
    assert (schedule.apply(None, new)["address_en"], schedule.apply(None, old)["address_ar"]) == ("", "")


def test_the_v2_branch_golden_round_trips_and_folds_its_address():
    data = golden("availability.BranchRegistered.v2")
    event = from_dict(data)
    assert upcast(event) is event and event.to_dict() == data
    doc = schedule.apply(None, event)
    assert (doc["address_en"], doc["address_ar"]) == (data["payload"]["address_en"], data["payload"]["address_ar"])


@pytest.mark.parametrize("change", [
    lambda p: p.pop("address_en"), lambda p: p.pop("address_ar"), lambda p: p.update(address_en=None),
    lambda p: p.update(address_ar="x" * 301), lambda p: p.update(address_en=12)])
def test_v2_needs_both_addresses_as_text(change):
    data = golden("availability.BranchRegistered.v2")
    change(data["payload"])
    with pytest.raises(ContractError):
        from_dict(data)


def test_a_v1_only_reader_can_downcast_a_branch_by_dropping_the_addresses():
    v2 = golden("availability.BranchRegistered.v2")["payload"]
    downcast = {k: v for k, v in v2.items() if k not in ("address_en", "address_ar")}
    assert validated_payload(BRANCH_REGISTERED, 1, downcast) == downcast


def test_the_suite_subscribes_to_every_version_of_branch_registered():
    subscribers = [s for s in SUBSCRIPTIONS.values() if BRANCH_REGISTERED in s.types]
    assert {s.name for s in subscribers} >= {"booking.catalogue", "queue.catalogue", "notifications.catalogue"}
    for subscription in subscribers:
        keys = {b.routing_key for b in subscription.queue().bindings}
        assert f"{BRANCH_REGISTERED}.*" in keys and f"{BRANCH_REGISTERED}.v1" not in keys, subscription.name


def test_a_catalogue_copy_replays_a_log_of_v1_and_v2_registrations(open_db):
    """`mawaeed replay catalogue` over a log written before addresses, then synced with them: the copy rebuilt from
    the upcast log is the live one, and ends with the addresses."""
    db = open_db("booking", booking_projection.metadata)
    old = {"branch": BRANCH, "directorate": "npra", "name_en": "Isa Town branch", "name_ar": "فرع مدينة عيسى",
           "min_notice_minutes": 60, "max_days_ahead": 30}
    new = {**old, "address_en": "Building 123, Road 613, Block 806, Isa Town",
           "address_ar": "مبنى 123، طريق 613، مجمع 806، مدينة عيسى"}
    with db.transaction() as uow:
        stream = f"branch-{BRANCH}"
        uow.append(stream, 0, [NewEvent(BRANCH_REGISTERED, old, "npra", version=1)])
        uow.append(stream, 1, [NewEvent(BRANCH_REGISTERED, new, "npra")])
        stored = uow.store.read_stream(stream)  # not yet sequenced (PostgreSQL): read_all shows them after the commit
        assert [e.version for e in stored] == [1, 2]
        for event in stored:
            catalogue.project(uow, upcast(event))
        doc = catalogue.load_branch(uow, BRANCH)
    assert (doc["address_en"], doc["address_ar"]) == (new["address_en"], new["address_ar"])
    rebuilt = rebuild_and_compare(db, stored, catalogue.project, ["directorates", "branches"])
    assert rebuilt.events == 2 and rebuilt.identical


# -- booking.BookingCancelled v2: why -------------------------------------------------------------------

def test_booking_cancelled_v1_upcasts_to_v2_saying_the_person_asked():
    data = golden("booking.BookingCancelled.v1")
    new = upcast(from_dict(data))
    assert (new.wire_name, new.payload) == ("booking.BookingCancelled.v2", {**data["payload"], "reason": "requested"})
    by_centre = copy.deepcopy(data)
    by_centre["payload"]["cancelled_by"] = "centre"
    assert upcast(from_dict(by_centre)).payload["reason"] == "unspecified"


def test_booking_cancelled_v2_golden_names_its_catalogue_cause_and_refuses_an_unknown_reason():
    data = golden("booking.BookingCancelled.v2")
    event = from_dict(data)
    assert (event.payload["reason"], event.payload["cancelled_by"]) == ("service_withdrawn", "system")
    assert event.causation_id == golden("availability.ServiceWithdrawn.v1")["event_id"]
    assert from_dict(json.loads(event.to_json())) == event and upcast(event) is event
    data["payload"]["reason"] = "whim"
    with pytest.raises(ContractError):
        from_dict(data)


@pytest.mark.parametrize("name", ["availability.ServiceWithdrawn.v1", "availability.BranchRetired.v1",
                                  "availability.HolidayCancelled.v1", "availability.ReleaseDelaySet.v1"])
def test_the_shrinking_catalogue_events_round_trip_and_reach_every_catalogue_copy(name):
    event = from_dict(golden(name))
    assert event.to_dict() == golden(name)
    assert event.type in schedule.STEPS   # the one fold every copy of the catalogue uses
    for consumer in ("booking.catalogue", "queue.catalogue", "notifications.catalogue"):
        assert event.type in SUBSCRIPTIONS[consumer].types


def test_an_old_cancellation_read_with_only_a_projections_fields_still_upcasts():
    """A replay reads only the fields its projection uses (availability: branch, service, start...): an old
    BookingCancelled without `cancelled_by` still comes up to the latest version, its reason unknown."""
    old = Event(event_id=str(uuid.uuid4()), type="booking.BookingCancelled", version=1, stream_id="slot-x",
                stream_version=2, position=2, occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
                correlation_id=str(uuid.uuid4()), causation_id=None, directorate="npra",
                payload={"branch": "npra-isa-town", "service": "passport-renewal",
                         "start": "2026-12-07T09:00:00+03:00"})
    latest = upcast(old)
    assert latest.version == latest_version("booking.BookingCancelled")
    assert latest.payload["reason"] == "unspecified" and latest.payload["branch"] == "npra-isa-town"


# -- availability.QueuePolicySet v2 adds the waiting-time targets ------------------------------------------------

QUEUE_POLICY_SET = "availability.QueuePolicySet"
DEFAULT_TARGETS = {"appointment_wait_minutes": 10, "walk_in_wait_minutes": 30, "service_level": 0.8}


def test_queue_policy_set_is_at_version_2_and_the_catalogue_sync_writes_it_with_targets():
    assert latest_version(QUEUE_POLICY_SET) == 2
    policies = [c.event for c in catalogue_file.changes(catalogue_file.read(), {}, {})
                if c.event.type == QUEUE_POLICY_SET]
    assert len(policies) == 13 and {e.version for e in policies} == {0}   # 0: the latest
    for new in policies:
        assert validated_payload(QUEUE_POLICY_SET, 2, new.payload) == new.payload
        assert new.payload["targets"] == DEFAULT_TARGETS


def test_the_v1_queue_policy_golden_upcasts_to_a_v2_with_the_default_targets():
    data = golden("availability.QueuePolicySet.v1")
    old = from_dict(data)
    new = upcast(old)
    assert new.wire_name == "availability.QueuePolicySet.v2"
    assert new.payload == {**data["payload"], "targets": DEFAULT_TARGETS}
    assert validated_payload(QUEUE_POLICY_SET, 2, new.payload) == new.payload
    assert "targets" not in old.payload   # the stored event is left alone
    # folded, old or upcast, the branch is measured against the same targets
    assert schedule.wait_targets(schedule.apply(None, new), "passport-renewal") == \
        schedule.wait_targets(schedule.apply(None, old), "passport-renewal") == \
        {"appointment": 10, "walk_in": 30, "service_level": 0.8}


def test_the_v2_queue_policy_golden_round_trips_and_folds_its_targets():
    data = golden("availability.QueuePolicySet.v2")
    event = from_dict(data)
    assert upcast(event) is event and event.to_dict() == data
    doc = schedule.apply(None, event)
    assert doc["queue"]["targets"] == data["payload"]["targets"]
    assert schedule.wait_targets(doc, "passport-renewal") == {"appointment": 10, "walk_in": 20, "service_level": 0.8}
    assert schedule.wait_targets(doc, "residence-permit") == {"appointment": 10, "walk_in": 30, "service_level": 0.8}


def test_v2_targets_default_and_each_of_them_is_optional():
    data = golden("availability.QueuePolicySet.v2")
    without = {k: v for k, v in data["payload"].items() if k != "targets"}
    assert validated_payload(QUEUE_POLICY_SET, 2, without) == {**without, "targets": DEFAULT_TARGETS}
    assert schedule.wait_targets(schedule.apply(None, from_dict({**data, "payload": without}))) == \
        {"appointment": 10, "walk_in": 30, "service_level": 0.8}   # read as sent, it folds to the same defaults
    partial = {**without, "targets": {"walk_in_wait_minutes": 25}}
    assert validated_payload(QUEUE_POLICY_SET, 2, partial) == partial


@pytest.mark.parametrize("change", [
    lambda t: t.update(appointment_wait_minutes=0), lambda t: t.update(walk_in_wait_minutes="30"),
    lambda t: t.update(service_level=1.2), lambda t: t.update(service_level=-0.1), lambda t: t.update(colour="red"),
    lambda t: t["services"]["passport-renewal"].update(walk_in_wait_minutes=0),
    lambda t: t["services"]["passport-renewal"].update(services={}), lambda t: t.update(services=[])])
def test_v2_refuses_wrong_targets(change):
    data = golden("availability.QueuePolicySet.v2")
    change(data["payload"]["targets"])
    with pytest.raises(ContractError):
        from_dict(data)


def test_a_v1_only_reader_can_downcast_a_queue_policy_by_dropping_the_targets():
    v2 = golden("availability.QueuePolicySet.v2")["payload"]
    downcast = {k: v for k, v in v2.items() if k != "targets"}
    assert validated_payload(QUEUE_POLICY_SET, 1, downcast) == downcast
    with pytest.raises(ContractError):   # v1 still refuses a field it does not know
        validated_payload(QUEUE_POLICY_SET, 1, v2)


def test_the_suite_subscribes_to_every_version_of_queue_policy_set():
    subscribers = [s for s in SUBSCRIPTIONS.values() if QUEUE_POLICY_SET in s.types]
    assert {s.name for s in subscribers} >= {"booking.catalogue", "queue.catalogue", "notifications.catalogue"}
    for subscription in subscribers:
        keys = {b.routing_key for b in subscription.queue().bindings}
        assert f"{QUEUE_POLICY_SET}.*" in keys and f"{QUEUE_POLICY_SET}.v1" not in keys, subscription.name


def test_a_catalogue_copy_replays_a_log_of_v1_and_v2_queue_policies(open_db):
    """`mawaeed replay catalogue` over a log written before targets travelled, then synced with them: the copy
    rebuilt from the upcast log is the live one, and ends with the catalogue's targets."""
    db = open_db("booking", booking_projection.metadata)
    old = {k: v for k, v in golden("availability.QueuePolicySet.v1")["payload"].items()}
    new = {**old, "targets": {**DEFAULT_TARGETS, "walk_in_wait_minutes": 20}}
    registered = {"branch": "npra-isa-town", "directorate": "npra", "name_en": "Isa Town branch",
                  "name_ar": "فرع مدينة عيسى", "min_notice_minutes": 60, "max_days_ahead": 30,
                  "address_en": "Building 123, Road 613, Block 806, Isa Town",
                  "address_ar": "مبنى 123، طريق 613، مجمع 806، مدينة عيسى"}
    with db.transaction() as uow:
        stream = "branch-npra-isa-town"
        uow.append(stream, 0, [NewEvent("availability.BranchRegistered", registered, "npra"),
                               NewEvent(QUEUE_POLICY_SET, old, "npra", version=1)])
        stored = uow.store.read_stream(stream)  # not yet sequenced (PostgreSQL): read_all shows them after the commit
        for event in stored:
            catalogue.project(uow, upcast(event))
        assert catalogue.load_branch(uow, "npra-isa-town")["queue"]["targets"] == DEFAULT_TARGETS
        uow.append(stream, 2, [NewEvent(QUEUE_POLICY_SET, new, "npra")])
        stored = uow.store.read_stream(stream)
        assert [e.version for e in stored] == [2, 1, 2]
        catalogue.project(uow, upcast(stored[-1]))
        doc = catalogue.load_branch(uow, "npra-isa-town")
    assert schedule.wait_targets(doc, "passport-renewal")["walk_in"] == 20
    rebuilt = rebuild_and_compare(db, stored, catalogue.project, ["directorates", "branches"])
    assert rebuilt.events == 3 and rebuilt.identical
