"""/metrics of the running suite, in both modes, shows the waiting rooms live: after a walk-in checks in at a
branch, the queue's figures for that branch and service, alongside the platform's (outbox depth, each
subscription's lag, notification failures at zero). Embedded: one process serves everything; distributed: the
queue's own process serves its figures."""
import re
import uuid

import pytest
import requests

from tests.support.suite import Suite, running

pytestmark = pytest.mark.integration

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"
MONDAY_MORNING = "2026-12-07T09:00:00+03:00"


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def suite(request, tmp_path_factory):
    with running(Suite(request.param, tmp_path_factory.mktemp(f"metrics-{request.param}"),
                       now=MONDAY_MORNING)) as started:
        yield started


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one series in Prometheus text, None when it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}\{{([^}}]*)\}} (\S+)", line)
        if found and ",".join(sorted(found.group(1).split(","))) == wanted:
            return float(found.group(2))
    return None


def test_a_check_in_shows_on_the_queue_metrics(suite):
    queue_url = suite.env.get("QUEUE_URL", suite.base_url)
    clerk = suite.as_("clerk", branches=[BRANCH])
    answer = requests.post(f"{suite.api}/branches/{BRANCH}/check-ins", headers=clerk, timeout=10,
                           json={"walk_in": True, "cpr": f"9001{uuid.uuid4().int % 100000:05d}", "service": SERVICE})
    assert answer.status_code == 201, answer.text

    text = requests.get(f"{queue_url}/metrics", timeout=10).text
    assert sample(text, "mawaeed_queue_waiting", branch=BRANCH, service=SERVICE) == 1
    assert sample(text, "mawaeed_queue_longest_wait_seconds", branch=BRANCH, service=SERVICE) >= 0
    assert sample(text, "mawaeed_queue_counters_open", branch=BRANCH) == 0
    assert sample(text, "mawaeed_queue_open", branch=BRANCH) == 1
    assert sample(text, "mawaeed_queue_served_today", branch=BRANCH, service=SERVICE) == 0
    assert sample(text, "mawaeed_queue_waiting", branch="npra-security-complex", service=SERVICE) == 0
    assert sample(text, "mawaeed_outbox_pending", service="queue") is not None
    assert sample(text, "mawaeed_consumer_lag_events", consumer="queue.bookings") is not None
    assert sample(text, "mawaeed_consumer_lag_seconds", consumer="queue.catalogue") is not None


def test_notification_failures_start_at_zero_per_channel(suite):
    url = suite.env.get("NOTIFICATIONS_URL", suite.base_url)
    text = requests.get(f"{url}/metrics", timeout=10).text
    assert sample(text, "mawaeed_notifications_failed_total", channel="email") == 0
    assert sample(text, "mawaeed_notifications_failed_total", channel="sms") == 0
