"""Notifications on real RabbitMQ and PostgreSQL, sending real email to a real SMTP server (aiosmtpd, over a
socket) and real HTTP requests to a local SMS gateway stand-in."""
import time
from datetime import datetime, timedelta

import pytest
import requests
from icalendar import Calendar
from kombu import Connection, Producer
from prometheus_client import REGISTRY

from shared import topology
from shared.clock import UTC, clock
from shared.dependencies import open_database
from services.availability.service import AvailabilityService
from services.booking import projection as booking_tables
from services.booking.service import BookingService
from services.notifications import projection as notification_tables
from services.notifications.service import NotificationsService

from tests.integration.conftest import wait_until
from tests.support.sms import SmsGateway
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration

START = "2026-12-08T07:00:00+03:00"  # Tuesday; the suite's clock is Sunday 09:00


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def sms():
    gateway = SmsGateway()
    yield gateway
    gateway.stop()


@pytest.fixture
def notify_config(config, smtp, sms):
    config.update(SMTP_URL=smtp.url, SMS_GATEWAY_URL=sms.url, SMS_GATEWAY_KEY=sms.key, NOTIFY_RETRY_SECONDS=0.2,
                  NOTIFY_MAX_ATTEMPTS=3)
    return config


def book(config, cpr="900112345", language="ar", start=START):
    response = wait_until(lambda: _book(config, cpr, language, start))
    assert response.status_code == 201, response.text
    return response.json()["reference"]


def _book(config, cpr, language, start):
    response = requests.post(f"{config['base_url']}/api/v1/bookings", timeout=5, json={
        "cpr": cpr, "branch": "npra-isa-town", "service": "passport-renewal", "start": start,
        "name": "فاطمة علي" if language == "ar" else "Fatima Ali", "language": language,
        "email": f"p{cpr}@example.com", "mobile": "+97333001122"})
    return response if response.status_code != 404 else None  # the schedule is still on its way


def log_of(config, type_: str) -> list:
    db = open_database(config, "notifications", notification_tables.metadata)
    with db.transaction() as uow:
        return [e for e in uow.store.read_all(limit=10_000) if e.type == type_]


