"""A person's whole visit in a real browser, in Arabic and in English: book on the site, find the booking under
"Manage a booking", check in at the kiosk, be called from the counter console (a clerk signed in through the
development sign-in form), see and hear the call on the hall's display, see "called" on the live ticket, give
feedback; then the centre manager's page. Every page on the way is checked with axe-core (no serious or critical
violation), for requests to other hosts and CSP violations, and photographed at phone and desktop widths.

The tests of this module build on each other (a booking, then its visit), in the order they are written.
The suite's clock starts on Sunday 2026-12-06 at 09:00 (+03:00): the earliest booking is that day after 10:00, and
the suite is restarted 20 minutes before it to check in."""
import re
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.kit import BRANCH, LANGUAGES, SERVICE, T, check_page

pytestmark = pytest.mark.browser

DAY = "2026-12-06"
PERSON = {"ar": {"name": "فاطمة علي", "counter": "1"}, "en": {"name": "Sara Ahmed", "counter": "2"}}
BOOKED: dict = {}      # lang -> {cpr, mobile, reference, start}
VISITED: dict = {}     # lang -> {number, token}
PASSPORT = {"ar": "تجديد جواز السفر", "en": "Passport renewal"}   # the service's name in the catalogue
REFERENCE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}\Z")

# speechSynthesis as the display uses it, recording what it is asked to say (installed before the page's scripts)
SPEECH_STUB = """
(() => {
  window.__spoken = [];
  if (!window.SpeechSynthesisUtterance) {
    window.SpeechSynthesisUtterance = function (text) { this.text = text || ""; this.lang = ""; };
  }
  const synth = window.speechSynthesis || {};
  synth.speak = (u) => {
    window.__spoken.push({text: u.text, lang: u.lang});
    setTimeout(() => { try { u.dispatchEvent && u.dispatchEvent(new Event("end")); } catch (e) {} }, 10);
  };
  synth.cancel = () => {};
  synth.getVoices = () => [];
  if (!window.speechSynthesis) { Object.defineProperty(window, "speechSynthesis", {value: synth}); }
})();
"""


def fresh_cpr() -> str:
    return f"9001{uuid.uuid4().int % 100000:05d}"


def needs(store: dict, lang: str, what: str):
    if lang not in store:
        pytest.skip(f"needs the {what} of the earlier test in {lang}")
    return store[lang]


def dd_after(page, term: str):
    """The <dd> of the definition list entry whose <dt> is `term`."""
    return page.locator("dt", has_text=re.compile(rf"^\s*{re.escape(term)}\s*$")).first.locator(
        "xpath=following-sibling::dd[1]")


def continue_(page, lang):
    page.get_by_role("button", name=T(lang, "Continue"), exact=True).click()


# -- booking -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_book_through_the_site(open_page, suite, lang):
    page = open_page(lang, "phone", "/")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    check_page(page, "booking-directorate", lang)
    page.get_by_label(T(lang, "Directorate"), exact=True).select_option("npra")
    continue_(page, lang)

    check_page(page, "booking-centre", lang, keep=False)
    page.get_by_label(T(lang, "Centre"), exact=True).select_option(BRANCH)
    continue_(page, lang)

    check_page(page, "booking-service", lang, keep=False)
    page.get_by_label(T(lang, "Service"), exact=True).select_option(SERVICE)
    continue_(page, lang)

    check_page(page, "booking-day", lang)
    if lang == "ar":   # the month's calendar: the day is a button
        page.locator(f'button[name="date"][value="{DAY}"]').click()
    else:              # or the day typed into the Date field
        page.get_by_label(T(lang, "Date"), exact=True).fill(DAY)
        continue_(page, lang)

    check_page(page, "booking-time", lang)
    times = page.get_by_label(T(lang, "Time"), exact=True)
    first = times.locator("option").first.get_attribute("value")
    assert first.startswith(f"{DAY}T10:"), f"the earliest time bookable after 09:00 is at 10:00 or 10:20, not {first}"
    times.select_option(first)
    continue_(page, lang)

    cpr, mobile = fresh_cpr(), f"+9733{uuid.uuid4().int % 10**7:07d}"
    check_page(page, "booking-details-empty", lang, keep=False)
    page.get_by_label(T(lang, "Full name"), exact=True).fill(PERSON[lang]["name"])
    page.get_by_label(T(lang, "CPR number"), exact=True).fill(cpr)
    page.get_by_label(T(lang, "Mobile"), exact=True).fill(mobile)
    page.get_by_label(T(lang, "Email"), exact=True).fill(f"person-{cpr}@example.com")
    page.get_by_label(T(lang, "Language"), exact=True).select_option(lang)
    check_page(page, "booking-details", lang)
    continue_(page, lang)

    check_page(page, "booking-confirm", lang)
    expect(page.get_by_text(PERSON[lang]["name"])).to_be_visible()
    page.get_by_role("button", name=T(lang, "Confirm booking"), exact=True).click()

    reference = dd_after(page, T(lang, "Reference")).inner_text().strip()
    assert REFERENCE.match(reference), f"the confirmation shows {reference!r} as the reference"
    check_page(page, "booking-done", lang)
    answer = requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": cpr}, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "active", answer.text
    BOOKED[lang] = {"cpr": cpr, "mobile": mobile, "reference": reference, "start": answer.json()["start"]}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_find_the_booking_under_manage(open_page, lang):
    booked = needs(BOOKED, lang, "booking")
    page = open_page(lang, "desktop", "/")
    page.get_by_role("navigation").get_by_role("link", name=T(lang, "Manage a booking"), exact=True).click()
    check_page(page, "manage", lang)
    page.get_by_label(T(lang, "Reference"), exact=True).fill(booked["reference"].lower().replace("-", ""))
    page.get_by_label(T(lang, "CPR number"), exact=True).fill(booked["cpr"])
    page.get_by_role("button", name=T(lang, "Find booking"), exact=True).click()
    expect(dd_after(page, T(lang, "Reference"))).to_have_text(booked["reference"])
    expect(page.get_by_text(PERSON[lang]["name"]).first).to_be_visible()
    check_page(page, "manage-booking", lang)


