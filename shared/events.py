"""Events as the domain makes and reads them: plain frozen dataclasses, no schema library, no database.

A command decides `NewEvent`s; the event store gives back `Event`s in their envelope (stream, version, global
position, time). Their contracts (marshmallow schemas, upcasters) are in shared/contracts/, which only the
edges of the suite (the store, the wire, the feed) need.
"""
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from shared.clock import UTC


class Typed:
    """Names shared by contracts and events: `type` is "<service>.<Name>", `version` a number."""
    type: str
    version: int

    @property
    def wire_name(self) -> str:
        return f"{self.type}.v{self.version}"

    @property
    def source(self) -> str:
        return self.type.split(".", 1)[0]


@dataclass(frozen=True)
class NewEvent:
    """An event decided by a command, not yet stored."""
    type: str
    payload: dict
    directorate: str | None = None
    version: int = 0  # 0: the latest version of the type
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: dict | None = None  # who did it, when a person, device or system did: {subject, role, branch?}


@dataclass(frozen=True)
class Event(Typed):
    """A stored event in its envelope."""
    event_id: str
    type: str
    version: int
    stream_id: str
    stream_version: int
    position: int | None  # None on an event just appended on PostgreSQL: the sequencer gives it after the commit
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    directorate: str | None
    payload: dict
    actor: dict | None = None  # {subject, role, branch?, counter?} of a staff, device or system action

    @classmethod
    def of_stored(cls, **fields) -> "Event":
        """An event from stored columns, without the frozen dataclass's field-by-field __init__ (a fifth of the
        cost of reading the log): the store has already checked what it holds."""
        event = object.__new__(cls)
        event.__dict__.update(fields)
        return event

    def to_dict(self) -> dict:
        return {
            "event_id": self.event_id, "type": self.type, "version": self.version,
            "stream_id": self.stream_id, "stream_version": self.stream_version, "position": self.position,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "correlation_id": self.correlation_id, "causation_id": self.causation_id,
            "directorate": self.directorate, "actor": self.actor, "payload": self.payload,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
