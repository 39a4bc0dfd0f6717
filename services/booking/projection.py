"""The booking service's tables and every statement on them: its copy of the catalogue (the schedule it decides
against, from availability's events), the people booking, and the bookings. Commands write a booking in the
transaction of the events that change it; `project` and `rebuild` derive the same table from the log (fold.py),
which is how `mawaeed replay booking` checks that the two agree.

Rows are as stored, instants naive UTC (shared.clock.to_db); instants given to these functions are aware.
"""
from datetime import datetime

import sqlalchemy as sa

from shared import catalogue
from shared.clock import to_db
from shared.dependencies import service_metadata
from shared.errors import ConcurrencyError
from shared.vault import personal, scrub
from services.booking import fold

metadata = service_metadata()
catalogue.catalogue_tables(metadata)

bookings = sa.Table(
    "bookings", metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),  # bumped by every change: concurrent commands conflict
    personal(sa.Column("cpr", sa.String(9), nullable=False)),
    sa.Column("branch", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),  # naive UTC
    sa.Column("end", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | cancelled | expired (nobody came)
    personal(sa.Column("name", sa.String(200), nullable=False)),
    personal(sa.Column("mobile", sa.String(32))),
    personal(sa.Column("email", sa.String(254))),
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


# -- what commands read and write -------------------------------------------------------------------------
# The statements of a booking are built once, with bound parameters: building a statement and computing its
# cache key cost more CPU than running it (a fifth of a booking's), and a statement object keeps its key.

_BY_REFERENCE = sa.select(bookings).where(bookings.c.reference == sa.bindparam("reference"))
_ACTIVE = sa.select(bookings.c.reference, bookings.c.service, bookings.c.start).where(
    bookings.c.cpr == sa.bindparam("cpr"), bookings.c.status == "active", bookings.c.start > sa.bindparam("after"))
# As text: SQLAlchemy does not cache an INSERT .. ON CONFLICT construct, and compiled it for every booking.
# The same SQL on PostgreSQL and SQLite.
_CLAIM = sa.text("INSERT INTO people (cpr, version) VALUES (:cpr, 1) "
                 "ON CONFLICT (cpr) DO UPDATE SET version = people.version + 1")
_INSERT = bookings.insert()


def _slot_state(held_after: bool) -> sa.Select:
    """The slot stream's version and the slot's places taken, in one statement (see slot_version_and_taken)."""
    events = metadata.tables["events"]
    version = (sa.select(sa.func.coalesce(sa.func.max(events.c.stream_version), 0))
               .where(events.c.stream_id == sa.bindparam("stream")).scalar_subquery())
    held = bookings.c.status == "active"
    if held_after:
        held = sa.or_(held, sa.and_(bookings.c.status == "cancelled",
                                    bookings.c.updated_at > sa.bindparam("held_after")))
    taken = sa.select(sa.func.count()).select_from(bookings).where(
        bookings.c.branch == sa.bindparam("branch"), bookings.c.service == sa.bindparam("service"),
        bookings.c.start == sa.bindparam("start"), held).scalar_subquery()
    return sa.select(version, taken)


_SLOT_STATE = {False: _slot_state(False), True: _slot_state(True)}


def booking(uow, reference: str):
    """The booking row with this (normalised) reference, or None."""
    return uow.execute(_BY_REFERENCE, {"reference": reference}).first()


def active_bookings(uow, cpr: str, after: datetime) -> list:
    """(reference, service, start) of the person's active bookings that start after `after`."""
    return uow.execute(_ACTIVE, {"cpr": cpr, "after": to_db(after)}).all()


def bookings_of(uow, cpr: str) -> list:
    """All of a person's bookings, soonest first."""
    return uow.execute(sa.select(bookings).where(bookings.c.cpr == cpr).order_by(bookings.c.start)).all()


def claim_person(uow, cpr: str) -> None:
    """Create or bump the person's row. It stays locked until commit, so two bookings by one person take turns
    and the second checks the per-person rules against what the first committed."""
    uow.execute(_CLAIM, {"cpr": cpr})


def slot_version_and_taken(uow, stream: str, branch: str, service: str, start: datetime,
                           held_after: datetime | None = None) -> tuple[int, int]:
    """(the slot stream's version, the slot's places taken), in one statement and so from one snapshot: a
    booking committed after it has moved the version, and an append at the version read fails. Taken: its active
    bookings, and with `held_after` (now minus the branch's release delay) its bookings cancelled after that."""
    values = {"stream": stream, "branch": branch, "service": service, "start": to_db(start)}
    if held_after is not None:
        values["held_after"] = to_db(held_after)
    return tuple(uow.execute(_SLOT_STATE[held_after is not None], values).one())


def active_references(uow, branch: str, after: datetime, service: str | None = None,
                      before: datetime | None = None) -> list[str]:
    """References of the active bookings at `branch` (of `service`, if given) starting after `after` (and before
    `before`, if given), soonest first: those a change to the catalogue may leave without a place."""
    query = sa.select(bookings.c.reference).where(bookings.c.branch == branch, bookings.c.status == "active",
                                                  bookings.c.start > to_db(after))
    if service is not None:
        query = query.where(bookings.c.service == service)
    if before is not None:
        query = query.where(bookings.c.start < to_db(before))
    return list(uow.execute(query.order_by(bookings.c.start, bookings.c.reference)).scalars())


def bump(uow, reference: str, version: int) -> None:
    """Compare-and-set the booking's version: ConcurrencyError when someone else changed it meanwhile."""
    done = uow.execute(bookings.update().where(bookings.c.reference == reference, bookings.c.version == version)
                       .values(version=version + 1)).rowcount
    if done != 1:
        raise ConcurrencyError(f"bookings {reference} changed meanwhile")


def insert(uow, row: dict) -> None:
    uow.execute(_INSERT, row)


def update(uow, reference: str, **values) -> None:
    uow.execute(bookings.update().where(bookings.c.reference == reference).values(values))


def forget(uow, cpr: str) -> int:
    """Scrub the person's personal columns from their bookings (as the log now reads them) and drop their row;
    returns the bookings scrubbed."""
    scrubbed = scrub(uow, bookings, bookings.c.cpr == cpr)
    uow.execute(people.delete().where(people.c.cpr == cpr))
    return scrubbed


# -- the bookings table from the log ----------------------------------------------------------------------

def project(uow, event) -> None:
    """The bookings table as the log describes it, one event (upcast) at a time: fold.evolve, written."""
    booked = fold.evolve(None, event)
    if booked is not None:
        insert(uow, booked)
    elif changes := fold.evolve({}, event):  # a booking already written: set what the event changes
        update(uow, event.payload["reference"], **changes)


def rebuild(uow, pages) -> None:
    """`project` over pages of events into an empty table (a replay), folded in memory and written in two
    statements a page: the page's new bookings with their later changes in the page, then the changes to
    bookings of earlier pages."""
    change = bookings.update().where(bookings.c.reference == sa.bindparam("ref")).values(
        status=sa.func.coalesce(sa.bindparam("new_status"), bookings.c.status),
        start=sa.func.coalesce(sa.bindparam("new_start"), bookings.c.start),
        end=sa.func.coalesce(sa.bindparam("new_end"), bookings.c.end))
    for page in pages:
        new, changed = {}, {}  # by reference: whole rows; what changed in rows already written
        for event in page:
            reference = event.payload.get("reference")
            if reference in new:
                new[reference] = fold.evolve(new[reference], event)
            elif (booked := fold.evolve(None, event)) is not None:
                new[reference] = booked
            elif changes := fold.evolve(changed.get(reference, {}), event):
                changed[reference] = changes
        if new:
            uow.execute(bookings.insert(), list(new.values()))
        if changed:
            uow.execute(change, [{"ref": reference, "new_status": c.get("status"), "new_start": c.get("start"),
                                  "new_end": c.get("end")} for reference, c in changed.items()])
