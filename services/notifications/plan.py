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


def plan(event: Event, contact: dict | None, now: datetime, settings: Settings = Settings()) -> list[Planned]:
    """The messages `event` calls for. `contact` is the booking as it stands after the event (None when the
    person left no way to reach them, e.g. a walk-in)."""
    name, p = event.type.split(".", 1)[1], event.payload
    channels = channels_of(contact)
    reference = contact["reference"] if contact else None

    def fresh(kind):
        return now - event.occurred_at <= settings.max_age[kind]

    def reminders(start: datetime) -> list[Planned]:
        # none when the booking was made inside the reminder period: the confirmation said it all
        if start - event.occurred_at < settings.reminder_before or start <= now:
            return []
        due = max(start - settings.reminder_before, now)
        return [Planned(f"reminder:{c}:{reference}@{start.isoformat()}", "reminder", c, due, reference,
                        appointment_start=start) for c in channels]

    if name == "SlotBooked":
        start = contact["start"]
        confirmations = [Planned(f"confirmation:{c}:{reference}", "confirmation", c, now, reference,
                                 appointment_start=start) for c in channels] if fresh("confirmation") else []
        return confirmations + reminders(start)
    if name == "BookingRescheduled":
        start = contact["start"]
        notices = [Planned(f"reschedule:{c}:{event.event_id}", "reschedule", c, now, reference,
                           appointment_start=start, details={"previous_start": p["previous_start"]})
                   for c in channels] if fresh("reschedule") else []
        return notices + reminders(start)
    if name == "BookingCancelled" and fresh("cancellation"):
        return [Planned(f"cancellation:{c}:{reference}", "cancellation", c, now, reference,
                        appointment_start=contact["start"]) for c in channels]
    if name == "TicketCalled" and "sms" in channels and fresh("called"):
        return [Planned(f"called:sms:{event.event_id}", "called", "sms", now, reference, p["ticket_id"],
                        details={"ticket_number": p["number"], "counter": p["counter"]})]
    if name == "TicketServed" and channels and fresh("survey"):
        channel = "sms" if "sms" in channels else "email"  # one invitation, by the quickest way
        return [Planned(f"survey:{channel}:{p['ticket_id']}", "survey", channel, now, reference, p["ticket_id"],
                        details={"ticket_number": contact.get("ticket_number", "")})]
    return []


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
