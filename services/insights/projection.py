"""The insights service's tables, a projection of booking's and queue's logs (and its copy of the catalogue):
one row per booking, per visit (a ticket) and per counter session. The figures (figures.py) are summed from
these rows at read time, for any period and scope, so nothing here is a total that could drift from its rows.
No personal field is kept: a figure needs no CPR, name or comment text."""
import sqlalchemy as sa

from shared import catalogue
from shared.clock import parse_instant, to_db
from shared.dependencies import service_metadata
from shared.events import Event
from shared.projection import Handlers
from shared.schedule import local_day

BOOKINGS_CONSUMER = "insights.bookings"
QUEUE_CONSUMER = "insights.queue"
CATALOGUE_CONSUMER = "insights.catalogue"

metadata = service_metadata()
catalogue.catalogue_tables(metadata)

bookings = sa.Table(
    "bookings", metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    sa.Column("branch", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),        # the local date of the appointment (after moves)
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("booked_at", sa.DateTime, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),     # active, cancelled, expired
    sa.Column("moves", sa.Integer, nullable=False),
    sa.Index("ix_insights_bookings_day", "day", "branch"),
)

visits = sa.Table(
    "visits", metadata,
    sa.Column("ticket_id", sa.String(36), primary_key=True),
    sa.Column("branch", sa.String(64), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),        # the branch day of the ticket
    sa.Column("service", sa.String(64), nullable=False),    # the one it was served for, after any transfer
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16)),
    sa.Column("on_time", sa.Boolean, nullable=False),
    sa.Column("checked_in_at", sa.DateTime, nullable=False),
    sa.Column("first_called_at", sa.DateTime),
    sa.Column("served_at", sa.DateTime),
    sa.Column("wait_seconds", sa.Integer),
    sa.Column("service_seconds", sa.Integer),
    sa.Column("no_show", sa.Boolean, nullable=False),
    sa.Column("abandoned", sa.Boolean, nullable=False),     # closed out at the day's end, never called
    sa.Column("recalls", sa.Integer, nullable=False),
    sa.Column("transferred", sa.Integer, nullable=False),
    sa.Column("score", sa.Integer),
    sa.Column("has_comment", sa.Boolean, nullable=False),
    sa.Index("ix_insights_visits_day", "day", "branch"),
)

