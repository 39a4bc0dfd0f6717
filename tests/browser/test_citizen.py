"""A citizen signed in with the national eID (here the embedded suite's development sign-in), in Arabic and in
English: "Sign in with eID" from the booking site, the development form by CPR and name, the details step without a
CPR field ("Signed in as ... (CPR ••••••345)"), the booking made with the session's token, then My bookings
listing it with a link to manage it without a CPR; sign out. axe-core on each page; no CPR in any address the
browser asks for. Bookings here are for Tuesday 2026-12-08."""
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.kit import BRANCH, LANGUAGES, SERVICE, WIDTHS, T, check_page, shot

pytestmark = pytest.mark.browser

DAY = "2026-12-08"
REFERENCE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}\Z")
NAMES = {"ar": "فاطمة علي", "en": "Fatima Ali"}


def fresh_cpr() -> str:
    return f"8911{uuid.uuid4().int % 100000:05d}"


def reference_shown(page, lang) -> str:
    term = page.locator("dt", has_text=re.compile(rf"^\s*{re.escape(T(lang, 'Reference'))}\s*$")).first
    return term.locator("xpath=following-sibling::dd[1]").inner_text().strip()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_citizen_signs_in_books_without_a_cpr_and_finds_it_on_my_bookings(open_page, suite, lang):
    page = open_page(lang, "phone" if lang == "ar" else "desktop", "/")
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    cpr, name = fresh_cpr(), NAMES[lang]

    # "Sign in with eID" on the booking site leads to the sign-in page; the development form takes a CPR
    page.get_by_role("link", name=T(lang, "Sign in with eID"), exact=True).click()
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    expect(page.get_by_role("heading", name=T(lang, "Citizen (national eID)"))).to_be_visible()
    check_page(page, "signin-citizen", lang, keep=False)
    page.get_by_label(T(lang, "CPR number"), exact=True).fill("12345")
    page.get_by_role("button", name=T(lang, "Sign in as a citizen"), exact=True).click()
    expect(page.locator("#citizen-cpr")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#citizen-cpr-error")).to_have_text(
        T(lang, "Enter your CPR number: 9 digits, the first four the year and month of your birth."))
    page.get_by_label(T(lang, "CPR number"), exact=True).fill(cpr)
    page.get_by_label(T(lang, "Full name"), exact=True).fill(name)
    page.get_by_role("button", name=T(lang, "Sign in as a citizen"), exact=True).click()

    # back on the booking site, signed in
    expect(page.locator(".account")).to_contain_text(name)
    page.goto("/?" + "&".join(f"{k}={v}" for k, v in {
        "directorate": "npra", "branch": BRANCH, "service": SERVICE, "date": DAY}.items()))
    page.get_by_label(T(lang, "Time"), exact=True).select_option(index=1)
    page.get_by_role("button", name=T(lang, "Continue"), exact=True).click()

    # the details: no CPR to type, who is signed in (the CPR masked)
    expect(page.get_by_role("heading", name=T(lang, "Your details"), exact=True)).to_be_visible()
    assert page.get_by_label(T(lang, "CPR number"), exact=True).count() == 0
    signed_in = page.locator(".signed-in")
    expect(signed_in).to_contain_text(name)
    expect(signed_in).to_contain_text("\u2022" * 6 + cpr[-3:])
    assert cpr not in page.content()
    expect(page.get_by_label(T(lang, "Full name"), exact=True)).to_have_value(name)
    check_page(page, "booking-details-citizen", lang, keep=False)
    if lang == "en":   # one of the two kept for docs/screenshots
        page.set_viewport_size({"width": WIDTHS["phone"][0], "height": WIDTHS["phone"][1]})
        shot(page, "booking-details-citizen-en-390", keep=True)
    page.get_by_role("button", name=T(lang, "Continue"), exact=True).click()
    page.get_by_role("button", name=T(lang, "Confirm booking"), exact=True).click()
    reference = reference_shown(page, lang)
    assert REFERENCE.match(reference), f"the confirmation shows {reference!r}"

    # My bookings: the booking, a link to manage it (no CPR asked), and signing out
    page.goto("/my")
    expect(page.get_by_role("heading", name=T(lang, "My bookings"), exact=True)).to_be_visible()
    expect(page.locator(".bookings")).to_contain_text(reference)
    check_page(page, "my-bookings", lang, keep=False)
    if lang == "ar":   # the other one
        page.set_viewport_size({"width": WIDTHS["phone"][0], "height": WIDTHS["phone"][1]})
        shot(page, "my-bookings-ar-390", keep=True)
    page.get_by_role("link", name=re.compile(re.escape(T(lang, "Manage")) + r"\s+" + re.escape(reference))).click()
    expect(page.locator("h1")).to_have_text(T(lang, "Your booking"))
    expect(page.get_by_role("button", name=T(lang, "Change the time"), exact=True)).to_be_visible()
    assert page.get_by_label(T(lang, "CPR number"), exact=True).count() == 0
    page.get_by_role("link", name=T(lang, "My bookings"), exact=True).click()
    page.get_by_role("button", name=T(lang, "Sign out"), exact=True).click()
    expect(page.get_by_role("heading", name=T(lang, "Signed out"), exact=True)).to_be_visible()
    page.goto("/my")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fmy"))

    assert not [url for url in asked if cpr in url], "a CPR went into an address"
