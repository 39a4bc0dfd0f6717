"""Event contracts: a golden sample of every registered version, decoding, round trips and upcasting.

A golden file is a full envelope exactly as Event.to_dict() writes it, named `<wire name>.json`. When a
payload changes, the old version's file stays (old logs must still decode) and a new version gets its own.
"""
import copy
import json
import re
from pathlib import Path

import pytest
from marshmallow import Schema, fields, missing

from shared.contracts import (CONTRACTS, UPCASTERS, Contract, from_dict, get_contract, latest_version, types_of, upcast, validated_payload)
from shared.events import Event
from shared.errors import ContractError

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))
WIRE_NAME = re.compile(r"^(?P<service>[a-z]+)\.(?P<type>[A-Z][A-Za-z]+)\.v(?P<version>[1-9][0-9]*)$")
SERVICES = {"availability", "booking", "queue", "notifications"}


def golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(params=[p.stem for p in GOLDEN_FILES])
def sample(request):
    return request.param, golden(request.param)


def test_there_are_golden_files():
    assert len(GOLDEN_FILES) >= 9


def test_every_contract_has_a_golden_file_and_every_golden_file_a_contract():
    names = {p.stem for p in GOLDEN_FILES}
    assert set(CONTRACTS) - names == set(), "contracts without a golden sample"
    assert names - set(CONTRACTS) == set(), "golden samples without a contract"


def test_golden_file_names_match_their_envelope(sample):
    name, data = sample
    assert f"{data['type']}.v{data['version']}" == name


def test_golden_sample_decodes_and_validates(sample):
    name, data = sample
    event = from_dict(data)
    assert isinstance(event, Event)
    assert event.wire_name == name
    assert event.occurred_at.utcoffset().total_seconds() == 0
    # the sample is in the canonical form the store writes (the payload as its contract dumps it)
    assert validated_payload(event.type, event.version, event.payload) == data["payload"]


def test_golden_sample_round_trips(sample):
    _, data = sample
    original = copy.deepcopy(data)
    assert from_dict(data).to_dict() == data
    assert data == original   # decoding does not touch its input
    assert json.loads(from_dict(data).to_json()) == data
    assert from_dict(json.loads(from_dict(data).to_json())) == from_dict(data)


def test_golden_sample_upcasts_to_the_latest_version(sample):
    _, data = sample
    event = from_dict(data)
    latest = upcast(event)
    assert latest.version == latest_version(event.type)
    validated_payload(latest.type, latest.version, latest.payload)
    if event.version == latest_version(event.type):
        assert latest == event
        assert latest.to_dict() == data


def test_golden_envelope_has_every_field_of_the_design(sample):
    _, data = sample
    assert set(data) == {"event_id", "type", "version", "stream_id", "stream_version", "position", "occurred_at",
                         "correlation_id", "causation_id", "directorate", "actor", "payload"}
    assert data["occurred_at"].endswith("Z")
    assert data["position"] >= 1 and data["stream_version"] >= 1


# -- the registry ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("wire_name", sorted(CONTRACTS))
def test_wire_name_format(wire_name):
    entry = CONTRACTS[wire_name]
    match = WIRE_NAME.match(wire_name)
    assert match, wire_name
    assert match["service"] in SERVICES
    assert entry.wire_name == wire_name
    assert entry.type == f"{match['service']}.{match['type']}"
    assert entry.version == int(match["version"])
    assert entry.source == match["service"]
    assert get_contract(entry.type, entry.version) is entry


@pytest.mark.parametrize("wire_name", sorted(CONTRACTS))
def test_every_contract_has_a_description(wire_name):
    description = CONTRACTS[wire_name].description
    assert isinstance(description, str) and len(description.strip()) >= 20


def test_versions_are_contiguous_and_each_old_one_has_an_upcaster():
    by_type = {}
    for entry in CONTRACTS.values():
        by_type.setdefault(entry.type, set()).add(entry.version)
    for type_, versions in by_type.items():
        assert versions == set(range(1, max(versions) + 1)), type_
        for version in range(1, max(versions)):
            assert (type_, version) in UPCASTERS, f"{type_}.v{version} has no upcaster"


def test_the_design_events_are_registered():
    assert types_of("availability") == sorted(f"availability.{t}" for t in (
        "BranchRegistered", "CounterCapacitySet", "DirectorateRegistered", "HolidayDeclared", "OpeningHoursSet",
        "QueuePolicySet", "ServiceOffered", "ServiceWithdrawn", "BranchRetired", "HolidayCancelled",
        "ReleaseDelaySet"))
    assert {"booking.SlotBooked", "booking.BookingCancelled", "booking.BookingRescheduled",
            "booking.BookingExpired"} <= set(types_of("booking"))
    assert {f"queue.{t}" for t in ("CustomerCheckedIn", "TicketCalled", "TicketRecalled", "TicketServed",
                                   "TicketNoShow", "TicketTransferred", "CounterOpened", "CounterClosed",
                                   "SatisfactionRated")} <= set(types_of("queue"))
    assert {"notifications.NotificationSent", "notifications.NotificationFailed"} <= set(types_of("notifications"))


# -- what is refused -------------------------------------------------------------------------------------

def test_unknown_type_raises_contract_error():
    data = golden("booking.SlotBooked.v1")
    data["type"] = "booking.SlotStolen"
    with pytest.raises(ContractError):
        from_dict(data)
    with pytest.raises(ContractError):
        latest_version("booking.SlotStolen")


def test_unknown_version_raises_contract_error():
    data = golden("booking.SlotBooked.v1")
    data["version"] = 99
    with pytest.raises(ContractError):
        from_dict(data)


