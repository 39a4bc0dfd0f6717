"""Rendering a message: the person's language picks the template (templates/<kind>.<lang>.j2, which a platform
team may edit); an email confirmation carries the appointment as an .ics calendar file."""
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from icalendar import Calendar, Event as CalendarEvent, vCalAddress
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shared.clock import LOCAL

TEMPLATES = Path(__file__).with_name("templates")
AR_WEEKDAYS = ("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد")
AR_MONTHS = ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر",
             "ديسمبر")
WHAT_TO_BRING = {
    "ar": ["بطاقة الهوية سارية المفعول", "المستندات المطلوبة للخدمة وأصولها"],
    "en": ["Your valid identity card", "The documents the service needs, with the originals"],
}


@dataclass
class Message:
    kind: str
    channel: str
    language: str
    to: str
    sms: str
    subject: str = ""
    text: str = ""
    html: str = ""
    message_id: str = ""
    attachments: list = field(default_factory=list)  # (filename, content type, bytes)
    date: datetime | None = None  # when it is sent, by the suite's clock (the email's Date)


def environment(directory: Path = TEMPLATES) -> Environment:
    return Environment(loader=FileSystemLoader(str(directory)),
                       autoescape=select_autoescape(enabled_extensions=("j2",), default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, undefined=StrictUndefined)


def local_date(instant: datetime, language: str) -> str:
    day = instant.astimezone(LOCAL)
    if language == "ar":
        return f"{AR_WEEKDAYS[day.weekday()]} {day.day} {AR_MONTHS[day.month - 1]} {day.year}"
    return f"{day:%A} {day.day} {day:%B %Y}"


def address(branch: dict, language: str) -> str:
    """The branch's street address in `language`; "" for a branch registered before addresses were recorded."""
    return (branch.get(f"address_{language}") or "").strip()


def location(branch: dict, language: str) -> str:
    """Where the appointment is, as a calendar shows it: the branch's name, then its street address."""
    return ("، " if language == "ar" else ", ").join(filter(None, (branch[f"name_{language}"],
                                                                  address(branch, language))))


def context(kind: str, language: str, branch: dict, service_id: str, name: str, reference: str | None,
            start: datetime | None, details: dict, public_url: str) -> dict:
    service = branch["services"][service_id]
    base = public_url.rstrip("/")
    values = {
        "name": name, "reference": reference, "help_url": f"{base}/help",
        "branch_name": branch[f"name_{language}"], "address": address(branch, language),
        "service_name": service[f"name_{language}"],
        "duration_minutes": service["duration_minutes"], "what_to_bring": WHAT_TO_BRING[language],
        # the booking site's "manage a booking" page, the reference filled in (never the CPR: a URL is logged)
        "booking_url": f"{base}/manage?reference={reference}" if reference else f"{base}/",
        "ticket_number": details.get("ticket_number", ""), "counter": details.get("counter", ""),
        "feedback_url": details.get("feedback_url", ""),
    }
    if start:
        values.update(date=local_date(start, language), time=f"{start.astimezone(LOCAL):%H:%M}")
    if "previous_start" in details:
        previous = datetime.fromisoformat(details["previous_start"])
        values.update(previous_date=local_date(previous, language), previous_time=f"{previous.astimezone(LOCAL):%H:%M}")
    return values


def render(env: Environment, kind: str, channel: str, language: str, to: str, values: dict, key: str) -> Message:
    module = env.get_template(f"{kind}.{language}.j2").make_module(values)

    def part(name):
        return str(getattr(module, name, "")).strip()

    return Message(kind, channel, language, to, sms=part("sms"), subject=part("subject"), text=part("text"),
                   html=part("html"), message_id=f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@mawaeed>")


ORGANIZER_NAME = {"ar": "مواعيد", "en": "Mawaeed"}
ORGANIZER = "no-reply@mawaeed.local"


def calendar_file(reference: str, branch: dict, service_id: str, start: datetime, language: str, stamp: datetime,
                  sequence: int = 0, cancelled: bool = False, organizer: str = ORGANIZER) -> bytes:
    """An iCalendar (RFC 5545) file of the appointment, times in UTC; the same UID for every version of it, and a
    SEQUENCE that grows with each change of the booking, so that a client lets the later one win (RFC 5546)."""
    service = branch["services"][service_id]
    calendar = Calendar()
    calendar.add("prodid", "-//Mawaeed//مواعيد//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = CalendarEvent()
    event.add("uid", f"{reference}@mawaeed")
    # RFC 5546 requires an ORGANIZER in PUBLISH and CANCEL: the address the email comes from
    event.add("organizer", vCalAddress(f"mailto:{organizer}"), parameters={"cn": ORGANIZER_NAME[language]})
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=service["duration_minutes"]))
    event.add("summary", f"{service[f'name_{language}']} ({reference})")
    event.add("location", location(branch, language))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()
