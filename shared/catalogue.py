"""The schedule of the service centres, as both availability and booking project it from catalogue events.

A branch document (a plain dict, stored as JSON in each service's own projection) is built by applying the
availability events to it. Slots follow from it: a service's slots start every `duration_minutes` inside the
opening periods, each with capacity `online_capacity` (counters kept back for walk-ins are not offered online).
"""
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from shared.clock import LOCAL, UTC
from shared.contracts import Event
from shared.contracts.availability import WEEKDAYS
from shared.errors import NotFound


def apply(branch: dict | None, event: Event) -> dict:
    """The branch document after `event` (any availability event that names a branch)."""
    doc = dict(branch or {"services": {}, "week": {}, "holidays": {}})
    doc["services"], doc["holidays"] = dict(doc["services"]), dict(doc["holidays"])
    p = event.payload
    name = event.type.split(".", 1)[1]
    if name == "BranchRegistered":
        doc.update(id=p["branch"], directorate=p["directorate"], name_en=p["name_en"], name_ar=p["name_ar"],
                   min_notice_minutes=p["min_notice_minutes"], max_days_ahead=p["max_days_ahead"])
    elif name == "ServiceOffered":
        service = dict(doc["services"].get(p["service"], {"counters": 0, "online_capacity": 0}))
        service.update(id=p["service"], name_en=p["name_en"], name_ar=p["name_ar"],
                       duration_minutes=p["duration_minutes"], ticket_prefix=p["ticket_prefix"])
        doc["services"][p["service"]] = service
    elif name == "CounterCapacitySet":
        service = dict(doc["services"].get(p["service"], {"id": p["service"]}))
        service.update(counters=p["counters"], online_capacity=p["online_capacity"])
        doc["services"][p["service"]] = service
    elif name == "OpeningHoursSet":
        doc["week"] = {day: [[period["opens"], period["closes"]] for period in periods]
                       for day, periods in p["week"].items()}
    elif name == "QueuePolicySet":
        doc["queue"] = {k: v for k, v in p.items() if k != "branch"}
    elif name == "HolidayDeclared":
        doc["holidays"][p["date"]] = {"name_en": p["name_en"], "name_ar": p["name_ar"]}
    return doc


@dataclass(frozen=True)
class Slot:
    start: datetime   # UTC
    end: datetime
    capacity: int


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def slots(branch: dict, service_id: str, day: date) -> list[Slot]:
    """The bookable slots of one service at one branch on one local date (none on weekends and holidays)."""
    service = branch.get("services", {}).get(service_id)
    if not service or "duration_minutes" not in service or day.isoformat() in branch.get("holidays", {}):
        return []
    length = timedelta(minutes=service["duration_minutes"])
    result = []
    for opens, closes in branch.get("week", {}).get(WEEKDAYS[day.weekday()], []):
        start = datetime.combine(day, _hhmm(opens), LOCAL)
        close = datetime.combine(day, _hhmm(closes), LOCAL)
        while start + length <= close:
            result.append(Slot(start.astimezone(UTC), (start + length).astimezone(UTC),
                               service.get("online_capacity", 0)))
            start += length
    return result


def slot_at(branch: dict, service_id: str, start: datetime) -> Slot | None:
    """The slot starting exactly at `start`, if there is one."""
    start = start.astimezone(UTC)
    for slot in slots(branch, service_id, start.astimezone(LOCAL).date()):
        if slot.start == start:
            return slot
    return None


def slot_stream(branch: str, service: str, start: datetime) -> str:
    return f"slot-{branch}-{service}-{start.astimezone(UTC):%Y%m%dT%H%MZ}"


def window_problem(branch: dict, start: datetime, now: datetime) -> str | None:
    """Why a slot starting at `start` cannot be booked at `now`, as an error code; None when it can."""
    if start <= now:
        return "SLOT_IN_PAST"
    if start < now + timedelta(minutes=branch["min_notice_minutes"]):
        return "TOO_SOON"
    if start.astimezone(LOCAL).date() > now.astimezone(LOCAL).date() + timedelta(days=branch["max_days_ahead"]):
        return "OUTSIDE_BOOKING_WINDOW"
    return None


def closed_reason(branch: dict, day: date) -> dict | None:
    """Why a branch has no slots on a local date (holiday or weekly closing), for people to read."""
    holiday = branch.get("holidays", {}).get(day.isoformat())
    if holiday:
        return {"code": "HOLIDAY", **holiday}
    if not branch.get("week", {}).get(WEEKDAYS[day.weekday()]):
        return {"code": "CLOSED", "name_en": "The branch is closed on this day", "name_ar": "الفرع مغلق في هذا اليوم"}
    return None


def require_service(branch: dict | None, branch_id: str, service_id: str) -> dict:
    """The branch's service, or the 404 that names what is unknown."""
    if branch is None:
        raise NotFound(f"There is no branch {branch_id!r}.", code="UNKNOWN_BRANCH",
                       message_ar="الفرع المطلوب غير موجود.")
    if service_id not in branch.get("services", {}):
        raise NotFound(f"The branch {branch_id!r} does not offer {service_id!r}.", code="UNKNOWN_SERVICE",
                       message_ar="الخدمة المطلوبة غير متوفرة في هذا الفرع.")
    return branch["services"][service_id]


# -- the catalogue projection, kept by each service that needs the schedule (in its own database) ----------

def catalogue_tables(metadata: sa.MetaData) -> None:
    sa.Table("directorates", metadata,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("name_en", sa.String(200), nullable=False),
             sa.Column("name_ar", sa.String(200), nullable=False))
    sa.Table("branches", metadata,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("directorate", sa.String(64), index=True),
             sa.Column("doc", sa.Text, nullable=False))


def load_catalogue(uow) -> tuple[dict, dict]:
    """(directorates by id, branch documents by id)."""
    directorates, branches = uow.tables["directorates"], uow.tables["branches"]
    found = {r.id: {"id": r.id, "name_en": r.name_en, "name_ar": r.name_ar}
             for r in uow.execute(sa.select(directorates))}
    return found, {r.id: json.loads(r.doc) for r in uow.execute(sa.select(branches))}


def load_branch(uow, branch_id: str, for_update: bool = False) -> dict | None:
    branches = uow.tables["branches"]
    query = sa.select(branches.c.doc).where(branches.c.id == branch_id)
    doc = uow.execute(query.with_for_update() if for_update else query).scalar_one_or_none()
    return json.loads(doc) if doc else None


def project(uow, event: Event) -> None:
    """Apply an availability event to the catalogue projection."""
    p = event.payload
    if event.type == "availability.DirectorateRegistered":
        _upsert(uow, uow.tables["directorates"],
                {"id": p["directorate"], "name_en": p["name_en"], "name_ar": p["name_ar"]})
    else:
        doc = apply(load_branch(uow, p["branch"], for_update=True), event)
        _upsert(uow, uow.tables["branches"], {"id": p["branch"], "directorate": doc.get("directorate"),
                                              "doc": json.dumps(doc, ensure_ascii=False, sort_keys=True)})


def _upsert(uow, table: sa.Table, row: dict) -> None:
    if uow.execute(table.update().where(table.c.id == row["id"]).values(row)).rowcount == 0:
        uow.execute(table.insert().values(row))