def test_a_wrong_cpr_finds_nothing_and_says_so_by_the_fields(open_page):
    booked = needs(BOOKED, "en", "booking")
    page = open_page("en", "phone", "/manage")
    page.get_by_label("Reference", exact=True).fill(booked["reference"])
    page.get_by_label("CPR number", exact=True).fill("123")
    page.get_by_role("button", name="Find booking", exact=True).click()
    cpr = page.get_by_label("CPR number", exact=True)
    expect(cpr).to_have_attribute("aria-invalid", "true")
    described = cpr.get_attribute("aria-describedby") or ""
    errors = [page.locator(f"#{i}") for i in described.split()]
    assert any(e.count() and e.inner_text().strip() for e in errors if "error" in (e.get_attribute("id") or "")), \
        "the CPR's error is not linked to it with aria-describedby"
    check_page(page, "manage-errors", "en", keep=False)


# -- the visit ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def at_the_centre(suite):
    """The suite's clock moved to 20 minutes before the latest booked time (a restart at that instant), when
    both people may check in."""
    if not BOOKED:
        pytest.skip("needs the bookings of the earlier tests")
    latest = max(datetime.fromisoformat(b["start"]) for b in BOOKED.values())
    suite.restart(now=(latest - timedelta(minutes=20)).isoformat())
    return suite


