"""The booking service's tables: the schedule it decides against (from availability's events) and its
bookings, written in the same transaction as the events that change them."""
import sqlalchemy as sa

from shared import catalogue
from shared.storage import service_metadata

metadata = service_metadata()
catalogue.catalogue_tables(metadata)

bookings = sa.Table(
    "bookings", metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),  # bumped by every change: concurrent commands conflict
    sa.Column("cpr", sa.String(9), nullable=False),
    sa.Column("branch", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),  # naive UTC
    sa.Column("end", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | cancelled | expired (nobody came)
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("mobile", sa.String(32)),
    sa.Column("email", sa.String(254)),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # web | app | call_centre | counter
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_bookings_slot", "branch", "service", "start", "status"),
    sa.Index("ix_bookings_person", "cpr", "status"),
)

# One row per person, its version bumped by each booking they make, so that two bookings by the same person
# at the same moment conflict and the per-person rules are checked against what the other committed.
people = sa.Table(
    "people", metadata,
    sa.Column("cpr", sa.String(9), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

CATALOGUE_CONSUMER = "booking.catalogue"


def project(uow, event) -> None:
    """The bookings table as the log describes it. Commands write the table directly, in the transaction of
    their events; `mawaeed replay booking` rebuilds it with this and compares, which checks that the two agree."""
    from shared.clock import parse_instant, to_db
    p, table = event.payload, bookings
    where = table.c.reference == p.get("reference")
    if event.type == "booking.SlotBooked":
        person = p["person"]
        uow.execute(table.insert().values(
            reference=p["reference"], version=0, cpr=person["cpr"], branch=p["branch"], service=p["service"],
            start=to_db(parse_instant(p["start"])), end=to_db(parse_instant(p["end"])), status="active",
            name=person["name"], mobile=person.get("mobile"), email=person.get("email"),
            language=person["language"], channel=p["channel"], created_at=to_db(event.occurred_at),
            updated_at=to_db(event.occurred_at)))
    elif event.type == "booking.BookingCancelled":
        uow.execute(table.update().where(where).values(status="cancelled"))
    elif event.type == "booking.BookingExpired":
        uow.execute(table.update().where(where).values(status="expired"))
    elif event.type == "booking.BookingRescheduled":
        uow.execute(table.update().where(where).values(start=to_db(parse_instant(p["start"])),
                                                        end=to_db(parse_instant(p["end"]))))
