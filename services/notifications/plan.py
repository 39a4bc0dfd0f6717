"""Which messages an event calls for, and when one no longer applies: pure rules, no I/O.

Each message has a key that names exactly what it is for, so a redelivered or replayed event plans the same
keys again and nothing is scheduled twice:
    confirmation:<channel>:<reference>            cancellation:<channel>:<reference>
    reminder:<channel>:<reference>@<start>        reschedule:<channel>:<event id>
    called:sms:<event id>                         survey:<channel>:<ticket id>
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.events import Event
from shared.masking import ERASED


@dataclass(frozen=True)
class Settings:
    reminder_before: timedelta = timedelta(hours=24)
    # A message older than this when it could be sent is worth nothing (no "you are called" an hour late).
    max_age: dict = field(default_factory=lambda: {
        "confirmation": timedelta(hours=24), "cancellation": timedelta(hours=24),
        "reschedule": timedelta(hours=24), "survey": timedelta(hours=24), "called": timedelta(minutes=15),
        "reminder": timedelta(hours=24)})
    max_attempts: int = 5
    retry_after_seconds: float = 30.0

    def retry_delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(3600.0, self.retry_after_seconds * 2 ** (attempts - 1)))


@dataclass(frozen=True)
class Planned:
    key: str
    kind: str
    channel: str
    due_at: datetime
    reference: str | None = None
    ticket_id: str | None = None
    appointment_start: datetime | None = None
    details: dict = field(default_factory=dict)


def channels_of(contact: dict | None) -> list[str]:
    return [c for c, to in (("email", (contact or {}).get("email")), ("sms", (contact or {}).get("mobile")))
            if to and to != ERASED]


@dataclass(frozen=True)
class _Occasion:
    """What a rule decides from: the event, the booking as it stands after it, and when it is planned."""
    event: Event
    contact: dict | None
    now: datetime
    settings: Settings

    @property
    def channels(self) -> list[str]:
        return channels_of(self.contact)

    @property
    def reference(self) -> str | None:
        return self.contact["reference"] if self.contact else None

    def fresh(self, kind: str) -> bool:
        return self.now - self.event.occurred_at <= self.settings.max_age[kind]

    def notices(self, kind: str, about: str, **fields) -> list[Planned]:
        """One `kind` message now on each channel, keyed `kind:channel:about`; none when too old to matter."""
        return [Planned(f"{kind}:{c}:{about}", kind, c, self.now, self.reference, **fields)
                for c in self.channels] if self.fresh(kind) else []

    def reminders(self, start: datetime) -> list[Planned]:
        # none when the booking was made inside the reminder period: the confirmation said it all
        if start - self.event.occurred_at < self.settings.reminder_before or start <= self.now:
            return []
        due = max(start - self.settings.reminder_before, self.now)
        return [Planned(f"reminder:{c}:{self.reference}@{start.isoformat()}", "reminder", c, due, self.reference,
                        appointment_start=start) for c in self.channels]


def _booked(o: _Occasion) -> list[Planned]:
    start = o.contact["start"]
    return o.notices("confirmation", o.reference, appointment_start=start) + o.reminders(start)


def _rescheduled(o: _Occasion) -> list[Planned]:
    start = o.contact["start"]
    return o.notices("reschedule", o.event.event_id, appointment_start=start,
                     details={"previous_start": o.event.payload["previous_start"]}) + o.reminders(start)


# Cancellations the person did not ask for, whose notice says why (the catalogue no longer has the appointment's
# service, branch or day: services/booking/withdrawals.py).
EXPLAINED = ("service_withdrawn", "branch_retired", "holiday")


def _cancelled(o: _Occasion) -> list[Planned]:
    reason = o.event.payload.get("reason")
    details = {"reason": reason} if reason in EXPLAINED else {}
    return o.notices("cancellation", o.reference, appointment_start=o.contact["start"],
                     details=details) if o.contact else []


def _called(o: _Occasion) -> list[Planned]:
    p = o.event.payload
    if "sms" not in o.channels or not o.fresh("called"):
        return []
    return [Planned(f"called:sms:{o.event.event_id}", "called", "sms", o.now, o.reference, p["ticket_id"],
                    details={"ticket_number": p["number"], "counter": p["counter"]})]


def _served(o: _Occasion) -> list[Planned]:
    if not o.channels or not o.fresh("survey"):
        return []
    ticket_id = o.event.payload["ticket_id"]
    channel = "sms" if "sms" in o.channels else "email"  # one invitation, by the quickest way
    return [Planned(f"survey:{channel}:{ticket_id}", "survey", channel, o.now, o.reference, ticket_id,
                    details={"ticket_number": o.contact.get("ticket_number", "")})]


RULES = {"booking.SlotBooked": _booked, "booking.BookingRescheduled": _rescheduled,
         "booking.BookingCancelled": _cancelled, "queue.TicketCalled": _called, "queue.TicketServed": _served}


def plan(event: Event, contact: dict | None, now: datetime, settings: Settings = Settings()) -> list[Planned]:
    """The messages `event` calls for (none for an event without a rule). `contact` is the booking as it stands
    after the event (None when the person left no way to reach them, e.g. a walk-in)."""
    rule = RULES.get(event.type)
    return rule(_Occasion(event, contact, now, settings)) if rule else []


def withdrawal(kind: str, due_at: datetime, appointment_start: datetime | None, contact: dict | None,
               now: datetime, settings: Settings = Settings()) -> str | None:
    """Why a scheduled message should not be sent now after all; None when it should."""
    if kind == "reminder":
        if not contact or contact["status"] != "active":
            return "the booking is no longer active"
        if contact["start"] != appointment_start:
            return "the booking moved to another time"
        if appointment_start <= now:
            return "the appointment time has passed"
        return None
    if now - due_at > settings.max_age[kind]:
        return "too old to be useful when it could be sent"
    return None