@pytest.mark.parametrize("name", [p.stem for p in GOLDEN_FILES])
def test_a_payload_missing_any_field_raises_contract_error(name):
    data = golden(name)
    schema = get_contract(data["type"], data["version"]).schema
    for key in data["payload"]:
        if schema.fields[key].load_default is not missing:  # a field with a stated default (the contract says so)
            continue
        broken = copy.deepcopy(data)
        del broken["payload"][key]
        with pytest.raises(ContractError):
            from_dict(broken)


def test_a_nested_field_missing_raises_contract_error():
    data = golden("booking.SlotBooked.v1")
    del data["payload"]["person"]["cpr"]
    with pytest.raises(ContractError):
        from_dict(data)


@pytest.mark.parametrize("name, field, value", [
    ("booking.SlotBooked.v1", "start", "2026-12-07T06:00:00"),                 # no offset
    ("booking.SlotBooked.v1", "branch", "Dana Mall"),                          # not an id
    ("booking.SlotBooked.v1", "person", {"cpr": "851312345", "name": "x", "language": "ar"}),  # month 13
    ("booking.SlotBooked.v1", "person", {"cpr": "850612345", "name": "x", "language": "fr"}),
    ("booking.BookingCancelled.v1", "cancelled_by", "hacker"),
    ("availability.ServiceOffered.v1", "duration_minutes", 0),
    ("availability.ServiceOffered.v1", "ticket_prefix", "AB"),
    ("availability.OpeningHoursSet.v1", "week", {"fri ": [{"opens": "09:00", "closes": "13:00"}]}),
    ("availability.OpeningHoursSet.v1", "week", {"sun": [{"opens": "9:00", "closes": "13:00"}]}),
    ("availability.HolidayDeclared.v1", "date", "16/12/2026"),
    ("availability.CounterCapacitySet.v1", "counters", -1),
    ("availability.BranchRegistered.v1", "max_days_ahead", 0),
])
def test_a_wrong_field_raises_contract_error(name, field, value):
    data = golden(name)
    data["payload"][field] = value
    with pytest.raises(ContractError):
        from_dict(data)


@pytest.mark.parametrize("field", ["event_id", "type", "version", "stream_id", "stream_version", "position",
                                   "occurred_at", "payload"])
def test_a_malformed_envelope_raises_contract_error(field):
    data = golden("booking.BookingCancelled.v1")
    del data[field]
    with pytest.raises(ContractError):
        from_dict(data)


@pytest.mark.parametrize("field, value", [("occurred_at", "2026-12-06T07:30:00"), ("occurred_at", "yesterday"),
                                          ("position", "first"), ("version", None)])
def test_a_mistyped_envelope_raises_contract_error(field, value):
    data = golden("booking.BookingCancelled.v1")
    data[field] = value
    with pytest.raises(ContractError):
        from_dict(data)


def test_missing_correlation_id_defaults_to_the_event_id():
    data = golden("availability.HolidayDeclared.v1")
    del data["correlation_id"]
    assert from_dict(data).correlation_id == data["event_id"]


# -- upcasting -------------------------------------------------------------------------------------------

class _ThingV1(Schema):
    name = fields.String(required=True)


class _ThingV2(Schema):
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)


class _ThingV3(Schema):
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)
    size = fields.Integer(required=True)


@pytest.fixture
def thing_contracts(monkeypatch):
    """A throwaway event type with three versions, registered only for one test."""
    for version, schema in ((1, _ThingV1), (2, _ThingV2), (3, _ThingV3)):
        entry = Contract("test.Thing", version, schema(), f"version {version} of a test event")
        monkeypatch.setitem(CONTRACTS, entry.wire_name, entry)
    monkeypatch.setitem(UPCASTERS, ("test.Thing", 1), lambda p: {"name_en": p.pop("name"), "name_ar": ""})
    monkeypatch.setitem(UPCASTERS, ("test.Thing", 2), lambda p: {**p, "size": 1})


def _thing(version: int, payload: dict) -> dict:
    data = golden("availability.HolidayDeclared.v1")
    data.update(type="test.Thing", version=version, payload=payload)
    return data


def test_upcast_walks_every_version(thing_contracts):
    old = from_dict(_thing(1, {"name": "Isa Town"}))
    new = upcast(old)
    assert (new.version, new.payload) == (3, {"name_en": "Isa Town", "name_ar": "", "size": 1})
    assert (new.event_id, new.position, new.stream_id) == (old.event_id, old.position, old.stream_id)
    assert old.payload == {"name": "Isa Town"}   # the original event is left alone
    validated_payload("test.Thing", 3, new.payload)
    assert upcast(from_dict(_thing(2, {"name_en": "a", "name_ar": "b"}))).payload == \
        {"name_en": "a", "name_ar": "b", "size": 1}
    latest = from_dict(_thing(3, {"name_en": "a", "name_ar": "b", "size": 7}))
    assert upcast(latest) == latest


def test_upcast_without_an_upcaster_raises_contract_error(thing_contracts, monkeypatch):
    monkeypatch.delitem(UPCASTERS, ("test.Thing", 2))
    with pytest.raises(ContractError):
        upcast(from_dict(_thing(1, {"name": "x"})))


def test_upcast_of_latest_golden_events_is_the_identity():
    for path in GOLDEN_FILES:
        event = from_dict(json.loads(path.read_text(encoding="utf-8")))
        if event.version == latest_version(event.type):
            assert upcast(event) is event


@pytest.mark.parametrize("value", [None, 1733468400, ["2026-12-06T07:30:00Z"]])
def test_a_non_string_occurred_at_raises_contract_error(value):
    data = golden("booking.BookingCancelled.v1")
    data["occurred_at"] = value
    with pytest.raises(ContractError):
        from_dict(data)
