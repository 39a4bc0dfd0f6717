"""The booking site and managing a booking (services/web/booking.py): the pure helpers directly, every string of
the templates in Arabic, and the pages themselves driven over HTTP on an embedded suite (no JavaScript: plain GET
and POST forms, as a person without scripts uses them)."""
import re
from datetime import date, datetime
from html import unescape
from pathlib import Path

import pytest
import requests
from babel.messages.extract import extract_from_file

from services.web import booking as pages
from services.web.i18n import catalogue
from tests.support.suite import Suite, running

TEMPLATES = Path(pages.__file__).with_name("templates")
BRANCH, SERVICE, DIRECTORATE = "npra-isa-town", "passport-renewal", "npra"
TIMEOUT = 15
ISA_TOWN = {"id": BRANCH, "booking_window": {"min_notice_minutes": 60, "max_days_ahead": 30},
            "opening_hours": [{"day": d, "periods": [] if d in ("fri", "sat") else [{"opens": "07:00",
                                                                                    "closes": "14:00"}]}
                              for d in ("sun", "mon", "tue", "wed", "thu", "fri", "sat")]}


# -- the pure helpers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, written", [("k7mx9qrd", "K7MX-9QRD"), (" K7MX 9QRD ", "K7MX-9QRD"),
                                            ("K7MX-9QRD", "K7MX-9QRD"), ("short", "SHORT")])
def test_a_reference_is_read_as_people_type_it(typed, written):
    assert pages.normalise_reference(typed) == written


def test_a_month_knows_the_past_the_weekend_and_the_booking_window_before_asking_the_api():
    weeks = pages.month_grid(date(2026, 12, 1), date(2026, 12, 6), ISA_TOWN)
    cells = {c["iso"]: c["state"] for week in weeks for c in week if c}
    assert all(len(week) == 7 for week in weeks) and weeks[0][:2] == [None, None]  # 1 December is a Tuesday
    assert cells["2026-12-05"] == "past" and cells["2026-12-06"] == "ask"
    assert cells["2026-12-11"] == cells["2026-12-12"] == "closed"   # Friday and Saturday
    january = {c["iso"]: c["state"] for week in pages.month_grid(date(2027, 1, 1), date(2026, 12, 6), ISA_TOWN)
               for c in week if c}
    assert january["2027-01-05"] == "ask" and january["2027-01-06"] == "later"   # 30 days ahead, no more


def test_a_days_state_comes_from_its_availability():
    slot = {"start": "2026-12-07T07:00:00+03:00", "end": "2026-12-07T07:20:00+03:00", "capacity": 3}
    assert pages.day_state({"slots": [], "closed": {"code": "HOLIDAY", "name_en": "National Day"}})[0] == "closed"
    assert pages.day_state({"slots": [{**slot, "remaining": 2, "bookable": True},
                                      {**slot, "remaining": 3, "bookable": False}]}) == ("free", 2, None)
    assert pages.day_state({"slots": [{**slot, "remaining": 0, "bookable": True}]})[0] == "full"
    assert pages.free_times({"slots": [{**slot, "remaining": 1, "bookable": True}]}) == [
        {"start": slot["start"], "time": "07:00", "end": "07:20", "remaining": 1}]


def test_the_details_are_checked_as_the_api_checks_them():
    good = {"name": "Fatima Ali", "cpr": "900112345", "mobile": "+97336123456", "email": "f@example.bh",
            "language": "ar"}
    assert pages.check_details(good, citizen=False) == {}
    assert set(pages.check_details({**good, "cpr": "901312345", "mobile": "12", "email": "no", "name": "",
                                    "language": "fr"}, citizen=False)) == {"cpr", "mobile", "email", "name",
                                                                            "language"}
    assert pages.check_details({**good, "cpr": ""}, citizen=True) == {}   # a citizen's CPR is their token's


def test_the_qr_code_is_the_reference_as_inline_svg_without_styles():
    svg = pages.qr_svg("K7MX-9QRD", "QR code of booking K7MX-9QRD")
    assert svg.startswith('<svg role="img" aria-label="QR code of booking K7MX-9QRD"') and "style" not in svg


def test_every_string_of_the_booking_pages_has_its_arabic():
    ids = set()
    for template in TEMPLATES.glob("*.html"):
        if template.name.startswith("booking") or re.match(r"manage(_|\.)", template.name):
            for _, message, _, _ in extract_from_file("jinja2", str(template),
                                                      options={"extensions": "jinja2.ext.i18n"}):
                ids.add(message if isinstance(message, str) else message[0])
    arabic = catalogue("ar")
    assert len(ids) > 100
    assert [i for i in sorted(ids) if not (arabic.get(i) and arabic.get(i).string)] == []


