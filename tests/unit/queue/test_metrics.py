"""The waiting rooms' live figures (services/queue/metrics.py) on a queue database built here: what a scrape
shows per branch and service after check-ins, calls and visits served, and the wait targets."""
import pytest

from prometheus_client import CollectorRegistry, generate_latest

from services.queue import commands
from services.queue.metrics import QueueCollector, figures, target_seconds
from tests.unit.queue.conftest import (BRANCH, KEY, MONDAY, PASSPORT, PUBLIC_URL, RESIDENCE, arrive, at, book, tick,
                                       walk_in)


def by_labels(found: dict, name: str) -> dict:
    return dict(found[name])


def test_a_quiet_morning_has_every_branch_and_service_at_zero(db):
    found = figures(db, at(8))
    assert by_labels(found, "mawaeed_queue_waiting")[(BRANCH, PASSPORT)] == 0
    assert by_labels(found, "mawaeed_queue_counters_open") == {(BRANCH,): 0}
    assert by_labels(found, "mawaeed_queue_open") == {(BRANCH,): 1}      # office hours 07:00-14:00
    assert by_labels(found, "mawaeed_queue_branch_info") == {(BRANCH, "npra"): 1}
    assert found["mawaeed_queue_service_level_today"] == []              # nobody served yet: no share to show
    assert figures(db, at(15))["mawaeed_queue_open"] == [((BRANCH,), 0)]


def test_waiting_longest_wait_counters_served_and_service_level(db):
    book(db, "ACDE-FGHJ", "900112345", PASSPORT, 9)
    arrive(db, "ACDE-FGHJ", "900112345", tick(8, 55))                    # on time: held to 10 minutes
    late = walk_in(db, PASSPORT, "900212345", tick(9))                   # a walk-in: held to 30 minutes
    walk_in(db, PASSPORT, "900312345", tick(9, 5))
    walk_in(db, RESIDENCE, "900412345", tick(9, 6))
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9, 10))
    first = commands.call_next(db, BRANCH, "1", tick(9, 15))["ticket"]  # the appointment, 20 minutes after
    commands.served(db, first["id"], tick(9, 20), KEY, PUBLIC_URL)
    called = commands.call_next(db, BRANCH, "1", tick(9, 25))["ticket"]  # the walk-in, 25 minutes after
    assert called["id"] == late["id"]
    commands.served(db, called["id"], tick(9, 30), KEY, PUBLIC_URL)

    found = figures(db, at(9, 40))
    assert by_labels(found, "mawaeed_queue_waiting")[(BRANCH, PASSPORT)] == 1
    assert by_labels(found, "mawaeed_queue_waiting")[(BRANCH, RESIDENCE)] == 1
    assert by_labels(found, "mawaeed_queue_longest_wait_seconds")[(BRANCH, PASSPORT)] == 35 * 60
    assert by_labels(found, "mawaeed_queue_longest_wait_seconds")[(BRANCH, RESIDENCE)] == 34 * 60
    assert by_labels(found, "mawaeed_queue_counters_open") == {(BRANCH,): 1}
    assert by_labels(found, "mawaeed_queue_served_today")[(BRANCH, PASSPORT)] == 2
    assert by_labels(found, "mawaeed_queue_served_today")[(BRANCH, RESIDENCE)] == 0
    # the appointment waited 20 minutes (over its 10), the walk-in 25 (within its 30)
    assert found["mawaeed_queue_service_level_today"] == [((BRANCH, PASSPORT), 0.5)]
    # the next day starts again from nothing
    assert by_labels(figures(db, at(9, day=MONDAY.replace(day=8))), "mawaeed_queue_waiting")[(BRANCH, PASSPORT)] == 0


def test_the_day_closed_leaves_nobody_waiting_and_the_branch_shut(db):
    walk_in(db, PASSPORT, "900212345", tick(9))
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    commands.close_day(db, BRANCH, MONDAY)
    found = figures(db, at(9, 30))
    assert by_labels(found, "mawaeed_queue_waiting")[(BRANCH, PASSPORT)] == 0
    assert by_labels(found, "mawaeed_queue_counters_open") == {(BRANCH,): 0}
    assert by_labels(found, "mawaeed_queue_open") == {(BRANCH,): 0}


def test_targets_come_from_the_queue_policy_when_set(branch):
    assert (target_seconds(branch, PASSPORT, "appointment"), target_seconds(branch, PASSPORT, "walk_in")) == (600, 1800)
    policy = {"queue": {"targets": {"appointment_wait_minutes": 15,
                                    "services": {RESIDENCE: {"walk_in_wait_minutes": 45}}}}}
    assert target_seconds(policy, PASSPORT, "appointment") == 900
    assert target_seconds(policy, PASSPORT, "walk_in") == 1800
    assert target_seconds(policy, RESIDENCE, "walk_in") == 2700


def test_the_collector_serves_the_figures_and_reads_once_within_its_cache(db):
    collector = QueueCollector(db, now=lambda: at(9, 40), cache_seconds=3600)
    registry = CollectorRegistry()
    registry.register(collector)
    assert f'mawaeed_queue_waiting{{branch="{BRANCH}",service="{PASSPORT}"}} 0.0' in generate_latest(registry).decode()
    walk_in(db, PASSPORT, "900212345", tick(9))
    assert f'mawaeed_queue_waiting{{branch="{BRANCH}",service="{PASSPORT}"}} 0.0' in generate_latest(registry).decode()
    collector.cache_seconds = 0
    text = generate_latest(registry).decode()
    assert f'mawaeed_queue_waiting{{branch="{BRANCH}",service="{PASSPORT}"}} 1.0' in text
    assert f'mawaeed_queue_longest_wait_seconds{{branch="{BRANCH}",service="{PASSPORT}"}} 2400.0' in text


def test_without_a_database_the_collector_shows_nothing():
    registry = CollectorRegistry()
    registry.register(QueueCollector())
    assert "mawaeed_queue_waiting{" not in generate_latest(registry).decode()
