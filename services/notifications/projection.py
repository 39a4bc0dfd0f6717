"""The notifications service's tables: who to reach about which booking (from booking's events), which ticket
belongs to which booking (from the queue's), the catalogue, and the messages it scheduled (its own events)."""
import json
from datetime import datetime

import sqlalchemy as sa

from shared import catalogue, vault
from shared.clock import LOCAL, from_db, parse_instant, to_db
from shared.dependencies import service_metadata
from shared.events import Event
from shared.eventstore import UnitOfWork
from shared.projection import Handlers

BOOKINGS_CONSUMER = "notifications.bookings"
QUEUE_CONSUMER = "notifications.queue"
CATALOGUE_CONSUMER = "notifications.catalogue"

metadata = service_metadata()
catalogue.catalogue_tables(metadata)
contacts = sa.Table(  # personal columns read "[erased]" once their person is forgotten (shared/vault.py)
    "contacts", metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    vault.personal(sa.Column("cpr", sa.String(9), nullable=False)),
    sa.Column("subject", sa.String(24), nullable=False, index=True),  # who, without the CPR (shared/vault.py)
    vault.personal(sa.Column("name", sa.String(200), nullable=False)),
    vault.personal(sa.Column("mobile", sa.String(32))),
    vault.personal(sa.Column("email", sa.String(254))),
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


# Each projection is a table of handlers by event type: booking's events into contacts, the queue's into tickets.
apply_booking_event = Handlers()
apply_queue_event = Handlers()


@apply_booking_event.on("booking.SlotBooked")
def _booked(uow: UnitOfWork, event: Event) -> None:
    p, person = event.payload, event.payload["person"]
    uow.execute(contacts.insert().values(
        reference=p["reference"], cpr=person["cpr"], subject=vault.subject_of(person["cpr"]),
        name=person["name"], mobile=person.get("mobile"), email=person.get("email"),
        language=person["language"], branch=p["branch"], service=p["service"],
        start=to_db(parse_instant(p["start"])), status="active"))


def _update_contact(uow: UnitOfWork, event: Event, **values) -> None:
    uow.execute(contacts.update().where(contacts.c.reference == event.payload["reference"]).values(values))


@apply_booking_event.on("booking.BookingRescheduled")
def _moved(uow: UnitOfWork, event: Event) -> None:
    _update_contact(uow, event, start=to_db(parse_instant(event.payload["start"])))


ENDED = {"booking.BookingCancelled": "cancelled", "booking.BookingExpired": "expired"}  # the status each leaves


@apply_booking_event.on(*ENDED)
def _ended(uow: UnitOfWork, event: Event) -> None:
    _update_contact(uow, event, status=ENDED[event.type])


@apply_booking_event.on("booking.PersonErased")
def _erased(uow: UnitOfWork, event: Event) -> None:
    """Their contacts read "[erased]", as the log now does: nothing more is sent to them."""
    vault.forget_person(uow, event.payload["subject"], contacts)


@apply_queue_event.on("queue.CustomerCheckedIn")
def _checked_in(uow: UnitOfWork, event: Event) -> None:
    p = event.payload
    uow.execute(tickets.insert().values(ticket_id=p["ticket_id"], reference=p["reference"], number=p["number"]))


def contact(uow: UnitOfWork, reference: str | None) -> dict | None:
    return contacts_of(uow, [reference]).get(reference) if reference else None


def contacts_of(uow: UnitOfWork, references) -> dict[str, dict]:
    """The contacts of these bookings by reference (one query); a reference with none is left out."""
    wanted = {r for r in references if r}
    rows = uow.execute(sa.select(contacts).where(contacts.c.reference.in_(wanted))) if wanted else []
    return {row.reference: {**row._mapping, "start": from_db(row.start)} for row in rows}


def messages_about(uow: UnitOfWork, reference: str) -> list[dict]:
    rows = uow.execute(sa.select(messages).where(messages.c.reference == reference).order_by(messages.c.due_at))
    return [{"kind": r.kind, "channel": r.channel, "status": r.status, "attempts": r.attempts,
             "due_at": from_db(r.due_at).astimezone(LOCAL).isoformat()} for r in rows]  # as every time a person reads


def calendar_changes(uow: UnitOfWork, reference: str | None, channel: str) -> int:
    """How many calendar messages (confirmation, reschedule, cancellation) were planned about a booking so far."""
    return uow.execute(sa.select(sa.func.count()).select_from(messages).where(
        messages.c.reference == reference, messages.c.channel == channel,
        messages.c.kind.in_(("confirmation", "reschedule", "cancellation")))).scalar_one()


def ticket(uow: UnitOfWork, ticket_id: str) -> dict | None:
    row = uow.execute(sa.select(tickets).where(tickets.c.ticket_id == ticket_id)).first()
    return dict(row._mapping) if row else None


# The service's own events, into the messages table.
project = Handlers()
SETTLED = {"notifications.NotificationSent": "sent", "notifications.NotificationFailed": "failed",
           "notifications.NotificationWithdrawn": "withdrawn"}  # the status each leaves


@project.on("notifications.NotificationScheduled")
def _scheduled(uow: UnitOfWork, event: Event) -> None:
    scheduled(uow, [event])


def scheduled(uow: UnitOfWork, events: list[Event]) -> None:
    """NotificationScheduled events into the messages table, all in one statement (what an event calls for)."""
    rows = []
    for p in (event.payload for event in events):
        due = to_db(parse_instant(p["due_at"]))
        rows.append(dict(key=p["key"], kind=p["kind"], channel=p["channel"], due_at=due, reference=p["reference"],
                         ticket_id=p["ticket_id"], details=json.dumps(p["details"], ensure_ascii=False),
                         appointment_start=to_db(parse_instant(p["appointment_start"])) if p["appointment_start"]
                         else None, status="scheduled", attempts=0, next_attempt_at=due, claimed_until=None))
    if rows:
        uow.execute(messages.insert(), rows)


@project.on(*SETTLED)
def _settled(uow: UnitOfWork, event: Event) -> None:
    p = event.payload
    uow.execute(messages.update().where(messages.c.key == p["key"]).values(
        status=SETTLED[event.type], attempts=p.get("attempts", 0), claimed_until=None))


def known(uow: UnitOfWork, keys: list[str]) -> set[str]:
    """Which of `keys` were scheduled already (one query for all the messages an event calls for)."""
    return set(uow.execute(sa.select(messages.c.key).where(messages.c.key.in_(keys))).scalars()) if keys else set()


def _message(row) -> dict:
    return {**row._mapping, "due_at": from_db(row.due_at), "appointment_start": from_db(row.appointment_start),
            "next_attempt_at": from_db(row.next_attempt_at), "details": json.loads(row.details)}


def _claimable(now: datetime):
    """Scheduled, due, and not taken by a dispatcher whose claim still holds."""
    return sa.and_(messages.c.status == "scheduled", messages.c.next_attempt_at <= to_db(now),
                   sa.or_(messages.c.claimed_until.is_(None), messages.c.claimed_until < to_db(now)))


def claim_due(uow: UnitOfWork, now: datetime, until: datetime, limit: int = 50) -> list[dict]:
    """Take up to `limit` due messages for sending until `until`, oldest first, in one statement, so that two
    dispatchers (replicas) never send the same one at once: PostgreSQL skips rows another one is taking
    (SKIP LOCKED) and re-checks the claim on the rows it waited for; SQLite has one writer at a time anyway."""
    due = sa.select(messages.c.key).where(_claimable(now)) \
        .order_by(messages.c.next_attempt_at, messages.c.key).limit(limit)
    if uow.conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    # picked once (a CTE, materialized), not a subquery the planner may run again per row and pick others
    picked = due.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    rows = uow.execute(messages.update().where(messages.c.key.in_(sa.select(picked.c.key)), _claimable(now))
                       .values(claimed_until=to_db(until)).returning(*messages.c)).all()
    return sorted((_message(r) for r in rows), key=lambda m: (m["next_attempt_at"], m["key"]))


def scheduled_reminders(uow: UnitOfWork, reference: str) -> list[dict]:
    return [_message(r) for r in uow.execute(sa.select(messages).where(
        messages.c.reference == reference, messages.c.kind == "reminder", messages.c.status == "scheduled"))]


def retry_later(uow: UnitOfWork, key: str, attempts: int, at: datetime) -> None:
    uow.execute(messages.update().where(messages.c.key == key).values(
        attempts=attempts, next_attempt_at=to_db(at), claimed_until=None))
