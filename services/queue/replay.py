"""Rebuilding the waiting room from the queue's own log into fresh tables: to compare it with the live one
(`mawaeed replay queue`), or to see it as it was at any past instant (`mawaeed at queue`)."""
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime

import sqlalchemy as sa

from shared import catalogue
from shared.clock import clock
from shared.projection import Logs, Replayed, latest, pages, read_log, rebuild_and_compare
from shared.eventstore import Database, make_engine
from services.queue import projection, view
from shared.schedule import local_day


@contextmanager
def scratch(live: Database):
    """An empty queue database beside the live one, holding a copy of its catalogue (names and policies come
    from availability's log, which the queue's log does not repeat)."""
    with tempfile.TemporaryDirectory(prefix="mawaeed-replay-") as directory:
        fresh = Database(make_engine(f"sqlite:///{directory}/queue.sqlite3"), projection.metadata)
        fresh.create_tables()
        try:
            with live.transaction() as source, fresh.transaction() as target:
                for name in ("directorates", "branches"):
                    rows = [dict(r._mapping) for r in source.execute(sa.select(live.tables[name]))]
                    if rows:
                        target.execute(fresh.tables[name].insert(), rows)
            yield fresh
        finally:
            fresh.dispose()


def replay_into(live: Database, fresh: Database, keep=lambda event: True, progress=None) -> tuple[int, set]:
    """Apply the queue's events that `keep` accepts, in log order; returns (events applied, branch days)."""
    count, days = 0, set()
    for page in pages(read_log(live)):
        with fresh.transaction() as target:
            for event in page:
                if event.source == "queue" and keep(event):
                    projection.project(target, latest(event))
                    days.add((event.payload["branch"], event.payload["day"]))
                    count += 1
        if progress:
            progress(page[-1].position)
    return count, days


def _view(db: Database, branch_id: str, day: str, now: datetime) -> dict:
    with db.transaction() as uow:
        return view.waiting_room(projection.load_day(uow, branch_id, date.fromisoformat(day)),
                                 catalogue.load_branch(uow, branch_id), now)


def replay(db: Database, logs: Logs, progress=None) -> list[Replayed]:
    """The waiting room of every branch day, from the queue's own log; the appointments, from booking's log
    (who is due) and the queue's (who never came)."""
    def appointment_events():
        yield from logs.of("booking")
        yield from logs.own(types=["queue.AppointmentMissed"])

    def apply(uow, event):
        (projection.apply_booking_event if event.source == "booking" else projection.project)(uow, event)

    return [compare_waiting_rooms(db, clock.now(), progress),
            rebuild_and_compare(db, appointment_events(), apply, ["appointments"], {"appointments": {"subject"}})]


def compare_waiting_rooms(live: Database, now: datetime, progress=None) -> Replayed:
    """Replays every queue event into a scratch database, then compares the waiting-room view and averages of
    every branch day at the same instant."""
    with scratch(live) as fresh:
        started = time.perf_counter()
        count, days = replay_into(live, fresh, progress=progress)
        seconds = time.perf_counter() - started
        differences = {}
        for branch_id, day in sorted(days):
            views = [_view(db, branch_id, day, now) for db in (live, fresh)]
            if views[0] != views[1]:
                differences[f"{branch_id} {day}"] = ([views[0]], [views[1]])
    return Replayed("waiting rooms", count, seconds, differences, note=f"of {len(days)} branch days")


def waiting_room_at(live: Database, branch_id: str, instant: datetime) -> dict:
    """The branch's waiting room as it stood at `instant` (its day's events up to then, replayed)."""
    day = local_day(instant).isoformat()
    with scratch(live) as fresh:
        replay_into(live, fresh, lambda e: e.occurred_at <= instant and e.payload.get("branch") == branch_id
                    and e.payload.get("day") == day)
        return _view(fresh, branch_id, day, instant)