# -- the pages, on an embedded suite ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("booking-pages"))) as started:
        yield started


def get(suite, path, **kwargs):
    return requests.get(f"{suite.base_url}{path}", timeout=TIMEOUT, **kwargs)


def post(suite, path, data, **kwargs):
    return requests.post(f"{suite.base_url}{path}", data=data, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def label_of(html: str, field: str) -> str:
    return unescape(re.search(rf'<label for="{field}">([^<]*)</label>', html).group(1))


def reference_of(html: str) -> str:
    return re.search(r'class="ref">([0-9A-Z]{4}-[0-9A-Z]{4})<', html).group(1)


def free_starts(suite, day: str) -> list[str]:
    answer = requests.get(f"{suite.api}/availability", params={"branch": BRANCH, "service": SERVICE, "date": day},
                          timeout=TIMEOUT).json()
    return [s["start"] for s in answer["slots"] if s["bookable"] and s["remaining"] > 0]


def details(start: str, cpr: str = "900112345", **extra) -> dict:
    return {"directorate": DIRECTORATE, "branch": BRANCH, "service": SERVICE, "start": start, "name": "Fatima Ali",
            "cpr": cpr, "mobile": "", "email": "", "language": "ar", **extra}


def assert_no_inline_code(html: str):
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and " style=" not in html


def test_the_steps_are_get_forms_arabic_first_with_the_exact_names_in_english(suite):
    first = get(suite, "/")
    assert first.status_code == 200 and '<html lang="ar" dir="rtl">' in first.text
    assert label_of(first.text, "directorate") == "الجهة" and 'method="get"' in first.text
    steps = [("/?lang=en", "directorate", "Directorate"),
             (f"/?lang=en&directorate={DIRECTORATE}", "branch", "Centre"),
             (f"/?lang=en&directorate={DIRECTORATE}&branch={BRANCH}", "service", "Service"),
             (f"/?lang=en&directorate={DIRECTORATE}&branch={BRANCH}&service={SERVICE}", "date", "Date"),
             (f"/?lang=en&directorate={DIRECTORATE}&branch={BRANCH}&service={SERVICE}&date=2026-12-08", "start",
              "Time")]
    for path, field, name in steps:
        page = get(suite, path)
        assert page.status_code == 200, (path, page.text)
        assert label_of(page.text, field) == name and f'id="{field}"' in page.text
        assert ">Continue</button>" in page.text
        assert_no_inline_code(page.text)
    assert get(suite, "/?lang=en").cookies.get("lang") == "en"   # the chosen language is remembered


def test_the_calendar_shows_free_days_and_why_the_others_are_closed(suite):
    page = get(suite, f"/?lang=en&directorate={DIRECTORATE}&branch={BRANCH}&service={SERVICE}").text
    assert 'name="date" value="2026-12-07"' in page          # a Monday with room: a button
    assert 'name="date" value="2026-12-11"' not in page      # a Friday: closed every week
    assert "Wednesday 16 December 2026: National Day" in page   # a holiday says which
    assert 'name="date" value="2026-12-16"' not in page and "Next month" in page
    january = get(suite, f"/?lang=en&directorate={DIRECTORATE}&branch={BRANCH}&service={SERVICE}&month=2027-01")
    assert 'value="2027-01-04"' in january.text and 'value="2027-01-06"' not in january.text   # the window ends
    assert "Previous month" in january.text and "Next month" not in january.text


def test_a_booking_goes_details_confirm_booked_with_its_reference_qr_and_calendar_file(suite):
    start = free_starts(suite, "2026-12-08")[0]
    shown = get(suite, "/", params={"lang": "en", "directorate": DIRECTORATE, "branch": BRANCH, "service": SERVICE,
                                    "date": "2026-12-08", "start": start})
    assert shown.status_code == 200 and 'method="post" action="/book?lang=en"' in shown.text
    for field, name in (("name", "Full name"), ("cpr", "CPR number"), ("mobile", "Mobile"), ("email", "Email"),
                        ("language", "Language")):
        assert label_of(shown.text, field) == name
    confirm = post(suite, "/book?lang=en", details(start, step="details"))
    assert confirm.status_code == 200 and ">Confirm booking</button>" in confirm.text
    done = post(suite, "/book?lang=en", details(start, step="confirm"))
    assert done.status_code == 201, done.text
    reference = reference_of(done.text)
    assert ">Reference<" in done.text and "Tuesday 8 December 2026" in done.text and "Isa Town branch" in done.text
    assert '<svg role="img"' in done.text and f"/manage?reference={reference}" in done.text
    assert_no_inline_code(done.text)
    ics_url = unescape(re.search(r'href="(/calendar/[^"]+)"', done.text).group(1))
    ics = get(suite, ics_url)
    assert ics.status_code == 200 and ics.headers["Content-Type"].startswith("text/calendar")
    assert f"UID:{reference}@mawaeed" in ics.text and "DTSTART:20261208T" in ics.text
    mine = requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": "900112345"}, timeout=TIMEOUT)
    assert mine.json()["start"] == start and mine.json()["name"] == "Fatima Ali"
    # the same person again for the same service: the API's refusal, in the page's language, at the top
    again = post(suite, "/book", details(free_starts(suite, "2026-12-08")[1], step="confirm"))
    assert again.status_code == 409 and "لديك حجز قائم لهذه الخدمة" in again.text and 'role="alert"' in again.text


def test_wrong_details_come_back_next_to_their_fields_and_a_full_slot_says_so(suite):
    start = free_starts(suite, "2026-12-09")[0]
    wrong = post(suite, "/book?lang=en", details(start, cpr="12345", email="nope", step="details"))
    assert wrong.status_code == 422
    assert re.search(r'id="cpr"[^>]*aria-describedby="cpr-hint cpr-error" aria-invalid="true"', wrong.text)
    assert 'id="cpr-error"' in wrong.text and 'id="email-error"' in wrong.text and 'id="mobile-error"' not in wrong.text
    assert 'value="12345"' in wrong.text   # what was typed stays
    for n in range(3):                     # three places online: take them all
        body = {"branch": BRANCH, "service": SERVICE, "start": start, "cpr": f"8503{n}2345", "name": "Other",
                "language": "en"}
        assert requests.post(f"{suite.api}/bookings", json=body, timeout=TIMEOUT).status_code == 201
    full = post(suite, "/book", details(start, cpr="850392345", step="confirm"))
    assert full.status_code == 409 and "هذا الموعد محجوز بالكامل" in full.text and "اختر وقتًا آخر" in full.text


def test_managing_finds_moves_and_cancels_a_booking_with_the_cpr_never_in_a_url(suite):
    start, later = free_starts(suite, "2026-12-10")[:2]
    reference = reference_of(post(suite, "/book", details(start, cpr="770512345", step="confirm")).text)
    prefilled = get(suite, f"/manage?lang=en&reference={reference.lower().replace('-', '')}")
    assert f'value="{reference}"' in prefilled.text and label_of(prefilled.text, "reference") == "Reference"
    assert 'method="post"' in prefilled.text and label_of(prefilled.text, "cpr") == "CPR number"
    keep = {"reference": reference, "cpr": "770512345", "branch": BRANCH, "service": SERVICE}
    wrong = post(suite, "/manage?lang=en", {**keep, "cpr": "770512346", "action": "find"})
    assert wrong.status_code == 404 and "No booking has this reference and CPR." in wrong.text
    found = post(suite, "/manage?lang=en", {**keep, "action": "find"})
    assert found.status_code == 200 and "Thursday 10 December 2026" in found.text and ">Change the time<" in found.text
    calendar = post(suite, "/manage?lang=en", {**keep, "action": "move"})
    assert 'name="date" value="2026-12-10"' in calendar.text and label_of(calendar.text, "date") == "Date"
    times = post(suite, "/manage?lang=en", {**keep, "action": "move-time", "date": "2026-12-10"})
    assert label_of(times.text, "start") == "Time" and f'value="{later}"' in times.text
    confirm = post(suite, "/manage?lang=en", {**keep, "action": "move-confirm", "date": "2026-12-10", "start": later})
    assert ">Confirm the new time<" in confirm.text
    moved = post(suite, "/manage?lang=en", {**keep, "action": "move-do", "date": "2026-12-10", "start": later})
    assert moved.status_code == 200 and "moved to the new time" in moved.text and reference in moved.text
    asked = post(suite, "/manage?lang=en", {**keep, "action": "cancel"})
    assert "Cancel this booking?" in asked.text and ">Yes, cancel the booking<" in asked.text
    cancelled = post(suite, "/manage", {**keep, "action": "cancel-do"})
    assert "تم إلغاء حجزك" in cancelled.text and "ملغى" in cancelled.text
    assert requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": "770512345"},
                        timeout=TIMEOUT).json()["status"] == "cancelled"
    for page in (prefilled, found, calendar, times, confirm, moved):   # every form that carries a CPR is POSTed
        for form in re.findall(r"<form[^>]*>.*?</form>", page.text, re.S):
            if 'name="cpr"' in form:
                assert 'method="post"' in form
        assert "770512345" not in page.url


