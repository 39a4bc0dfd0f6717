"""Rebuild the waiting room from the queue's own log into fresh tables and compare it with the live one."""
import tempfile
import time
from datetime import date, datetime

import sqlalchemy as sa

from shared.store import Database, make_engine
from services.queue import projection, view


def rebuild_and_compare(live: Database, now: datetime, progress=None) -> dict:
    """Replays every queue event into an empty scratch database (the catalogue is copied from the live one,
    as names and policies come from availability's log), then compares the waiting-room view and averages of
    every branch day at the same instant. Returns events, seconds, days and the days that differ."""
    with tempfile.TemporaryDirectory(prefix="mawaeed-replay-") as scratch:
        fresh = Database(make_engine(f"sqlite:///{scratch}/queue.sqlite3"), projection.metadata)
        fresh.create_tables()
        try:
            return _rebuild(live, fresh, now, progress)
        finally:
            fresh.dispose()


def _rebuild(live: Database, fresh: Database, now: datetime, progress) -> dict:
    with live.transaction() as source, fresh.transaction() as target:
        for name in ("directorates", "branches"):
            rows = [dict(r._mapping) for r in source.execute(sa.select(live.tables[name]))]
            if rows:
                target.execute(fresh.tables[name].insert(), rows)
    started, count, after, days = time.perf_counter(), 0, 0, set()
    while True:
        with live.transaction() as source:
            page = [e for e in source.store.read_all(after=after, limit=5000)]
        if not page:
            break
        with fresh.transaction() as target:
            for event in page:
                if event.source == "queue":
                    projection.project(target, event)
                    days.add((event.payload["branch"], event.payload["day"]))
                    count += 1
        after = page[-1].position
        if progress:
            progress(count)
    seconds = time.perf_counter() - started
    differences = {}
    for branch_id, day in sorted(days):
        views = []
        for db in (live, fresh):
            with db.transaction() as uow:
                branch = projection.catalogue.load_branch(uow, branch_id)
                views.append(view.waiting_room(projection.load_day(uow, branch_id, date.fromisoformat(day)),
                                               branch, now))
        if views[0] != views[1]:
            differences[(branch_id, day)] = views
    return {"events": count, "seconds": seconds, "days": len(days), "differences": differences}
