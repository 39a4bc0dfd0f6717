"""The queue service on real RabbitMQ and PostgreSQL: it learns bookings from booking's events, and two
counters calling at the same instant never get the same ticket."""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import jwt
import pytest
import requests
import yaml

from shared.clock import UTC, clock
from shared.dependencies import open_database
from services.availability import catalogue_file
from services.availability.service import AvailabilityService
from services.booking.service import BookingService
from services.queue import projection as queue_tables
from services.queue.service import QueueService

from tests.integration.conftest import wait_until
from tests.support.suite import signed_in

pytestmark = pytest.mark.integration

BRANCH = "npra-isa-town"
MONDAY_NINE = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # 09:00 in Bahrain


@pytest.fixture
def busy_catalogue(tmp_path, config):
    """The seed catalogue with room for many walk-ins, as a platform team would configure a busy day."""
    catalogue = catalogue_file.read()
    catalogue["queue"]["walk_ins_per_service"] = 500
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
    config["MAWAEED_CATALOGUE"] = str(path)
    return config


def queue_knows_branch(config) -> bool:
    """The queue has applied every catalogue event availability recorded: the branch, and its services, policy
    and hours, which arrive as events after it (answering for the branch alone is not enough)."""
    head = requests.get(f"{config['base_url']}/api/v1/events", params={"service": "availability", "limit": 1},
                        headers=signed_in(config, "analyst"),
                        timeout=5).json().get("head")
    db = open_database(config, "queue", queue_tables.metadata)
    try:
        return bool(head) and db.last_processed_position(queue_tables.CATALOGUE_CONSUMER) == head
    finally:
        db.dispose()


def test_a_booking_reaches_the_queue_and_checks_in(config, runner_factory):
    runner_factory(config, AvailabilityService, BookingService, QueueService).start()
    wait_until(lambda: queue_knows_branch(config))
    booked = wait_until(lambda: requests.post(f"{config['base_url']}/api/v1/bookings", timeout=5, json={
        "cpr": "900112345", "branch": BRANCH, "service": "passport-renewal", "start": "2026-12-07T07:00:00+03:00",
        "name": "Maryam", "language": "ar"}).json().get("reference"))
    clock.travel_to(datetime(2026, 12, 7, 3, 55, tzinfo=UTC))  # 06:55 on the day: inside the check-in window

    def check_in():
        response = requests.post(f"{config['base_url']}/api/v1/branches/{BRANCH}/check-ins", timeout=5,
                                 headers=signed_in(config, "kiosk", branches=[BRANCH]),
                                 json={"reference": booked.lower().replace("-", ""), "cpr": "900112345"})
        return response if response.status_code != 404 else None  # the booking is still on its way

    response = wait_until(check_in)
    assert response.status_code == 201, response.text
    assert response.json()["ticket"]["number"] == "P-001" and response.json()["ticket"]["kind"] == "appointment"


def test_two_counters_calling_at_once_never_get_the_same_ticket(busy_catalogue, runner_factory):
    config = busy_catalogue
    clock.travel_to(MONDAY_NINE)
    runner_factory(config, AvailabilityService, QueueService).start()
    base = f"{config['base_url']}/api/v1/branches/{BRANCH}"
    clerk = signed_in(config, "clerk", branches=[BRANCH])
    wait_until(lambda: queue_knows_branch(config))
    services = ("passport-renewal", "residence-permit")
    for counter in ("1", "2"):
        assert requests.post(f"{base}/counters/{counter}/open", json={"services": list(services)}, headers=clerk,
                             timeout=5).status_code == 200
    with ThreadPoolExecutor(max_workers=20) as pool:
        created = list(pool.map(lambda n: requests.post(f"{base}/check-ins", timeout=30, headers=clerk, json={
            "walk_in": True, "cpr": f"9001{n:05d}", "service": services[n % 2]}), range(400)))
    assert [r.status_code for r in created] == [201] * 400

    called = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _round in range(200):  # both counters call at the same instant, then both serve
            answers = list(pool.map(lambda c: requests.post(f"{base}/counters/{c}/call-next", headers=clerk,
                                                            timeout=30), ("1", "2")))
            assert [a.status_code for a in answers] == [200, 200]
            tickets = [a.json()["ticket"]["id"] for a in answers]
            assert tickets[0] != tickets[1]
            called += tickets
            for ticket in tickets:
                assert requests.post(f"{config['base_url']}/api/v1/tickets/{ticket}/served", headers=clerk,
                                     timeout=30).status_code == 200
    assert sorted(called) == sorted(r.json()["ticket"]["id"] for r in created)  # every ticket called once
    assert requests.post(f"{base}/counters/1/call-next", headers=clerk, timeout=5).status_code == 204

    db = open_database(config, "queue", queue_tables.metadata)
    calls = [e.payload["ticket_id"] for e in called_events(db)]
    assert len(calls) == len(set(calls)) == 400
    assert all(e.actor["subject"] == clerk_subject(clerk) and e.actor["role"] == "clerk" for e in called_events(db))
    room = requests.get(f"{base}/queue", headers=clerk, timeout=5).json()
    assert room["averages"]["served"] == 400 and room["now_serving"] == []


def called_events(db):
    with db.transaction() as uow:
        return [e for e in uow.store.read_all(limit=100_000) if e.type == "queue.TicketCalled"]


def clerk_subject(headers: dict) -> str:
    return jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})["sub"]
