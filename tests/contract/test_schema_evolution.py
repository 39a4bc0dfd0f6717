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
            "cancelled_by": "person"}, "npra")

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
            event = Event(event_id=str(uuid.uuid4()), type=change.event.type, version=1, stream_id=change.stream_id,
                          stream_version=position, position=position, occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
                          correlation_id=str(uuid.uuid4()), causation_id=None, directorate=change.event.directorate,
                          payload=validated_payload(change.event.type, 1, change.event.payload))
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