def test_a_booking_gets_one_confirmation_with_a_calendar_file_and_a_cancellation_one_notice(
        notify_config, runner_factory, smtp, sms):
    config = notify_config
    runner_factory(config, AvailabilityService, BookingService, NotificationsService).start()
    reference = book(config)
    mail = wait_until(lambda: [m for m in smtp.messages() if reference in m["Subject"]])
    assert len(mail) == 1
    confirmation = mail[0]
    assert confirmation["To"] == "p900112345@example.com" and confirmation["Content-Language"] == "ar"
    html = confirmation.get_body(("html",)).get_content()
    assert 'dir="rtl"' in html and reference in html and "07:00" in html
    ics = next(p for p in confirmation.iter_attachments() if p.get_content_type() == "text/calendar")
    event = Calendar.from_ical(ics.get_content() if isinstance(ics.get_content(), bytes)
                               else ics.get_content().encode()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == datetime(2026, 12, 8, 4, 0, tzinfo=UTC)  # 07:00 in Bahrain
    assert str(event["uid"]) == f"{reference}@mawaeed"
    address = "مبنى 123، طريق 613، مجمع 806، مدينة عيسى"   # Isa Town's, from the catalogue's events
    assert address in html and str(event["location"]) == f"فرع مدينة عيسى، {address}"
    wait_until(lambda: len(sms.received) == 1)
    assert reference in sms.received[0]["text"] and sms.received[0]["to"] == "+97333001122"
    assert address in sms.received[0]["text"]

    assert requests.post(f"{config['base_url']}/api/v1/bookings/{reference}/cancel", json={"cpr": "900112345"},
                         timeout=5).status_code == 200
    wait_until(lambda: len(smtp.messages()) == 2)
    cancelled = [m for m in smtp.messages() if m["Message-ID"] != confirmation["Message-ID"]]
    assert len(cancelled) == 1
    calendar = next(p for p in cancelled[0].iter_attachments() if p.get_content_type() == "text/calendar")
    assert b"METHOD:CANCEL" in (calendar.get_content() if isinstance(calendar.get_content(), bytes)
                                else calendar.get_content().encode())
    # sent within a minute of the confirmation, the cancellation still supersedes it: a higher SEQUENCE (RFC 5546)
    sequence = {m["Message-ID"]: Calendar.from_ical(next(
        p for p in m.iter_attachments() if p.get_content_type() == "text/calendar").get_content().encode())
        .walk("VEVENT")[0]["sequence"] for m in (confirmation, cancelled[0])}
    assert sequence[cancelled[0]["Message-ID"]] > sequence[confirmation["Message-ID"]]
    assert confirmation["Date"] and calendar.get_param("method") == "CANCEL"
    sent = log_of(config, "notifications.NotificationSent")
    assert sorted(e.payload["kind"] for e in sent) == ["cancellation", "cancellation", "confirmation", "confirmation"]
    assert all("900112345" not in e.payload["to"] and "*" in e.payload["to"] for e in sent)  # masked


def test_redelivering_every_booking_event_sends_nothing_twice(notify_config, runner_factory, smtp, sms):
    config = notify_config
    runner_factory(config, AvailabilityService, BookingService, NotificationsService).start()
    reference = book(config, language="en")
    wait_until(lambda: len(smtp.messages()) == 1 and len(sms.received) == 1)
    booking_db = open_database(config, "booking", booking_tables.metadata)
    with booking_db.transaction() as uow:
        events = uow.store.read_all()
    before = duplicates("notifications.bookings")
    with Connection(config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        for event in events:
            producer.publish(event.to_dict(), exchange=topology.exchange("booking"), routing_key=event.wire_name,
                             serializer="json", delivery_mode=2)
    wait_until(lambda: duplicates("notifications.bookings") == before + len(events))
    time.sleep(2)  # a second send, were there one, would be due at once: give it time to arrive
    assert (len(smtp.messages()), len(sms.received)) == (1, 1)
    assert reference in smtp.messages()[0]["Subject"]


def duplicates(consumer: str) -> float:
    return REGISTRY.get_sample_value("mawaeed_events_handled_total",
                                     {"consumer": consumer, "outcome": "duplicate"}) or 0


def test_messages_missed_while_down_are_sent_once_and_a_due_reminder_too(notify_config, runner_factory, smtp, sms):
    config = notify_config
    core = runner_factory(config, AvailabilityService, BookingService)
    core.start()
    references = [book(config, cpr=f"90011234{n}") for n in range(2)]  # notifications is not running
    clock.advance(timedelta(hours=23))  # Monday 08:00: the reminders (due Monday 07:00) fell due meanwhile
    runner_factory(config, NotificationsService).start()
    wait_until(lambda: len(smtp.messages()) == 4, timeout=20)
    subjects = sorted(m["Subject"] for m in smtp.messages())
    for reference in references:
        assert sum(reference in s for s in subjects) == 2  # its confirmation and its reminder, once each
    sent = wait_until(lambda: len(log_of(config, "notifications.NotificationSent")) >= 8 and
                      log_of(config, "notifications.NotificationSent"))
    assert sorted(e.payload["kind"] for e in sent) == ["confirmation"] * 4 + ["reminder"] * 4  # email and SMS
    assert len(sms.received) == 4


@pytest.mark.parametrize("server", ["refusing", "down"])
def test_a_refusing_or_absent_mail_server_yields_retries_then_failures_and_booking_goes_on(
        server, tmp_path, config, runner_factory, sms):
    refusing = SmtpServer(tmp_path / "refusing", refuse=True)
    url = refusing.url
    if server == "down":
        refusing.stop()  # nothing listens on that port any more
    try:
        config.update(SMTP_URL=url, SMS_GATEWAY_URL=sms.url, SMS_GATEWAY_KEY=sms.key,
                      NOTIFY_RETRY_SECONDS=0.2, NOTIFY_MAX_ATTEMPTS=3)
        runner_factory(config, AvailabilityService, BookingService, NotificationsService).start()
        first = book(config, cpr="900112345", language="en")
        failed = wait_until(lambda: log_of(config, "notifications.NotificationFailed"), timeout=20)
        assert failed[0].payload["attempts"] == 3
        assert ("550" if server == "refusing" else "Connection") in failed[0].payload["reason"]
        assert first and book(config, cpr="900112346", language="en")  # booking keeps working
        wait_until(lambda: len(sms.received) == 2)  # and the other channel was never held back
    finally:
        if server == "refusing":
            refusing.stop()


def test_a_long_arabic_subject_arrives_with_every_space_and_the_calendar_part_as_sent(smtp):
    from email.parser import BytesParser
    from email import policy
    from email.utils import parsedate_to_datetime
    from services.notifications.channels import SmtpEmail
    from services.notifications.messages import Message, calendar_file
    subject = "تأكيد موعدك في فرع مجمع الدانة التجاري للخدمات الحكومية - تجديد جواز السفر (K7MX-9QRD)"
    branch = {"name_en": "Isa Town branch", "name_ar": "فرع مدينة عيسى", "services": {"passport-renewal": {
        "name_en": "Passport renewal", "name_ar": "تجديد جواز السفر", "duration_minutes": 20}}}
    sent_at = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    ics = calendar_file("K7MX-9QRD", branch, "passport-renewal", sent_at + timedelta(days=1), "ar", sent_at,
                        sequence=1, cancelled=True, organizer="appointments@example.bh")
    SmtpEmail(smtp.url, "مواعيد Mawaeed <appointments@example.bh>").send(Message(
        "cancellation", "email", "ar", "f@example.com", sms="", subject=subject, text="نص", html="<p>نص</p>",
        message_id="<k7mx@mawaeed>", attachments=[("appointment.ics", "text/calendar", ics)], date=sent_at))
    wait_until(lambda: smtp.messages())
    [raw] = [bytes(m) for m in __import__("mailbox").Maildir(smtp.maildir).values()]
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert mail["Subject"] == subject
    assert parsedate_to_datetime(str(mail["Date"])) == sent_at
    [part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert (part.get_param("method"), part.get_content_charset()) == ("CANCEL", "utf-8")
    [event] = Calendar.from_ical(part.get_content().encode()).walk("VEVENT")
    assert (event["sequence"], str(event["organizer"])) == (1, "mailto:appointments@example.bh")
