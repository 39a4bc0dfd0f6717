"""Versioned event contracts and the envelope every event travels in.

Each event type has a marshmallow schema per version, registered under its wire name
(`booking.SlotBooked.v1`). A payload change means a new version plus an upcaster from the old one, so that
old logs still replay and old messages still decode.
"""
from dataclasses import dataclass, replace

from marshmallow import Schema, ValidationError

from shared.clock import parse_instant
from shared.errors import ContractError
from shared.events import Event, Typed


@dataclass(frozen=True)
class Contract(Typed):
    type: str            # "booking.SlotBooked"
    version: int
    schema: Schema
    description: str


CONTRACTS: dict[str, Contract] = {}
UPCASTERS: dict[tuple[str, int], callable] = {}
_LATEST: dict[str, int] = {}  # type -> its latest version, as CONTRACTS says (latest_version)


def contract(type_: str, version: int, description: str):
    """Class decorator: register a marshmallow schema as the contract of one event type and version."""
    def register(schema_cls: type[Schema]) -> type[Schema]:
        entry = Contract(type_, version, schema_cls(), description)
        if entry.wire_name in CONTRACTS:
            raise RuntimeError(f"contract {entry.wire_name} registered twice")
        CONTRACTS[entry.wire_name] = entry
        _LATEST.clear()
        return schema_cls
    return register


def upcaster(type_: str, from_version: int):
    """Register a function turning a payload of `from_version` into one of `from_version + 1`."""
    def register(fn):
        UPCASTERS[(type_, from_version)] = fn
        return fn
    return register


def latest_version(type_: str) -> int:
    # looked up on every append and every event read: remembered until another contract registers
    if type_ not in _LATEST:
        versions = [c.version for c in CONTRACTS.values() if c.type == type_]
        if not versions:
            raise ContractError(f"unknown event type {type_}")
        _LATEST[type_] = max(versions)
    return _LATEST[type_]


def get_contract(type_: str, version: int) -> Contract:
    try:
        return CONTRACTS[f"{type_}.v{version}"]
    except KeyError:
        raise ContractError(f"unknown event {type_}.v{version}") from None


def types_of(source: str) -> list[str]:
    return sorted({c.type for c in CONTRACTS.values() if c.source == source})


def validated_payload(type_: str, version: int, payload: dict) -> dict:
    """The payload as its contract serialises it; raises ContractError when it does not fit."""
    schema = get_contract(type_, version).schema
    try:
        return schema.dump(schema.load(payload))
    except ValidationError as exc:
        raise ContractError(f"{type_}.v{version}: {exc.messages}") from None


def from_dict(data: dict) -> Event:
    """Decode an envelope (from the wire or the events feed), checking it against its contract."""
    try:
        event = Event(
            event_id=str(data["event_id"]), type=data["type"], version=int(data["version"]),
            stream_id=data["stream_id"], stream_version=int(data["stream_version"]),
            position=int(data["position"]), occurred_at=parse_instant(data["occurred_at"]),
            correlation_id=data.get("correlation_id") or str(data["event_id"]),
            causation_id=data.get("causation_id"), directorate=data.get("directorate"),
            payload=data["payload"], actor=data.get("actor"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContractError(f"malformed envelope: {exc!r}") from None
    validated_payload(event.type, event.version, event.payload)
    return event


def upcast(event: Event) -> Event:
    """Bring an event up to the latest version of its type, one upcaster at a time."""
    target = latest_version(event.type)
    while event.version < target:
        step = UPCASTERS.get((event.type, event.version))
        if step is None:
            raise ContractError(f"no upcaster from {event.wire_name}")
        event = replace(event, version=event.version + 1, payload=step(dict(event.payload)))
    return event


# Importing the contract modules registers them.
from shared.contracts import availability, booking, notifications, queue  # noqa: E402, F401
