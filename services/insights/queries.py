"""Reading the figures: the rows of a scope (a branch, a directorate or the whole country) and a date range,
grouped into periods (day, ISO week, month) and summed by figures.py. Week, month, directorate and country are
rolled up here, at read time, from the same rows the day's figures come from."""
import json
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from shared.clock import from_db
from shared.errors import NotFound
from shared.eventstore import Database
from shared.schedule import slots, wait_targets
from services.insights import figures
from services.insights.projection import bookings, counter_sessions, visits

MAX_DAYS = 400
PERIODS = ("day", "week", "month")


def periods(start: date, end: date, by: str) -> list[tuple[str, date, date]]:
    """(name, first day, last day) of each period from `start` to `end` inclusive, clipped to them:
    2026-12-07, 2026-W50 (ISO week), 2026-12."""
    found, day = [], start
    while day <= end:
        if by == "day":
            name, last = day.isoformat(), day
        elif by == "week":
            year, week, weekday = day.isocalendar()
            name, last = f"{year}-W{week:02d}", day + timedelta(days=7 - weekday)
        else:
            following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
            name, last = f"{day.year}-{day.month:02d}", following - timedelta(days=1)
        last = min(last, end)
        found.append((name, day, last))
        day = last + timedelta(days=1)
    return found


def _branches(uow, scope: dict) -> dict:
    """The branch documents of the scope (404 for an unknown branch or directorate)."""
    table = uow.tables["branches"]
    query = sa.select(table.c.id, table.c.directorate, table.c.doc)
    if "branch" in scope:
        query = query.where(table.c.id == scope["branch"])
    elif "directorate" in scope:
        directorates = uow.tables["directorates"]
        if uow.execute(sa.select(directorates.c.id).where(directorates.c.id == scope["directorate"])).first() is None:
            raise NotFound(f"There is no directorate {scope['directorate']!r}.", code="UNKNOWN_DIRECTORATE",
                           message_ar="الإدارة المطلوبة غير موجودة.")
        query = query.where(table.c.directorate == scope["directorate"])
    found = {row.id: json.loads(row.doc) for row in uow.execute(query)}
    if "branch" in scope and not found:
        raise NotFound(f"There is no branch {scope['branch']!r}.", code="UNKNOWN_BRANCH",
                       message_ar="الفرع المطلوب غير موجود.")
    return found


def directorate_of(db: Database, branch: str) -> str | None:
    """The directorate of a branch in the catalogue copy (404 when the branch is unknown)."""
    with db.transaction() as uow:
        return _branches(uow, {"branch": branch})[branch].get("directorate")


def _rows(uow, table: sa.Table, scope: dict, branches: dict, start: date, end: date, service: str | None):
    query = sa.select(table).where(table.c.day >= start.isoformat(), table.c.day <= end.isoformat())
    if "all" not in scope:
        query = query.where(table.c.branch.in_(sorted(branches)))
    if service and "service" in table.c:
        query = query.where(table.c.service == service)
    return [row._asdict() for row in uow.execute(query)]


def places_offered(branches: dict, day: date, service: str | None) -> int:
    """Online places of a day: each slot's capacity (shared/schedule.slots), over the branches and services
    (or the one service) as the catalogue copy has them now."""
    total = 0
    for doc in branches.values():
        for service_id in ([service] if service else sorted(doc.get("services", {}))):
            total += sum(slot.capacity for slot in slots(doc, service_id, day))
    return total


def _counter_hours(sessions: list[dict], now: datetime) -> float:
    """Hours counters were open: opened to closed, or to now for one still open."""
    return sum(((from_db(s["closed_at"]) or now) - from_db(s["opened_at"])).total_seconds()
               for s in sessions) / 3600


def report(db: Database, scope: dict, start: date, end: date, by: str, service: str | None, now: datetime) -> dict:
    """The answer of GET /api/v1/insights: figures per period and for the whole range."""
    with db.transaction() as uow:
        branches = _branches(uow, scope)
        booking_rows = _rows(uow, bookings, scope, branches, start, end, service)
        visit_rows = _rows(uow, visits, scope, branches, start, end, service)
        session_rows = _rows(uow, counter_sessions, scope, branches, start, end, None)
    if service:  # a counter's hours count for each service it served
        session_rows = [s for s in session_rows if service in s["services"].split(",")]
    for b in booking_rows:
        b["start"], b["booked_at"] = from_db(b["start"]), from_db(b["booked_at"])
    for v in visit_rows:
        v.update(called=v["first_called_at"] is not None, served=v["served_at"] is not None)
    places_by_day = {}
    day = start
    while day <= end:
        places_by_day[day.isoformat()] = places_offered(branches, day, service)
        day += timedelta(days=1)

    def targets(visit):
        return wait_targets(branches.get(visit["branch"]), visit["service"])

    def figures_of(first: date, last: date) -> dict:
        inside = lambda row: first.isoformat() <= row["day"] <= last.isoformat()  # noqa: E731
        return figures.figures(
            [b for b in booking_rows if inside(b)], [v for v in visit_rows if inside(v)],
            sum(n for d, n in places_by_day.items() if first.isoformat() <= d <= last.isoformat()),
            _counter_hours([s for s in session_rows if inside(s)], now), targets)

    return {"scope": scope, "service": service, "from": start.isoformat(), "to": end.isoformat(), "by": by,
            "periods": [{"period": name, "from": first.isoformat(), "to": last.isoformat(),
                         "figures": figures_of(first, last)} for name, first, last in periods(start, end, by)],
            "total": {"figures": figures_of(start, end)}}

