"""The queue service's tables: the day's appointments (from booking's events), the catalogue (from
availability's), and the waiting room itself, a projection of the queue's own events. The waiting-room tables
are written in the same transaction as the events, and `project` is all that writes them, so replaying the
log into empty tables gives the same waiting room."""
import json
from datetime import date

import sqlalchemy as sa

from shared import catalogue, vault
from shared.masking import ERASED
from shared.clock import LOCAL, from_db, parse_instant, to_db
from shared.events import Event
from shared.dependencies import service_metadata
from shared.eventstore import UnitOfWork
from services.queue.domain import Counter, Day, Ticket

BOOKINGS_CONSUMER = "queue.bookings"
CATALOGUE_CONSUMER = "queue.catalogue"


def queue_tables(metadata: sa.MetaData) -> None:
    sa.Table(
        "tickets", metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("number", sa.String(8), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("checked_in_for", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(16)),
        sa.Column("cpr", sa.String(9), nullable=False),
        sa.Column("subject", sa.String(24), nullable=False, index=True),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("on_time", sa.Boolean, nullable=False),
        sa.Column("appointment_start", sa.DateTime),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("waiting_since", sa.DateTime),
        sa.Column("waited_seconds", sa.Integer, nullable=False),
        sa.Column("counter", sa.String(16)),
        sa.Column("first_called_at", sa.DateTime),
        sa.Column("last_called_at", sa.DateTime),
        sa.Column("recalls", sa.Integer, nullable=False),
        sa.Column("served_at", sa.DateTime),
        sa.Column("service_seconds", sa.Integer),
        sa.Column("score", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Index("ix_tickets_day", "branch", "day", "status"),
        sa.Index("ix_tickets_reference", "reference"),
    )
    sa.Table(
        "counters", metadata,
        sa.Column("branch", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("counter", sa.String(16), primary_key=True),
        sa.Column("services", sa.Text, nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("serving", sa.String(36)),
    )
    sa.Table(
        "days", metadata,
        sa.Column("branch", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("appointments_since_walk_in", sa.Integer, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
    )


metadata = service_metadata()
catalogue.catalogue_tables(metadata)
queue_tables(metadata)
appointments = sa.Table(
    "appointments", metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    sa.Column("cpr", sa.String(9), nullable=False),
    sa.Column("subject", sa.String(24), nullable=False, index=True),  # who, without the CPR (shared/vault.py)
    sa.Column("branch", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),  # local date of the start
    sa.Column("status", sa.String(16), nullable=False),  # active | cancelled | missed
    sa.Column("language", sa.String(2), nullable=False),
    sa.Index("ix_appointments_day", "branch", "day", "status"),
)


# -- appointments, from booking's events ----------------------------------------------------------------

def apply_booking_event(uow: UnitOfWork, event: Event) -> None:
    p, table = event.payload, appointments
    if event.type == "booking.SlotBooked":
        start = parse_instant(p["start"])
        uow.execute(table.insert().values(
            reference=p["reference"], cpr=p["person"]["cpr"], subject=vault.subject_of(p["person"]["cpr"]),
            branch=p["branch"], service=p["service"],
            start=to_db(start), day=start.astimezone(LOCAL).date().isoformat(), status="active",
            language=p["person"]["language"]))
    elif event.type == "booking.BookingCancelled":
        uow.execute(table.update().where(table.c.reference == p["reference"]).values(status="cancelled"))
    elif event.type == "booking.BookingRescheduled":
        start = parse_instant(p["start"])
        uow.execute(table.update().where(table.c.reference == p["reference"]).values(
            start=to_db(start), day=start.astimezone(LOCAL).date().isoformat()))
    elif event.type == "booking.PersonErased":  # forget the person here too: our key, and their CPR in our tables
        uow.store.vault.forget(p["subject"])
        tickets = uow.tables["tickets"]
        uow.execute(tickets.update().where(tickets.c.subject == p["subject"]).values(cpr=ERASED))
        uow.execute(table.update().where(table.c.subject == p["subject"]).values(cpr=ERASED))


def load_appointment(uow: UnitOfWork, reference: str) -> dict | None:
    row = uow.execute(sa.select(appointments).where(appointments.c.reference == reference)).first()
    return {**row._mapping, "start": from_db(row.start)} if row else None


def appointments_of(uow: UnitOfWork, branch: str, day: date) -> list[dict]:
    rows = uow.execute(sa.select(appointments).where(appointments.c.branch == branch,
                                                     appointments.c.day == day.isoformat()))
    return [{**r._mapping, "start": from_db(r.start)} for r in rows]


# -- the waiting room, from the queue's own events -----------------------------------------------------

def _ticket_update(uow: UnitOfWork, ticket_id: str, **values) -> None:
    tickets = uow.tables["tickets"]
    uow.execute(tickets.update().where(tickets.c.id == ticket_id).values(**values))


def _counter_update(uow: UnitOfWork, p: dict, counter: str | None, **values) -> None:
    if counter is None:
        return
    counters = uow.tables["counters"]
    uow.execute(counters.update().where(counters.c.branch == p["branch"], counters.c.day == p["day"],
                                        counters.c.counter == counter).values(**values))


def _ensure_day(uow: UnitOfWork, p: dict) -> None:
    days = uow.tables["days"]
    if uow.execute(sa.select(days.c.branch).where(days.c.branch == p["branch"], days.c.day == p["day"])).first() is None:
        uow.execute(days.insert().values(branch=p["branch"], day=p["day"], appointments_since_walk_in=0,
                                         closed=False))


def project(uow: UnitOfWork, event: Event) -> None:
    """Apply one queue event to the waiting-room tables (live, and when replaying the log)."""
    p, at = event.payload, to_db(event.occurred_at)
    name = event.type.split(".", 1)[1]
    tickets, counters, days = uow.tables["tickets"], uow.tables["counters"], uow.tables["days"]
    if name != "AppointmentMissed":
        _ensure_day(uow, p)
    ticket = None
    if "ticket_id" in p and name != "CustomerCheckedIn":
        ticket = uow.execute(sa.select(tickets).where(tickets.c.id == p["ticket_id"])).one()
    if name == "CustomerCheckedIn":
        uow.execute(tickets.insert().values(
            id=p["ticket_id"], branch=p["branch"], day=p["day"], seq=int(p["number"].split("-")[1]),
            number=p["number"], service=p["service"], checked_in_for=p["service"], kind=p["kind"], priority=p["priority"], status="waiting",
            reference=p["reference"], cpr=p["cpr"], subject=vault.subject_of(p["cpr"]), language=p["language"],
            on_time=p["on_time"],
            appointment_start=to_db(parse_instant(p["appointment_start"])) if p["appointment_start"] else None,
            queued_at=at, waiting_since=at, waited_seconds=0, recalls=0))
    elif name == "TicketCalled":
        waited = ticket.waited_seconds + int((at - ticket.waiting_since).total_seconds())
        _ticket_update(uow, ticket.id, status="called", counter=p["counter"], waited_seconds=waited,
                       waiting_since=None, first_called_at=ticket.first_called_at or at, last_called_at=at)
        _counter_update(uow, p, p["counter"], serving=ticket.id)
        if p["lane"] in ("appointment", "walk_in"):
            since = days.c.appointments_since_walk_in + 1 if p["lane"] == "appointment" else 0
            uow.execute(days.update().where(days.c.branch == p["branch"], days.c.day == p["day"])
                        .values(appointments_since_walk_in=since))
    elif name == "TicketRecalled":
        _ticket_update(uow, ticket.id, recalls=p["recall"], last_called_at=at)
    elif name == "TicketServed":
        _ticket_update(uow, ticket.id, status="served", served_at=at, service_seconds=p["service_seconds"])
        _counter_update(uow, p, ticket.counter, serving=None)
    elif name == "TicketNoShow":
        _ticket_update(uow, ticket.id, status="no_show")
        _counter_update(uow, p, ticket.counter, serving=None)
    elif name == "TicketTransferred":
        # keeps the time waited so far; a new counter's calls start with no recalls
        waited = ticket.waited_seconds + (int((at - ticket.waiting_since).total_seconds()) if ticket.waiting_since else 0)
        _ticket_update(uow, ticket.id, service=p["to_service"], status="waiting", waiting_since=at, counter=None,
                       waited_seconds=waited, recalls=0)
        if ticket.status == "called":
            _counter_update(uow, p, ticket.counter, serving=None)
    elif name == "TicketClosedOut":
        _ticket_update(uow, ticket.id, status="closed_out", waiting_since=None)
        if ticket.status == "called":
            _counter_update(uow, p, ticket.counter, serving=None)
    elif name == "SatisfactionRated":
        _ticket_update(uow, ticket.id, score=p["score"], comment=p["comment"])
    elif name == "CounterOpened":
        services = json.dumps(sorted(p["services"]))
        found = uow.execute(counters.update().where(
            counters.c.branch == p["branch"], counters.c.day == p["day"], counters.c.counter == p["counter"])
            .values(services=services, open=True)).rowcount
        if not found:
            uow.execute(counters.insert().values(branch=p["branch"], day=p["day"], counter=p["counter"],
                                                 services=services, open=True, serving=None))
    elif name == "CounterClosed":
        _counter_update(uow, p, p["counter"], open=False, serving=None)
    elif name == "AppointmentMissed":
        uow.execute(appointments.update().where(appointments.c.reference == p["reference"]).values(status="missed"))
    elif name == "DayClosed":
        uow.execute(days.update().where(days.c.branch == p["branch"], days.c.day == p["day"]).values(closed=True))


def load_day(uow: UnitOfWork, branch: str, day: date) -> Day:
    tickets = uow.tables["tickets"]
    state = Day(branch, day)
    for t in uow.execute(sa.select(tickets).where(tickets.c.branch == branch, tickets.c.day == day.isoformat())):
        state.tickets[t.id] = _ticket(t)
    _load_day_row_and_counters(uow, state)
    return state


def refresh_day(uow: UnitOfWork, state: Day, events: list[Event]) -> None:
    """Bring a loaded day up to date after `events` were projected: the tickets they name, its counters and its
    row; much less than loading the day again when a thousand tickets wait."""
    tickets = uow.tables["tickets"]
    named = {e.payload["ticket_id"] for e in events if "ticket_id" in e.payload}
    if named:
        for t in uow.execute(sa.select(tickets).where(tickets.c.id.in_(named))):
            state.tickets[t.id] = _ticket(t)
    _load_day_row_and_counters(uow, state)


def _load_day_row_and_counters(uow: UnitOfWork, state: Day) -> None:
    counters, days = uow.tables["counters"], uow.tables["days"]
    day = state.day.isoformat()
    row = uow.execute(sa.select(days).where(days.c.branch == state.branch, days.c.day == day)).first()
    if row:
        state.appointments_since_walk_in, state.closed = row.appointments_since_walk_in, row.closed
    state.counters = {c.counter: Counter(c.counter, json.loads(c.services), c.open, c.serving) for c in uow.execute(
        sa.select(counters).where(counters.c.branch == state.branch, counters.c.day == day))}


def _ticket(t) -> Ticket:
    return Ticket(
        id=t.id, number=t.number, seq=t.seq, service=t.service, kind=t.kind, priority=t.priority,
        status=t.status, queued_at=from_db(t.queued_at), on_time=t.on_time, cpr=t.cpr, language=t.language,
        reference=t.reference, checked_in_for=t.checked_in_for, appointment_start=from_db(t.appointment_start),
        waiting_since=from_db(t.waiting_since), waited_seconds=t.waited_seconds, counter=t.counter,
        first_called_at=from_db(t.first_called_at), last_called_at=from_db(t.last_called_at), recalls=t.recalls,
        service_seconds=t.service_seconds, score=t.score)


def ticket_day(uow: UnitOfWork, ticket_id: str) -> tuple[str, date] | None:
    tickets = uow.tables["tickets"]
    row = uow.execute(sa.select(tickets.c.branch, tickets.c.day).where(tickets.c.id == ticket_id)).first()
    return (row.branch, date.fromisoformat(row.day)) if row else None


def days_to_close(uow: UnitOfWork, today: date) -> list[tuple[str, date]]:
    """Branch days up to today with tickets or appointments whose waiting room has not closed."""
    days, tickets = uow.tables["days"], uow.tables["tickets"]

    def open_days(table, *conditions):
        closed = sa.exists().where(days.c.branch == table.c.branch, days.c.day == table.c.day, days.c.closed)
        return {(r.branch, r.day) for r in uow.execute(sa.select(table.c.branch, table.c.day).where(
            table.c.day <= today.isoformat(), ~closed, *conditions).distinct())}

    # a day with tickets or open counters, or with bookings nobody has come for yet
    candidates = open_days(tickets) | open_days(uow.tables["counters"], uow.tables["counters"].c.open)
    candidates |= open_days(appointments, appointments.c.status == "active")
    return sorted((b, date.fromisoformat(d)) for b, d in candidates)


def open_days_with_calls(uow: UnitOfWork) -> list[tuple[str, date]]:
    tickets = uow.tables["tickets"]
    return sorted((r.branch, date.fromisoformat(r.day)) for r in uow.execute(
        sa.select(tickets.c.branch, tickets.c.day).where(tickets.c.status == "called").distinct()))