def test_an_old_email_link_and_a_bad_choice_land_somewhere_useful(suite):
    old = get(suite, "/?reference=K7MX-9QRD", allow_redirects=False)
    assert old.status_code in (301, 302) and old.headers["Location"].endswith("/manage?reference=K7MX-9QRD")
    bad = get(suite, f"/?lang=en&directorate={DIRECTORATE}&branch=nowhere")
    assert bad.status_code == 422 and 'id="branch-error"' in bad.text and 'aria-invalid="true"' in bad.text
    assert get(suite, "/calendar/K7MX-9QRD.ics?branch=nowhere&service=x&start=2026-12-08T07:00:00%2B03:00")\
        .status_code == 404


def test_a_signed_in_citizen_sees_their_bookings_and_books_without_a_cpr(suite):
    citizen = suite.as_("citizen", cpr="880712345", name="Citizen Sign-In")
    start = free_starts(suite, "2026-12-14")[0]
    shown = get(suite, "/", params={"lang": "en", "directorate": DIRECTORATE, "branch": BRANCH, "service": SERVICE,
                                    "date": "2026-12-14", "start": start}, headers=citizen)
    assert 'id="cpr"' not in shown.text and 'value="Citizen Sign-In"' in shown.text
    form = {k: v for k, v in details(start, step="confirm", name="Citizen Sign-In").items() if k != "cpr"}
    done = post(suite, "/book?lang=en", form, headers=citizen)
    assert done.status_code == 201, done.text
    reference = reference_of(done.text)
    mine = get(suite, "/?lang=en", headers=citizen)
    assert ">My bookings<" in mine.text and reference in mine.text
    opened = get(suite, f"/manage?lang=en&reference={reference}", headers=citizen)
    assert opened.status_code == 200 and ">Change the time<" in opened.text


