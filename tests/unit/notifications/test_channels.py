"""Notification emails as services/notifications/channels.py builds them (headers, Date, the .ics part, the file
outbox), and the calendar file's SEQUENCE and ORGANIZER as services/notifications/commands.py sets them."""
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime

from icalendar import Calendar

from shared import catalogue
from shared.clock import LOCAL, UTC, clock
from shared.dependencies import service_metadata
from shared.events import NewEvent
from shared.projection import apply_once
from services.availability import catalogue_file
from services.notifications import commands, messages, plan, projection
from services.notifications.channels import FileOutbox, as_email
from services.notifications.messages import Message
from tests.support.store import sequenced

LONG_ARABIC = "تأكيد موعدك في فرع مجمع الدانة التجاري للخدمات الحكومية - تجديد جواز السفر (K7MX-9QRD)"
SENT_AT = datetime(2026, 12, 7, 4, 0, 5, tzinfo=UTC)  # 07:00:05 in Bahrain
BRANCH = {"name_en": "Isa Town branch", "name_ar": "فرع مدينة عيسى",
          "services": {"passport-renewal": {"name_en": "Passport renewal", "name_ar": "تجديد جواز السفر",
                                            "duration_minutes": 20}}}
START = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)


def message(subject=LONG_ARABIC, cancelled=False, date=SENT_AT) -> Message:
    ics = messages.calendar_file("K7MX-9QRD", BRANCH, "passport-renewal", START, "ar", SENT_AT, 1, cancelled)
    return Message("confirmation", "email", "ar", "f@example.com", sms="", subject=subject, text="نص",
                   html="<p>نص</p>", message_id="<abc@mawaeed>",
                   attachments=[("appointment.ics", "text/calendar", ics)], date=date)


def received(built) -> object:
    return message_from_bytes(built.as_bytes(), policy=policy.default)


def test_a_long_arabic_subject_keeps_every_space_where_it_is_folded():
    wire = as_email(message(), "no-reply@example.com").as_bytes()
    assert max(len(line) for line in wire.split(b"\r\n")) <= 78  # folded, as a long subject must be
    assert received(as_email(message(), "no-reply@example.com"))["Subject"] == LONG_ARABIC
    assert received(as_email(message("Your appointment"), "a@example.com"))["Subject"] == "Your appointment"


def test_an_email_has_a_date_from_the_suites_clock_in_bahrain_time():
    date = received(as_email(message(), "no-reply@example.com"))["Date"]
    assert parsedate_to_datetime(str(date)) == SENT_AT and str(date).endswith("+0300")


def test_the_calendar_part_says_its_method_and_charset_as_the_file_does():
    for cancelled, method in ((False, "PUBLISH"), (True, "CANCEL")):
        [ics] = [p for p in received(as_email(message(cancelled=cancelled), "a@example.com")).iter_attachments()
                 if p.get_content_type() == "text/calendar"]
        assert (ics.get_param("method"), ics.get_content_charset()) == (method, "utf-8")
        assert str(Calendar.from_ical(ics.get_content().encode())["method"]) == method


def test_the_calendar_file_names_its_organizer_in_the_persons_language():
    for language, name in (("ar", "مواعيد"), ("en", "Mawaeed")):
        ics = messages.calendar_file("K7MX-9QRD", BRANCH, "passport-renewal", START, language, SENT_AT,
                                     organizer="appointments@example.bh")
        [event] = Calendar.from_ical(ics).walk("VEVENT")
        assert str(event["organizer"]) == "mailto:appointments@example.bh"
        assert event["organizer"].params["CN"] == name


def test_the_file_outbox_names_files_by_the_suites_clock(tmp_path):
    outbox = FileOutbox(tmp_path, "email", "no-reply@example.com")
    outbox.send(message())
    [written] = (tmp_path / "email").iterdir()
    assert written.name.startswith("20261207T070005-confirmation-")  # SENT_AT in Bahrain, not the machine's time
    assert message_from_bytes(written.read_bytes(), policy=policy.default)["Subject"] == LONG_ARABIC


class Kept:
    sender = "مواعيد <appointments@example.bh>"

    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message)


def test_each_change_of_a_booking_sends_a_higher_sequence_even_within_the_same_minute(open_db):
    db = open_db("notifications", projection.metadata)
    now, settings = clock.now(), plan.Settings()
    with db.transaction() as uow:
        for change in catalogue_file.changes(catalogue_file.read(), {}, {}):
            if change.stream_id in ("directorate-npra", "branch-npra-isa-town"):
                catalogue.project(uow, change.event)
    booking = open_db("booking", service_metadata())
    start = now.replace(microsecond=0) + timedelta(days=3)
    common = {"reference": "SEQ1-0001", "branch": "npra-isa-town", "service": "passport-renewal"}

    def happens(type_, **payload):
        with booking.transaction() as uow:
            appended = uow.append("slot", uow.store.stream_version("slot"), [NewEvent(type_, {**common, **payload},
                                                                                      "npra")])
        [event] = sequenced(booking, appended)
        apply_once(db, projection.BOOKINGS_CONSUMER, event,
                   lambda uow, e: commands.on_booking_event(uow, e, now, settings))

    happens("booking.SlotBooked", start=start.isoformat(), end=(start + timedelta(minutes=20)).isoformat(),
            channel="web", person={"cpr": "900112345", "name": "Fatima", "mobile": None,
                                   "email": "f@example.com", "language": "en"})
    later = start + timedelta(days=1)
    happens("booking.BookingRescheduled", previous_start=start.isoformat(), start=later.isoformat(),
            end=(later + timedelta(minutes=20)).isoformat())
    happens("booking.BookingCancelled", start=later.isoformat(), cancelled_by="person")
    kept = Kept()
    commands.dispatch_due(db, commands.Outbound({"email": kept, "sms": kept}, settings, "https://x.example", "k"),
                          lambda: now, concurrency=1)
    calendars = {}
    for sent in kept.sent:
        [(_, _, ics)] = sent.attachments
        [event] = Calendar.from_ical(ics).walk("VEVENT")
        calendars[sent.kind] = (event["sequence"], str(event["organizer"]))
        assert sent.date == now  # the email's Date is when it was sent, by the suite's clock
    assert calendars == {"confirmation": (0, "mailto:appointments@example.bh"),
                         "reschedule": (1, "mailto:appointments@example.bh"),
                         "cancellation": (2, "mailto:appointments@example.bh")}


def test_what_was_sent_about_a_booking_reads_in_bahrain_time(open_db):
    db = open_db("notifications", projection.metadata)
    due = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    with db.transaction() as uow:
        [event] = uow.append("notification-k", 0, [NewEvent("notifications.NotificationScheduled", {
            "key": "k", "kind": "reminder", "channel": "sms", "due_at": due.isoformat(), "reference": "SEQ1-0002",
            "ticket_id": None, "source_event_id": "e", "appointment_start": None, "details": {}}, "npra")])
        projection.project(uow, event)
        [shown] = projection.messages_about(uow, "SEQ1-0002")
    assert shown["due_at"] == "2026-12-07T07:00:00+03:00"
    assert datetime.fromisoformat(shown["due_at"]).astimezone(LOCAL) == due
