"""Managing a booking in a real browser, in Arabic and in English: a booking made through the API is found under
"Manage a booking" by its reference and CPR, moved to another day and time on the calendar, then cancelled; the
page shows the new time and then the cancelled state, and the API agrees (GET the booking). Every step of moving
and cancelling is checked with axe-core.
The suite's clock is Sunday 2026-12-06 09:00 (+03:00); the booking is for Monday, moved to Tuesday."""
import re
import uuid
from datetime import datetime

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.kit import BRANCH, LANGUAGES, SERVICE, T, assert_accessible, check_page
from services.notifications.messages import local_date
from shared.clock import LOCAL

pytestmark = pytest.mark.browser

BOOKED_DAY, MOVED_DAY = "2026-12-07", "2026-12-08"
NAME = {"ar": "نورة يوسف", "en": "Noora Yusuf"}


def fresh_cpr() -> str:
    return f"9105{uuid.uuid4().int % 100000:05d}"


def dd_after(page, term: str):
    """The <dd> of the definition list entry whose <dt> is `term`."""
    return page.locator("dt", has_text=re.compile(rf"^\s*{re.escape(term)}\s*$")).first.locator(
        "xpath=following-sibling::dd[1]")


def local_time(start: str) -> str:
    return datetime.fromisoformat(start).astimezone(LOCAL).strftime("%H:%M")


def book(suite, lang: str) -> dict:
    """A booking made through the API: the day's first time with room."""
    slots = requests.get(f"{suite.api}/availability", params={"branch": BRANCH, "service": SERVICE,
                                                              "date": BOOKED_DAY}, timeout=10).json()["slots"]
    start = next(s["start"] for s in slots if s["bookable"] and s["remaining"] > 0)
    cpr = fresh_cpr()
    answer = requests.post(f"{suite.api}/bookings", json={"cpr": cpr, "branch": BRANCH, "service": SERVICE,
                                                          "start": start, "name": NAME[lang], "language": lang},
                           timeout=10)
    assert answer.status_code == 201, answer.text
    return {"cpr": cpr, "reference": answer.json()["reference"], "start": start}


def booking_in_api(suite, booked: dict) -> dict:
    answer = requests.get(f"{suite.api}/bookings/{booked['reference']}", headers={"X-CPR": booked["cpr"]}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def press(page, lang, name: str):
    page.get_by_role("button", name=T(lang, name), exact=True).click()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_move_a_booking_then_cancel_it(open_page, suite, lang):
    booked = book(suite, lang)

    # found by reference (as the confirmation email's link fills it in) and CPR
    page = open_page(lang, "phone", f"/manage?reference={booked['reference']}")
    expect(page.get_by_label(T(lang, "Reference"), exact=True)).to_have_value(booked["reference"])
    page.get_by_label(T(lang, "CPR number"), exact=True).fill(booked["cpr"])
    press(page, lang, "Find booking")
    expect(dd_after(page, T(lang, "Reference"))).to_have_text(booked["reference"])
    expect(dd_after(page, T(lang, "Time"))).to_contain_text(local_time(booked["start"]))
    assert_accessible(page, f"the booking found ({lang})")

    # move it: the calendar, a day, a time, confirm
    press(page, lang, "Change the time")
    expect(page.get_by_role("heading", level=1)).to_have_text(T(lang, "Change the time"))
    check_page(page, "manage-move-day", lang, keep=False)
    page.locator(f'button[name="date"][value="{MOVED_DAY}"]').click()
    times = page.get_by_label(T(lang, "Time"), exact=True)
    options = times.locator("option")
    expect(options.first).to_have_attribute("value", re.compile(rf"^{MOVED_DAY}T"))
    new_start = options.nth(min(2, options.count() - 1)).get_attribute("value")
    times.select_option(new_start)
    assert_accessible(page, f"the times of the new day ({lang})")
    press(page, lang, "Continue")
    expect(page.get_by_role("heading", name=T(lang, "The new time"))).to_be_visible()
    expect(dd_after(page, T(lang, "Time"))).to_have_text(local_time(new_start))
    assert_accessible(page, f"the new time to confirm ({lang})")
    press(page, lang, "Confirm the new time")

    expect(page.get_by_role("status").first).to_have_text(
        T(lang, "Your booking has been moved to the new time. The reference stays the same."))
    expect(dd_after(page, T(lang, "Reference"))).to_have_text(booked["reference"])
    expect(dd_after(page, T(lang, "Time"))).to_contain_text(local_time(new_start))
    expect(dd_after(page, T(lang, "Date"))).to_have_text(
        local_date(datetime.fromisoformat(new_start).astimezone(LOCAL), lang))
    check_page(page, "manage-moved", lang, keep=True)
    moved = booking_in_api(suite, booked)
    assert moved["status"] == "active" and moved["start"] == new_start, moved

    # cancel it: asked first, then done
    press(page, lang, "Cancel the booking")
    expect(page.get_by_role("heading", name=T(lang, "Cancel this booking?"))).to_be_visible()
    assert_accessible(page, f"the question before cancelling ({lang})")
    assert booking_in_api(suite, booked)["status"] == "active", "asking cancelled it already"
    press(page, lang, "Yes, cancel the booking")
    expect(page.get_by_role("status").first).to_have_text(T(lang, "Your booking has been cancelled."))
    expect(dd_after(page, T(lang, "Status"))).to_have_text(T(lang, "Cancelled"))
    expect(dd_after(page, T(lang, "Time"))).to_contain_text(local_time(new_start))
    expect(page.get_by_role("button", name=T(lang, "Change the time"), exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name=T(lang, "Book a new appointment"), exact=True)).to_be_visible()
    check_page(page, "manage-cancelled", lang, keep=False)
    cancelled = booking_in_api(suite, booked)
    assert cancelled["status"] == "cancelled" and cancelled["start"] == new_start, cancelled

    # looked up again later, it is still cancelled, with nothing left to change
    again = open_page(lang, "desktop", "/manage")
    again.get_by_label(T(lang, "Reference"), exact=True).fill(booked["reference"])
    again.get_by_label(T(lang, "CPR number"), exact=True).fill(booked["cpr"])
    press(again, lang, "Find booking")
    expect(dd_after(again, T(lang, "Status"))).to_have_text(T(lang, "Cancelled"))
    expect(again.get_by_role("button", name=T(lang, "Cancel the booking"), exact=True)).to_have_count(0)
