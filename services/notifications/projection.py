"""The notifications service's tables: who to reach about which booking (from booking's events), which ticket
belongs to which booking (from the queue's), the catalogue, and the messages it scheduled (its own events)."""
import json
from datetime import datetime

import sqlalchemy as sa

from shared import catalogue, vault
from shared.masking import ERASED
from shared.clock import from_db, parse_instant, to_db
from shared.events import Event
from shared.dependencies import service_metadata
from shared.eventstore import UnitOfWork

BOOKINGS_CONSUMER = "notifications.bookings"
QUEUE_CONSUMER = "notifications.queue"
CATALOGUE_CONSUMER = "notifications.catalogue"

metadata = service_metadata()
catalogue.catalogue_tables(metadata)
contacts = sa.Table(
    "contacts", metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    sa.Column("cpr", sa.String(9), nullable=False),
    sa.Column("subject", sa.String(24), nullable=False, index=True),  # who, without the CPR (shared/vault.py)
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("mobile", sa.String(32)),
    sa.Column("email", sa.String(254)),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("branch", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
)
tickets = sa.Table(
    "tickets", metadata,
    sa.Column("ticket_id", sa.String(36), primary_key=True),
    sa.Column("reference", sa.String(16)),
    sa.Column("number", sa.String(8), nullable=False),
)
messages = sa.Table(
    "messages", metadata,
    sa.Column("key", sa.String(180), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("due_at", sa.DateTime, nullable=False),
    sa.Column("reference", sa.String(16)),
    sa.Column("ticket_id", sa.String(36)),
    sa.Column("appointment_start", sa.DateTime),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # scheduled | sent | failed | withdrawn
    # how sending goes: operational state, not history (a restart retries from here)
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("claimed_until", sa.DateTime),
    sa.Index("ix_messages_due", "status", "next_attempt_at"),
)


def apply_booking_event(uow: UnitOfWork, event: Event) -> None:
    p = event.payload
    if event.type == "booking.SlotBooked":
        person = p["person"]
        uow.execute(contacts.insert().values(
            reference=p["reference"], cpr=person["cpr"], subject=vault.subject_of(person["cpr"]),
            name=person["name"], mobile=person.get("mobile"), email=person.get("email"),
            language=person["language"], branch=p["branch"], service=p["service"],
            start=to_db(parse_instant(p["start"])), status="active"))
        return
    if event.type == "booking.PersonErased":  # forget their contacts; nothing more is sent to them
        uow.execute(contacts.update().where(contacts.c.subject == p["subject"]).values(
            cpr=ERASED, name=ERASED,
            mobile=sa.case((contacts.c.mobile.is_(None), None), else_=ERASED),
            email=sa.case((contacts.c.email.is_(None), None), else_=ERASED)))
        return
    if event.type == "booking.BookingRescheduled":
        values = {"start": to_db(parse_instant(p["start"]))}
    elif event.type in ("booking.BookingCancelled", "booking.BookingExpired"):
        values = {"status": "cancelled" if event.type.endswith("Cancelled") else "expired"}
    else:
        return
    uow.execute(contacts.update().where(contacts.c.reference == p["reference"]).values(values))


def apply_queue_event(uow: UnitOfWork, event: Event) -> None:
    p = event.payload
    if event.type == "queue.CustomerCheckedIn":
        uow.execute(tickets.insert().values(ticket_id=p["ticket_id"], reference=p["reference"], number=p["number"]))


def contact(uow: UnitOfWork, reference: str | None) -> dict | None:
    if not reference:
        return None
    row = uow.execute(sa.select(contacts).where(contacts.c.reference == reference)).first()
    return {**row._mapping, "start": from_db(row.start)} if row else None


def messages_about(uow: UnitOfWork, reference: str) -> list[dict]:
    rows = uow.execute(sa.select(messages).where(messages.c.reference == reference).order_by(messages.c.due_at))
    return [{"kind": r.kind, "channel": r.channel, "status": r.status, "attempts": r.attempts,
             "due_at": from_db(r.due_at).isoformat()} for r in rows]


def ticket(uow: UnitOfWork, ticket_id: str) -> dict | None:
    row = uow.execute(sa.select(tickets).where(tickets.c.ticket_id == ticket_id)).first()
    return dict(row._mapping) if row else None


def project(uow: UnitOfWork, event: Event) -> None:
    """Apply the service's own events to the messages table."""
    p, name = event.payload, event.type.split(".", 1)[1]
    if name == "NotificationScheduled":
        due = to_db(parse_instant(p["due_at"]))
        uow.execute(messages.insert().values(
            key=p["key"], kind=p["kind"], channel=p["channel"], due_at=due, reference=p["reference"],
            ticket_id=p["ticket_id"], details=json.dumps(p["details"], ensure_ascii=False),
            appointment_start=to_db(parse_instant(p["appointment_start"])) if p["appointment_start"] else None,
            status="scheduled", attempts=0, next_attempt_at=due))
    else:
        status = {"NotificationSent": "sent", "NotificationFailed": "failed", "NotificationWithdrawn": "withdrawn"}
        uow.execute(messages.update().where(messages.c.key == p["key"]).values(
            status=status[name], attempts=p.get("attempts", 0), claimed_until=None))


def known(uow: UnitOfWork, key: str) -> bool:
    return uow.execute(sa.select(messages.c.key).where(messages.c.key == key)).first() is not None


def _message(row) -> dict:
    return {**row._mapping, "due_at": from_db(row.due_at), "appointment_start": from_db(row.appointment_start),
            "details": json.loads(row.details)}


def due(uow: UnitOfWork, now: datetime, limit: int = 50) -> list[dict]:
    rows = uow.execute(sa.select(messages).where(
        messages.c.status == "scheduled", messages.c.next_attempt_at <= to_db(now),
        sa.or_(messages.c.claimed_until.is_(None), messages.c.claimed_until < to_db(now)))
        .order_by(messages.c.next_attempt_at).limit(limit))
    return [_message(r) for r in rows]


def scheduled_reminders(uow: UnitOfWork, reference: str) -> list[dict]:
    return [_message(r) for r in uow.execute(sa.select(messages).where(
        messages.c.reference == reference, messages.c.kind == "reminder", messages.c.status == "scheduled"))]


def claim(uow: UnitOfWork, key: str, now: datetime, until: datetime) -> bool:
    """Take a message for sending, so that two dispatchers (replicas) never send the same one at once."""
    return uow.execute(messages.update().where(
        messages.c.key == key, messages.c.status == "scheduled",
        sa.or_(messages.c.claimed_until.is_(None), messages.c.claimed_until < to_db(now)))
        .values(claimed_until=to_db(until))).rowcount == 1


def retry_later(uow: UnitOfWork, key: str, attempts: int, at: datetime) -> None:
    uow.execute(messages.update().where(messages.c.key == key).values(
        attempts=attempts, next_attempt_at=to_db(at), claimed_until=None))
