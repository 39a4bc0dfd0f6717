"""From a booking to the confirmation in the person's inbox, through the public API, in both run modes; and
the embedded default's file outbox."""
import time
from email import message_from_bytes, policy
from datetime import datetime

import pytest
import requests
from icalendar import Calendar

from shared.clock import UTC
from tests.e2e.conftest import Suite
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.e2e

START = "2026-12-08T09:40:00+03:00"  # Tuesday; the suite's clock starts Sunday 09:00


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def mailed(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"mail-{request.param}")
    smtp = SmtpServer(workdir)
    suite = Suite(request.param, workdir)
    suite.env["SMTP_URL"] = smtp.url
    try:
        suite.start()
        yield suite, smtp
    finally:
        suite.stop()
        suite.cleanup()
        smtp.stop()


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)
    return value


def book(suite, cpr: str, language: str) -> str:
    response = requests.post(f"{suite.api}/bookings", timeout=10, json={
        "cpr": cpr, "branch": "npra-isa-town", "service": "passport-renewal", "start": START,
        "name": "مريم أحمد" if language == "ar" else "Maryam Ahmed", "language": language,
        "email": f"{cpr}@example.com"})
    assert response.status_code == 201, response.text
    return response.json()["reference"]


def calendar_of(message) -> Calendar:
    part = next(p for p in message.iter_attachments() if p.get_content_type() == "text/calendar")
    content = part.get_content()
    return Calendar.from_ical(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize("language", ["ar", "en"])
def test_a_booking_puts_one_confirmation_with_its_calendar_file_in_the_inbox(mailed, language):
    suite, smtp = mailed
    cpr = "850612345" if language == "ar" else "850612346"
    reference = book(suite, cpr, language)
    mine = wait_for(lambda: [m for m in smtp.messages() if m["To"] == f"{cpr}@example.com"])
    time.sleep(1.5)  # a duplicate, were there one, would arrive right behind
    mine = [m for m in smtp.messages() if m["To"] == f"{cpr}@example.com"]
    assert len(mine) == 1 and reference in mine[0]["Subject"] and mine[0]["Content-Language"] == language
    html = mine[0].get_body(("html",)).get_content()
    assert f'lang="{language}"' in html and ('dir="rtl"' in html) == (language == "ar") and "09:40" in html
    event = calendar_of(mine[0]).walk("VEVENT")[0]
    assert event.decoded("dtstart") == datetime(2026, 12, 8, 6, 40, tzinfo=UTC)  # 09:40 in Bahrain, as UTC

    assert requests.post(f"{suite.api}/bookings/{reference}/cancel", json={"cpr": cpr}, timeout=10).status_code == 200
    wait_for(lambda: len([m for m in smtp.messages() if m["To"] == f"{cpr}@example.com"]) == 2)
    time.sleep(1.5)
    mine = [m for m in smtp.messages() if m["To"] == f"{cpr}@example.com"]
    assert len(mine) == 2
    cancellation = next(m for m in mine if b"METHOD:CANCEL" in calendar_of(m).to_ical())
    assert reference in cancellation["Subject"]
    status = requests.get(f"{suite.api}/notifications", params={"reference": reference}, headers={"X-CPR": cpr},
                          timeout=10)
    assert sorted((m["kind"], m["status"]) for m in status.json()["messages"]) == [
        ("cancellation", "sent"), ("confirmation", "sent"), ("reminder", "withdrawn")]


def test_the_embedded_default_writes_every_message_to_the_file_outbox(tmp_path):
    suite = Suite("embedded", tmp_path)
    try:
        suite.start()
        reference = book(suite, "870112345", "ar")
        outbox = tmp_path / "var" / "outbox" / "email"
        emails = wait_for(lambda: list(outbox.glob("*.eml")))
        assert len(emails) == 1
        # parsed, as a mail program reads it: an Arabic subject is encoded words end to end (they keep its spaces)
        email = message_from_bytes(emails[0].read_bytes(), policy=policy.default)
        assert reference in email["Subject"] and email["Date"]
    finally:
        suite.stop()
