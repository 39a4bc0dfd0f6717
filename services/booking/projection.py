"""The booking service's tables: the schedule it decides against (from availability's events) and its
bookings, written in the same transaction as the events that change them."""
from functools import lru_cache

import sqlalchemy as sa

from shared import catalogue
from shared.dependencies import service_metadata

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


@lru_cache(maxsize=1 << 16)
def _db_instant(text: str):
    from shared.clock import parse_instant, to_db
    return to_db(parse_instant(text))


def rebuild(uow, pages) -> None:
    """`project` over pages of events into an empty table (a replay), two statements a page: the page's new
    bookings, their later changes in the page folded in, and the changes to bookings of earlier pages."""
    from shared.clock import to_db
    table = bookings
    change = table.update().where(table.c.reference == sa.bindparam("ref")).values(
        status=sa.func.coalesce(sa.bindparam("new_status"), table.c.status),
        start=sa.func.coalesce(sa.bindparam("new_start"), table.c.start),
        end=sa.func.coalesce(sa.bindparam("new_end"), table.c.end))
    for page in pages:
        new, changed = {}, {}
        for event in page:
            p, type_ = event.payload, event.type
            if type_ == "booking.SlotBooked":
                person, at = p["person"], to_db(event.occurred_at)
                new[p["reference"]] = {
                    "reference": p["reference"], "version": 0, "cpr": person["cpr"], "branch": p["branch"],
                    "service": p["service"], "start": _db_instant(p["start"]), "end": _db_instant(p["end"]),
                    "status": "active", "name": person["name"], "mobile": person.get("mobile"),
                    "email": person.get("email"), "language": person["language"], "channel": p["channel"],
                    "created_at": at, "updated_at": at}
                continue
            if type_ == "booking.BookingCancelled":
                values = {"status": "cancelled"}
            elif type_ == "booking.BookingExpired":
                values = {"status": "expired"}
            elif type_ == "booking.BookingRescheduled":
                values = {"start": _db_instant(p["start"]), "end": _db_instant(p["end"])}
            else:
                continue
            if p["reference"] in new:
                new[p["reference"]].update(values)
            else:
                changed.setdefault(p["reference"], {"ref": p["reference"], "new_status": None, "new_start": None,
                                                    "new_end": None}).update({f"new_{k}": v for k, v in values.items()})
        if new:
            uow.execute(table.insert(), list(new.values()))
        if changed:
            uow.execute(change, list(changed.values()))
