"""The queue service's tables: the day's appointments (from booking's events), the catalogue (from
availability's), and the waiting room itself, a projection of the queue's own events. The waiting-room tables
are written in the same transaction as the events, by `record` alone: domain.evolve decides what each event
changes, and this writes the difference, so replaying the log into empty tables gives the same waiting room."""
import json
from datetime import date, datetime
from functools import lru_cache, reduce

import sqlalchemy as sa

from shared import catalogue, vault
from shared.clock import LOCAL, from_db, parse_instant, to_db
from shared.events import Event
from shared.dependencies import service_metadata
from shared.eventstore import UnitOfWork
from shared.projection import Handlers
from services.queue import domain
from services.queue.domain import Counter, Day, Ticket

BOOKINGS_CONSUMER = "queue.bookings"
CATALOGUE_CONSUMER = "queue.catalogue"


def branch_day_key() -> list[sa.Column]:
    """(branch, local date): the key of a branch's day in the tables about one."""
    return [sa.Column("branch", sa.String(64), primary_key=True), sa.Column("day", sa.String(10), primary_key=True)]


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
        vault.personal(sa.Column("cpr", sa.String(9), nullable=False)),
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
        "counters", metadata, *branch_day_key(),
        sa.Column("counter", sa.String(16), primary_key=True),
        sa.Column("services", sa.Text, nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("serving", sa.String(36)),
    )
    sa.Table(
        "days", metadata, *branch_day_key(),
        sa.Column("appointments_since_walk_in", sa.Integer, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
    )


metadata = service_metadata()
catalogue.catalogue_tables(metadata)
queue_tables(metadata)
tickets, counters, days = (metadata.tables[name] for name in ("tickets", "counters", "days"))
appointments = sa.Table(
    "appointments", metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    vault.personal(sa.Column("cpr", sa.String(9), nullable=False)),
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

apply_booking_event = Handlers()


@apply_booking_event.on("booking.SlotBooked")
def _booked(uow: UnitOfWork, event: Event) -> None:
    p, start = event.payload, parse_instant(event.payload["start"])
    uow.execute(appointments.insert(), {  # parameters, not values: the statement is compiled once
        "reference": p["reference"], "cpr": p["person"]["cpr"], "subject": vault.subject_of(p["person"]["cpr"]),
        "branch": p["branch"], "service": p["service"], "start": to_db(start),
        "day": start.astimezone(LOCAL).date().isoformat(), "status": "active", "language": p["person"]["language"]})


@apply_booking_event.on("booking.BookingCancelled")
def _cancelled(uow: UnitOfWork, event: Event) -> None:
    _set_appointment(uow, event.payload["reference"], status="cancelled")


@apply_booking_event.on("booking.BookingRescheduled")
def _rescheduled(uow: UnitOfWork, event: Event) -> None:
    start = parse_instant(event.payload["start"])
    _set_appointment(uow, event.payload["reference"], start=to_db(start),
                     day=start.astimezone(LOCAL).date().isoformat())


@apply_booking_event.on("booking.PersonErased")
def _erased(uow: UnitOfWork, event: Event) -> None:
    """Forget the person here too: our key of them, and their CPR in our tables."""
    vault.forget_person(uow, event.payload["subject"], tickets, appointments)


def _set_appointment(uow: UnitOfWork, reference: str, **values) -> None:
    uow.execute(appointments.update().where(appointments.c.reference == reference).values(**values))


def load_appointment(uow: UnitOfWork, reference: str) -> dict | None:
    row = uow.execute(sa.select(appointments).where(appointments.c.reference == reference)).first()
    return {**row._mapping, "start": from_db(row.start)} if row else None


def appointments_of(uow: UnitOfWork, branch: str, day: date) -> list[dict]:
    rows = uow.execute(sa.select(appointments).where(appointments.c.branch == branch,
                                                     appointments.c.day == day.isoformat()))
    return [{**r._mapping, "start": from_db(r.start)} for r in rows]


# -- the waiting room, from the queue's own events -----------------------------------------------------

beyond_the_day = Handlers()  # the queue's events that change tables other than the waiting room's


@beyond_the_day.on("queue.AppointmentMissed")
def _missed(uow: UnitOfWork, event: Event) -> None:
    _set_appointment(uow, event.payload["reference"], status="missed")


def record(uow: UnitOfWork, day: Day, events: list) -> Day:
    """Write `events` (stored events of `day`, just appended or read back from the log) to the tables and return
    the day after them: what domain.evolve changed in the waiting room, and what they say beyond it."""
    after = reduce(domain.evolve, events, day)
    _save(uow, day, after)
    for event in events:
        beyond_the_day(uow, event)
    return after


def project(uow: UnitOfWork, event: Event) -> None:
    """Apply one queue event to the tables (a replay): the part of its day it touches, loaded, then recorded."""
    p = event.payload
    named = [p["ticket_id"]] if "ticket_id" in p else []
    record(uow, load_day(uow, p["branch"], date.fromisoformat(p["day"]), named), [event])


def _save(uow: UnitOfWork, before: Day, after: Day) -> None:
    """Write how a day changed: new tickets and counters inserted, changed ones updated in the columns that
    changed only (so a CPR erased meanwhile is never written back from a day held in memory), and the day's
    row, which comes with its first ticket or counter."""
    if after is before:
        return
    at = {"branch": after.branch, "day": after.day.isoformat()}
    for ticket in _changed(before.tickets, after.tickets):
        old = before.tickets.get(ticket.id)
        _put(uow, tickets, {"id": ticket.id, **at}, old and _ticket_row(old), _ticket_row(ticket))
    for counter in _changed(before.counters, after.counters):
        old = before.counters.get(counter.id)
        _put(uow, counters, {**at, "counter": counter.id}, old and _counter_row(old), _counter_row(counter))
    row = _day_row(after)
    # the day's row comes with its first ticket or counter: a day with neither may not have one yet
    if row != _day_row(before) or not (before.tickets or before.counters):
        if not _update(uow, days, at, row):
            uow.execute(days.insert(), {**at, **row})


def _changed(before: dict, after: dict) -> list:
    return [] if after is before else [value for key, value in after.items() if before.get(key) is not value]


def _put(uow: UnitOfWork, table: sa.Table, key: dict, old: dict | None, new: dict) -> None:
    """Insert the row `key` + `new`, or, when it had `old`, update the columns that changed."""
    if old is None:
        uow.execute(table.insert(), {**key, **new})
    elif changes := {column: value for column, value in new.items() if old[column] != value}:
        _update(uow, table, key, changes)


def _update(uow: UnitOfWork, table: sa.Table, key: dict, values: dict) -> int:
    """Set `values` in the row `key`; returns the rows found. The values go in as parameters, so the statement
    is built once for each table and key."""
    return uow.execute(_update_by(table, tuple(key)), {**values, **{f"key_{k}": v for k, v in key.items()}}).rowcount


@lru_cache(maxsize=None)
def _update_by(table: sa.Table, key: tuple) -> sa.Update:
    return table.update().where(*(table.c[column] == sa.bindparam(f"key_{column}") for column in key))


def _ticket_row(ticket: Ticket) -> dict:
    row = {name: to_db(value) if isinstance(value, datetime) else value for name, value in vars(ticket).items()}
    return {**row, "subject": vault.subject_of(ticket.cpr)}


def _counter_row(counter: Counter) -> dict:
    return {"services": json.dumps(counter.services), "open": counter.open, "serving": counter.serving}


def _day_row(day: Day) -> dict:
    return {"appointments_since_walk_in": day.appointments_since_walk_in, "closed": day.closed}


def _of_the_day(table: sa.Table) -> sa.Select:
    return sa.select(table).where(table.c.branch == sa.bindparam("branch"), table.c.day == sa.bindparam("day"))


# built once, with parameters: a replay loads part of a day for every event
_DAY_ROW, _DAY_COUNTERS, _DAY_TICKETS = (_of_the_day(table) for table in (days, counters, tickets))
_NAMED_TICKETS = _DAY_TICKETS.where(tickets.c.id.in_(sa.bindparam("ids", expanding=True)))


def load_day(uow: UnitOfWork, branch: str, day: date, ticket_ids: list[str] | None = None) -> Day:
    """A branch's day from the tables: with all its tickets, or with only `ticket_ids`."""
    at = {"branch": branch, "day": day.isoformat()}
    if ticket_ids is None:
        found = uow.execute(_DAY_TICKETS, at)
    else:
        found = uow.execute(_NAMED_TICKETS, {**at, "ids": ticket_ids})
    row = uow.execute(_DAY_ROW, at).first()
    return Day(branch, day, tickets={t.id: _ticket(t) for t in found},
               counters={c.counter: Counter(c.counter, json.loads(c.services), c.open, c.serving)
                         for c in uow.execute(_DAY_COUNTERS, at)},
               appointments_since_walk_in=row.appointments_since_walk_in if row else 0, closed=bool(row and row.closed))


def _ticket(t) -> Ticket:
    return Ticket(
        id=t.id, number=t.number, seq=t.seq, service=t.service, kind=t.kind, priority=t.priority,
        status=t.status, queued_at=from_db(t.queued_at), on_time=t.on_time, cpr=t.cpr, language=t.language,
        reference=t.reference, checked_in_for=t.checked_in_for, appointment_start=from_db(t.appointment_start),
        waiting_since=from_db(t.waiting_since), waited_seconds=t.waited_seconds, counter=t.counter,
        first_called_at=from_db(t.first_called_at), last_called_at=from_db(t.last_called_at), recalls=t.recalls,
        served_at=from_db(t.served_at), service_seconds=t.service_seconds, score=t.score, comment=t.comment)


def ticket_day(uow: UnitOfWork, ticket_id: str) -> tuple[str, date] | None:
    row = uow.execute(sa.select(tickets.c.branch, tickets.c.day).where(tickets.c.id == ticket_id)).first()
    return (row.branch, date.fromisoformat(row.day)) if row else None


def days_to_close(uow: UnitOfWork, today: date) -> list[tuple[str, date]]:
    """Branch days up to today with tickets or appointments whose waiting room has not closed."""
    def open_days(table, *conditions):
        closed = sa.exists().where(days.c.branch == table.c.branch, days.c.day == table.c.day, days.c.closed)
        return {(r.branch, r.day) for r in uow.execute(sa.select(table.c.branch, table.c.day).where(
            table.c.day <= today.isoformat(), ~closed, *conditions).distinct())}

    # a day with tickets or open counters, or with bookings nobody has come for yet
    candidates = open_days(tickets) | open_days(counters, counters.c.open)
    candidates |= open_days(appointments, appointments.c.status == "active")
    return sorted((b, date.fromisoformat(d)) for b, d in candidates)


def open_days_with_calls(uow: UnitOfWork) -> list[tuple[str, date]]:
    return sorted((r.branch, date.fromisoformat(r.day)) for r in uow.execute(
        sa.select(tickets.c.branch, tickets.c.day).where(tickets.c.status == "called").distinct()))