counter_sessions = sa.Table(
    "counter_sessions", metadata,
    sa.Column("branch", sa.String(64), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("counter", sa.String(16), primary_key=True),
    sa.Column("opened_at", sa.DateTime, primary_key=True),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("services", sa.Text, nullable=False),         # comma-separated: what the counter served
)

apply_booking_event = Handlers()
apply_queue_event = Handlers()


def _at(text: str):
    return to_db(parse_instant(text))


@apply_booking_event.on("booking.SlotBooked")
def _booked(uow, event: Event) -> None:
    p = event.payload
    if uow.execute(sa.select(bookings.c.reference).where(bookings.c.reference == p["reference"])).first():
        return
    start = parse_instant(p["start"])
    uow.execute(bookings.insert().values(
        reference=p["reference"], branch=p["branch"], service=p["service"], day=local_day(start).isoformat(),
        start=to_db(start), booked_at=to_db(event.occurred_at), channel=p.get("channel", "web"), status="active",
        moves=0))


def _booking(reference: str):
    return bookings.update().where(bookings.c.reference == reference)


@apply_booking_event.on("booking.BookingCancelled")
def _cancelled(uow, event: Event) -> None:
    uow.execute(_booking(event.payload["reference"]).values(status="cancelled"))


@apply_booking_event.on("booking.BookingExpired")
def _expired(uow, event: Event) -> None:
    uow.execute(_booking(event.payload["reference"]).values(status="expired"))


@apply_booking_event.on("booking.BookingRescheduled")
def _moved(uow, event: Event) -> None:
    start = parse_instant(event.payload["start"])
    uow.execute(_booking(event.payload["reference"]).values(
        start=to_db(start), day=local_day(start).isoformat(), moves=bookings.c.moves + 1))


def _visit(ticket_id: str):
    return visits.update().where(visits.c.ticket_id == ticket_id)


@apply_queue_event.on("queue.CustomerCheckedIn")
def _checked_in(uow, event: Event) -> None:
    p = event.payload
    if uow.execute(sa.select(visits.c.ticket_id).where(visits.c.ticket_id == p["ticket_id"])).first():
        return
    uow.execute(visits.insert().values(
        ticket_id=p["ticket_id"], branch=p["branch"], day=str(p["day"]), service=p["service"], kind=p["kind"],
        priority=p.get("priority"), on_time=bool(p["on_time"]), checked_in_at=to_db(event.occurred_at),
        no_show=False, abandoned=False, recalls=0, transferred=0, has_comment=False))


@apply_queue_event.on("queue.TicketCalled")
def _called(uow, event: Event) -> None:
    uow.execute(_visit(event.payload["ticket_id"]).where(visits.c.first_called_at.is_(None))
                .values(first_called_at=to_db(event.occurred_at)))


@apply_queue_event.on("queue.TicketRecalled")
def _recalled(uow, event: Event) -> None:
    # the event counts its recall: the highest seen is the ticket's, whatever is delivered twice
    uow.execute(_visit(event.payload["ticket_id"]).where(visits.c.recalls < event.payload["recall"])
                .values(recalls=event.payload["recall"]))


@apply_queue_event.on("queue.TicketServed")
def _served(uow, event: Event) -> None:
    p = event.payload
    uow.execute(_visit(p["ticket_id"]).values(served_at=to_db(event.occurred_at), service=p["service"],
                                              wait_seconds=p["wait_seconds"], service_seconds=p["service_seconds"]))


@apply_queue_event.on("queue.TicketNoShow")
def _no_show(uow, event: Event) -> None:
    uow.execute(_visit(event.payload["ticket_id"]).values(no_show=True))


@apply_queue_event.on("queue.TicketTransferred")
def _transferred(uow, event: Event) -> None:
    uow.execute(_visit(event.payload["ticket_id"]).values(service=event.payload["to_service"],
                                                          transferred=visits.c.transferred + 1))


@apply_queue_event.on("queue.TicketClosedOut")
def _closed_out(uow, event: Event) -> None:
    uow.execute(_visit(event.payload["ticket_id"]).where(visits.c.first_called_at.is_(None))
                .values(abandoned=True))


@apply_queue_event.on("queue.SatisfactionRated")
def _rated(uow, event: Event) -> None:
    p = event.payload
    uow.execute(_visit(p["ticket_id"]).values(score=p["score"], has_comment=bool((p.get("comment") or "").strip())))


def _open_sessions(branch: str, day: str, counter: str | None = None):
    where = [counter_sessions.c.branch == branch, counter_sessions.c.day == day, counter_sessions.c.closed_at.is_(None)]
    if counter is not None:
        where.append(counter_sessions.c.counter == counter)
    return counter_sessions.update().where(*where)


@apply_queue_event.on("queue.CounterOpened")
def _counter_opened(uow, event: Event) -> None:
    p, at = event.payload, to_db(event.occurred_at)
    day = str(p["day"])
    # opening an open counter (for other services) ends its session and starts another
    uow.execute(_open_sessions(p["branch"], day, p["counter"]).values(closed_at=at))
    uow.execute(counter_sessions.insert().values(branch=p["branch"], day=day, counter=p["counter"], opened_at=at,
                                                 services=",".join(sorted(p["services"]))))


@apply_queue_event.on("queue.CounterClosed")
def _counter_closed(uow, event: Event) -> None:
    p = event.payload
    uow.execute(_open_sessions(p["branch"], str(p["day"]), p["counter"]).values(closed_at=to_db(event.occurred_at)))


@apply_queue_event.on("queue.DayClosed")
def _day_closed(uow, event: Event) -> None:
    p = event.payload
    uow.execute(_open_sessions(p["branch"], str(p["day"])).values(closed_at=to_db(event.occurred_at)))
