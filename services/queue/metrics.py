"""The waiting rooms' live figures on /metrics, per branch and service: computed when scraped, from today's
tickets and counters in the queue's tables (never counted event by event, so a replay, a restart or a second
replica cannot make them drift), and kept a few seconds so scrapes close together cost one read.

    mawaeed_queue_waiting{branch,service}              people waiting now
    mawaeed_queue_longest_wait_seconds{branch,service} how long the one waiting longest has waited (0: nobody)
    mawaeed_queue_counters_open{branch}                counters open now
    mawaeed_queue_open{branch}                         1 within the branch's opening hours (its day not closed)
    mawaeed_queue_branch_info{branch,directorate}      1: which directorate a branch is in (to group by)
    mawaeed_queue_served_today{branch,service}         visits served today
    mawaeed_queue_service_level_today{branch,service}  share of today's served who waited no longer than the
                                                       target (no series before the first one is served)

Every branch and service of the catalogue has its series (at 0 on a quiet day): the labels are bounded by the
catalogue, never by people or tickets. Today is the centres' local date.
"""
import time
from collections import defaultdict

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared import catalogue
from shared.clock import clock, from_db
from shared.schedule import is_open, local_day, wait_targets  # the wait targets: as /api/v1/insights and the report
from services.queue.projection import counters, days, tickets

CACHE_SECONDS = 5.0

FAMILIES = {  # name -> (help, labels)
    "mawaeed_queue_waiting": ("People waiting now", ("branch", "service")),
    "mawaeed_queue_longest_wait_seconds": ("How long the person waiting longest has waited", ("branch", "service")),
    "mawaeed_queue_counters_open": ("Counters open now", ("branch",)),
    "mawaeed_queue_open": ("1 within the branch's opening hours, its day not closed", ("branch",)),
    "mawaeed_queue_branch_info": ("1 for each branch, naming its directorate", ("branch", "directorate")),
    "mawaeed_queue_served_today": ("Visits served today", ("branch", "service")),
    "mawaeed_queue_service_level_today": ("Share of today's served who waited no longer than the target",
                                          ("branch", "service")),
}


def target_seconds(branch: dict, service: str, kind: str) -> float:
    """How long a visit of `kind` (appointment, walk_in) may wait for `service` at `branch` and count as served
    within target: the branch's queue policy `targets` where set, else 10 and 30 minutes (shared.schedule.wait_targets,
    as /api/v1/insights)."""
    return 60.0 * wait_targets(branch, service)[kind]


def figures(db, now) -> dict[str, list[tuple[tuple[str, ...], float]]]:
    """name -> [(label values, value)] for every branch of the catalogue, today as `now` has it."""
    today = local_day(now).isoformat()
    with db.transaction() as uow:
        _, branches = catalogue.load_catalogue(uow)
        # only what the figures need: no personal column is read
        found = uow.execute(sa.select(tickets.c.branch, tickets.c.service, tickets.c.kind,
                                      tickets.c.status, tickets.c.waiting_since, tickets.c.waited_seconds)
                            .where(tickets.c.day == today, tickets.c.status.in_(("waiting", "served")))).all()
        open_counters = dict(uow.execute(sa.select(counters.c.branch, sa.func.count()).where(
            counters.c.day == today, counters.c.open).group_by(counters.c.branch)).all())
        closed = {row.branch for row in uow.execute(sa.select(days.c.branch).where(days.c.day == today, days.c.closed))}
    waiting, longest, served, on_target = (defaultdict(float) for _ in range(4))
    for t in found:
        key = (t.branch, t.service)
        if t.status == "waiting":
            since = from_db(t.waiting_since)
            waited = t.waited_seconds + (max(0.0, (now - since).total_seconds()) if since else 0)
            waiting[key] += 1
            longest[key] = max(longest[key], waited)
        elif t.branch in branches:
            served[key] += 1
            on_target[key] += t.waited_seconds <= target_seconds(branches[t.branch], t.service, t.kind)
    out = {name: [] for name in FAMILIES}
    for branch_id, branch in sorted(branches.items()):
        out["mawaeed_queue_counters_open"].append(((branch_id,), float(open_counters.get(branch_id, 0))))
        out["mawaeed_queue_open"].append(((branch_id,), float(branch_id not in closed and is_open(branch, now))))
        out["mawaeed_queue_branch_info"].append(((branch_id, branch.get("directorate") or ""), 1.0))
        for service in sorted(branch.get("services", {})):
            key = (branch_id, service)
            out["mawaeed_queue_waiting"].append((key, waiting[key]))
            out["mawaeed_queue_longest_wait_seconds"].append((key, longest[key]))
            out["mawaeed_queue_served_today"].append((key, served[key]))
            if served[key]:
                out["mawaeed_queue_service_level_today"].append((key, on_target[key] / served[key]))
    return out


class QueueCollector(Collector):
    """A prometheus_client collector over one queue database; `db` is set while a queue service runs here."""

    def __init__(self, db=None, now=clock.now, cache_seconds: float = CACHE_SECONDS):
        self.db, self.now, self.cache_seconds = db, now, cache_seconds
        self._kept = (None, 0.0, None)  # (db, monotonic time, figures)

    def describe(self):  # the names, without a read at registration
        return [GaugeMetricFamily(name, text, labels=labels) for name, (text, labels) in FAMILIES.items()]

    def collect(self):
        db = self.db
        if db is None:
            return
        # no lock: two scrapes at the same instant at worst both read (a thread lock would block green threads)
        kept_db, read_at, values = self._kept
        if kept_db is not db or time.monotonic() - read_at > self.cache_seconds:
            values = figures(db, self.now())
            self._kept = (db, time.monotonic(), values)
        for name, (text, labels) in FAMILIES.items():
            family = GaugeMetricFamily(name, text, labels=labels)
            for label_values, value in values[name]:
                family.add_metric(label_values, value)
            yield family


COLLECTOR = QueueCollector()
_registered = False


class LiveMetrics(DependencyProvider):
    """Puts this queue service's database behind the collector on /metrics while the service runs (one process
    registers the collector once; the embedded suite's queue is its only source)."""

    def start(self):
        global _registered
        storage = next(d for d in self.container.dependencies if hasattr(d, "db") and hasattr(d, "relay"))
        COLLECTOR.db = storage.db
        if not _registered:
            REGISTRY.register(COLLECTOR)
            _registered = True

    def stop(self):
        storage = next(d for d in self.container.dependencies if hasattr(d, "db") and hasattr(d, "relay"))
        if COLLECTOR.db is storage.db:
            COLLECTOR.db = None

    kill = stop