def sign_in_as_clerk(page, lang, counter):
    """The development sign-in form, reached from the console it sends you back to."""
    page.goto(f"/counter/{BRANCH}?counter={counter}")
    expect(page).to_have_url(re.compile(r"/signin"))
    check_page(page, "signin", lang)
    page.get_by_label(T(lang, "Role"), exact=True).select_option("clerk")
    page.get_by_label(T(lang, "Centre"), exact=True).select_option(BRANCH)
    page.get_by_label(T(lang, "Counter"), exact=True).fill(counter)
    page.get_by_role("button", name=T(lang, "Sign in"), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/counter/{BRANCH}"))


def feedback_link(suite, mobile: str, timeout: float = 15) -> str:
    """The feedback link of the survey text message sent to `mobile` (the embedded suite's file outbox)."""
    outbox = Path(suite.env["MAWAEED_DATA_DIR"]) / "outbox" / "sms"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sorted(outbox.glob("*")) if outbox.exists() else []:
            text = message.read_text(errors="replace")
            if mobile in text or mobile.lstrip("+") in text:
                found = re.search(r"https?://\S+/feedback/[\w.-]+", text)
                if found:
                    return found.group(0)
        time.sleep(0.25)
    raise AssertionError(f"no survey message with a feedback link reached {mobile} in {timeout} s")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_visit_check_in_called_announced_feedback(open_page, at_the_centre, lang):
    suite = at_the_centre
    booked = needs(BOOKED, lang, "booking")
    counter = PERSON[lang]["counter"]

    # the kiosk, paired once with its device token, then the booking's reference and CPR
    kiosk = open_page(lang, "phone")
    kiosk.goto(f"/kiosk/{BRANCH}?device={suite.token('kiosk', branches=[BRANCH])}")
    assert "device=" not in kiosk.url, "the device token stays in the address bar"
    check_page(kiosk, "kiosk", lang)
    kiosk.get_by_label(T(lang, "Booking reference"), exact=True).fill(booked["reference"])
    kiosk.get_by_label(T(lang, "CPR number"), exact=True).fill(booked["cpr"])
    kiosk.get_by_role("button", name=T(lang, "Check in"), exact=True).click()
    expect(kiosk).to_have_url(re.compile(rf"/kiosk/{BRANCH}/ticket/"))
    number = kiosk.locator(".ticket-number").inner_text().split()[-1]
    assert re.fullmatch(r"P-0\d\d", number), f"the kiosk's ticket shows {number!r}"
    token = kiosk.url.rstrip("/").rsplit("/", 1)[-1]
    check_page(kiosk, "kiosk-ticket", lang)
    VISITED[lang] = {"number": number, "token": token}

    # the live ticket, as the ticket's QR code opens it on the person's phone: waiting
    ticket = open_page(lang, "phone", f"/t/{token}")
    expect(ticket.locator(".ticket-number")).to_contain_text(number)
    check_page(ticket, "ticket-waiting", lang)

    # the hall's display, paired with a display token; speech recorded before its scripts run
    display = open_page(lang, "desktop", init_script=SPEECH_STUB)
    display.goto(f"/display/{BRANCH}?device={suite.token('display', branches=[BRANCH])}")
    assert "device=" not in display.url
    check_page(display, "display", lang)

    # the counter console: sign in, open the counter for passport renewal, call next
    console = open_page(lang, "desktop")
    sign_in_as_clerk(console, lang, counter)
    console.get_by_label(PASSPORT[lang], exact=True).check()
    console.get_by_role("button", name=T(lang, "Open counter"), exact=True).click()
    expect(console.get_by_role("status").first).to_contain_text(
        T(lang, "Counter %(counter)s is open.") % {"counter": counter})
    console.get_by_role("button", name=T(lang, "Call next"), exact=True).click()
    expect(console.get_by_role("status").first).to_contain_text(
        T(lang, "Ticket %(number)s is called to this counter.") % {"number": number})
    called_at = time.monotonic()
    check_page(console, "counter", lang)

    # the display shows the call within a second, and says it: Arabic, then English
    expect(display.locator("#last-called")).to_contain_text(number, timeout=1000)
    assert time.monotonic() - called_at < 1.5   # (the screenshots above took their share of that second)
    arabic, english = f"التذكرة {number}، الشباك {counter}", f"Ticket {number}, counter {counter}"
    deadline = time.monotonic() + 5
    spoken = []
    while time.monotonic() < deadline:
        spoken = [s for s in display.evaluate("() => window.__spoken") if s["text"]]
        if len(spoken) >= 2:
            break
        display.wait_for_timeout(100)
    assert [s["text"] for s in spoken][:2] == [arabic, english], f"the display said {spoken}"
    assert spoken[0]["lang"].startswith("ar") and spoken[1]["lang"].startswith("en"), spoken
    check_page(display, "display-called", lang)

    # the live ticket says "called" (by itself, its script asks again every few seconds)
    called = ticket.locator("main").get_by_text(T(lang, "You are called to counter %(counter)s") % {"counter": counter})
    expect(called.first).to_be_visible(timeout=12_000)
    check_page(ticket, "ticket-called", lang)

    # served; then the survey text message's link, and the feedback form
    console.get_by_role("button", name=T(lang, "Served"), exact=True).click()
    expect(console.get_by_role("status").first).to_contain_text(
        T(lang, "Ticket %(number)s is served.") % {"number": number})
    link = feedback_link(suite, booked["mobile"])
    feedback = open_page(lang, "phone", link.replace(suite.base_url, ""))
    check_page(feedback, "feedback", lang)
    feedback.get_by_label(T(lang, "5 – Excellent"), exact=True).check()
    feedback.get_by_label(T(lang, "Comment (optional)"), exact=True).fill(
        "خدمة سريعة" if lang == "ar" else "Quick and friendly.")
    feedback.get_by_role("button", name=T(lang, "Send"), exact=True).click()
    expect(feedback.get_by_role("heading", level=1)).to_be_visible()
    check_page(feedback, "feedback-thanks", lang)
    again = requests.post(f"{suite.api}/feedback", json={"token": link.rsplit("/", 1)[-1], "score": 3}, timeout=10)
    assert again.status_code == 409, "the feedback was not recorded"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_centre_managers_page(open_page, at_the_centre, lang):
    page = open_page(lang, "desktop", f"/manage/{BRANCH}")
    expect(page).to_have_url(re.compile(r"/signin"))
    page.get_by_label(T(lang, "Role"), exact=True).select_option("branch_manager")
    page.get_by_label(T(lang, "Centre"), exact=True).select_option(BRANCH)
    page.get_by_role("button", name=T(lang, "Sign in"), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/manage/{BRANCH}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(T(lang, "Centre manager"))
    check_page(page, "manager", lang)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_walk_in_ticket_at_the_kiosk(open_page, at_the_centre, lang):
    suite = at_the_centre
    kiosk = open_page(lang, "phone", f"/kiosk/{BRANCH}?device={suite.token('kiosk', branches=[BRANCH])}")
    kiosk.get_by_role("link", name=T(lang, "Take a ticket without a booking"), exact=True).click()
    check_page(kiosk, "kiosk-walk-in", lang)
    kiosk.get_by_label(PASSPORT[lang], exact=True).check()
    kiosk.get_by_label(T(lang, "CPR number"), exact=True).fill(fresh_cpr())
    kiosk.get_by_role("button", name=re.compile(T(lang, "Take a ticket"))).click()
    expect(kiosk).to_have_url(re.compile(rf"/kiosk/{BRANCH}/ticket/"))
    assert re.fullmatch(r"P-0\d\d", kiosk.locator(".ticket-number").inner_text().split()[-1])