ISA_TOWN_ADDRESS = {"en": "Building 123, Road 613, Block 806, Isa Town", "ar": "مبنى 123، طريق 613، مجمع 806، مدينة عيسى"}


def test_the_confirmation_the_managed_booking_its_calendar_file_and_the_help_say_where_the_centre_is(suite):
    start = free_starts(suite, "2026-12-14")[0]
    done = post(suite, "/book", details(start, cpr="690312345", step="confirm"))   # Arabic, the default
    assert done.status_code == 201, done.text
    assert re.search(r"<dt>العنوان</dt><dd[^>]*>" + ISA_TOWN_ADDRESS["ar"] + "</dd>", done.text)
    assert ISA_TOWN_ADDRESS["en"] not in done.text
    reference = reference_of(done.text)
    found = post(suite, "/manage?lang=en", {"reference": reference, "cpr": "690312345", "action": "find"})
    assert found.status_code == 200
    assert re.search(r"<dt>Address</dt><dd[^>]*>" + ISA_TOWN_ADDRESS["en"] + "</dd>", found.text)
    for lang, page in (("ar", done), ("en", found)):
        ics_url = unescape(re.search(r'href="(/calendar/[^"]+)"', page.text).group(1))
        ics = get(suite, ics_url).text.replace("\r\n ", "")   # unfolded
        location = re.search(r"^LOCATION:(.*)$", ics, re.M).group(1).replace("\\,", ",").strip()
        assert location.endswith(ISA_TOWN_ADDRESS[lang]), (lang, location)
    branches = requests.get(f"{suite.api}/branches", timeout=TIMEOUT).json()
    for lang in ("ar", "en"):
        help_page = get(suite, f"/help?lang={lang}").text
        for branch in branches:   # every centre: its name, its address, its hours
            name, address = branch[f"name_{lang}"], branch[f"address_{lang}"]
            assert address and re.search(re.escape(name) + r'</h3>\s*<p class="address">[^<]*' + re.escape(address)
                                         + "</p>", unescape(help_page)), (lang, branch["id"])
    assert "العنوان:" in get(suite, "/help").text and "Address:" in get(suite, "/help?lang=en").text
