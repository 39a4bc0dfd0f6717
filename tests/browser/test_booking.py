"""Booking on the site as people without a mouse or without scripts do it, in Arabic and in English:
- the whole booking with the keyboard alone (Tab, Shift+Tab, Enter, Space, arrow keys, and typing into the text
  fields), each stop showing that it has the focus;
- the whole booking with JavaScript off (plain forms);
- wrong details: the errors next to their fields, linked with aria-describedby and aria-invalid, in the page's
  language, and an error summary; checked by axe-core in that state.
Bookings here are for Monday 2026-12-07, the next working day."""
import re
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.kit import BRANCH, LANGUAGES, SERVICE, T, check_page, focused_is_visible, shoot_widths, tab_to

pytestmark = pytest.mark.browser

DAY = "2026-12-07"
REFERENCE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}\Z")


def fresh_cpr() -> str:
    return f"8807{uuid.uuid4().int % 100000:05d}"


def reference_shown(page, lang) -> str:
    term = page.locator("dt", has_text=re.compile(rf"^\s*{re.escape(T(lang, 'Reference'))}\s*$")).first
    return term.locator("xpath=following-sibling::dd[1]").inner_text().strip()


# -- the keyboard alone ----------------------------------------------------------------------------------------

def tab_and_check(page, locator, what):
    tab_to(page, locator)
    assert focused_is_visible(page), f"{what} has the focus but does not show it"


def choose_with_arrows(page, select, value: str, what: str):
    """Tab to a closed <select> and move through its options with the arrow keys until `value` is chosen."""
    tab_and_check(page, select, what)
    options = select.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert value in options, f"{what}: {value!r} is not among {options}"
    for _ in range(len(options) + 1):
        if select.input_value() == value:
            return
        current = options.index(select.input_value())
        page.keyboard.press("ArrowDown" if options.index(value) > current else "ArrowUp")
    assert select.input_value() == value, f"{what}: the arrow keys did not reach {value!r}"


def press_and_load(page, key):
    """Press a key that submits a form, and wait for the next page. (Not page.expect_navigation(): under
    eventlet's monkey patching, tests/conftest.py, it never returns.)"""
    before = page.evaluate("() => performance.timeOrigin")
    page.keyboard.press(key)
    page.wait_for_function("origin => performance.timeOrigin !== origin", arg=before)
    page.wait_for_function("() => document.readyState === 'complete'")


def submit_with_enter(page, button, what):
    tab_and_check(page, button, what)
    press_and_load(page, "Enter")


def type_into(page, field, text, what):
    tab_and_check(page, field, what)
    page.keyboard.type(text)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_whole_booking_with_the_keyboard_alone(open_page, suite, lang):
    page = open_page(lang, "desktop" if lang == "en" else "phone", "/")
    go_on = page.get_by_role("button", name=T(lang, "Continue"), exact=True)

    # the skip link comes first and leads to the content
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('href')") == "#main", \
        "the first Tab stop is not the skip link"

    choose_with_arrows(page, page.get_by_label(T(lang, "Directorate"), exact=True), "npra", "Directorate")
    submit_with_enter(page, go_on, "Continue")
    choose_with_arrows(page, page.get_by_label(T(lang, "Centre"), exact=True), BRANCH, "Centre")
    submit_with_enter(page, go_on, "Continue")
    choose_with_arrows(page, page.get_by_label(T(lang, "Service"), exact=True), SERVICE, "Service")
    submit_with_enter(page, go_on, "Continue")

    # the day: the month's calendar is one Tab stop, the arrow keys move between its days, Space chooses
    tab_and_check(page, page.locator('button[name="date"][tabindex="0"]'), "the calendar")
    for _ in range(40):
        focused = page.evaluate("() => document.activeElement.value")
        if focused == DAY:
            break
        later = DAY > focused   # later days are to the left in Arabic, to the right in English
        page.keyboard.press(("ArrowLeft" if later else "ArrowRight") if lang == "ar" else
                            ("ArrowRight" if later else "ArrowLeft"))
    assert page.evaluate("() => document.activeElement.value") == DAY, "the arrow keys do not reach the day"
    assert focused_is_visible(page), "the calendar's day has the focus but does not show it"
    press_and_load(page, "Space")

    times = page.get_by_label(T(lang, "Time"), exact=True)
    first = times.locator("option").first.get_attribute("value")
    choose_with_arrows(page, times, first, "Time")
    submit_with_enter(page, go_on, "Continue")

    cpr = fresh_cpr()
    type_into(page, page.get_by_label(T(lang, "Full name"), exact=True),
              "مريم حسن" if lang == "ar" else "Maryam Hassan", "Full name")
    type_into(page, page.get_by_label(T(lang, "CPR number"), exact=True), cpr, "CPR number")
    type_into(page, page.get_by_label(T(lang, "Mobile"), exact=True), "+97336123456", "Mobile")
    type_into(page, page.get_by_label(T(lang, "Email"), exact=True), "maryam@example.com", "Email")
    choose_with_arrows(page, page.get_by_label(T(lang, "Language"), exact=True), lang, "Language")
    submit_with_enter(page, go_on, "Continue")

    submit_with_enter(page, page.get_by_role("button", name=T(lang, "Confirm booking"), exact=True),
                      "Confirm booking")
    reference = reference_shown(page, lang)
    assert REFERENCE.match(reference), f"the confirmation shows {reference!r}"
    answer = requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": cpr}, timeout=10)
    assert answer.status_code == 200 and answer.json()["start"] == first, answer.text


# -- without JavaScript --------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_booking_without_javascript(open_page, suite, lang):
    page = open_page(lang, "phone", "/", js=False)
    go_on = page.get_by_role("button", name=T(lang, "Continue"), exact=True)
    page.get_by_label(T(lang, "Directorate"), exact=True).select_option("npra")
    go_on.click()
    page.get_by_label(T(lang, "Centre"), exact=True).select_option(BRANCH)
    go_on.click()
    page.get_by_label(T(lang, "Service"), exact=True).select_option(SERVICE)
    go_on.click()
    page.get_by_label(T(lang, "Date"), exact=True).fill(DAY)
    go_on.click()
    times = page.get_by_label(T(lang, "Time"), exact=True)
    times.select_option(index=1)
    go_on.click()
    cpr = fresh_cpr()
    page.get_by_label(T(lang, "Full name"), exact=True).fill("Ali Hasan")
    page.get_by_label(T(lang, "CPR number"), exact=True).fill(cpr)
    go_on.click()
    page.get_by_role("button", name=T(lang, "Confirm booking"), exact=True).click()
    reference = reference_shown(page, lang)
    assert REFERENCE.match(reference), f"the confirmation shows {reference!r}"
    expect(page.locator("dd.address")).to_have_text(   # where to go, in the page's language
        {"ar": "مبنى 123، طريق 613، مجمع 806، مدينة عيسى", "en": "Building 123, Road 613, Block 806, Isa Town"}[lang])
    assert requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": cpr}, timeout=10).status_code == 200


# -- wrong details ---------------------------------------------------------------------------------------------

def to_details(page, lang):
    page.goto("/?" + "&".join(f"{k}={v}" for k, v in {
        "directorate": "npra", "branch": BRANCH, "service": SERVICE, "date": DAY}.items()))
    times = page.get_by_label(T(lang, "Time"), exact=True)
    times.select_option(index=2)
    page.get_by_role("button", name=T(lang, "Continue"), exact=True).click()


def assert_field_error(page, lang, label: str):
    field = page.get_by_label(T(lang, label), exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    ids = (field.get_attribute("aria-describedby") or "").split()
    texts = [page.locator(f"#{i}").inner_text().strip() for i in ids if "error" in i and page.locator(f"#{i}").count()]
    assert texts and all(texts), f"{label}: no error text linked with aria-describedby (ids {ids})"
    return texts[0]


@pytest.mark.parametrize("js", [False, True], ids=["no-js", "js"])
@pytest.mark.parametrize("lang", LANGUAGES)
def test_wrong_details_are_shown_by_their_fields(open_page, lang, js):
    page = open_page(lang, "phone", js=js)
    to_details(page, lang)
    page.get_by_label(T(lang, "CPR number"), exact=True).fill("12345")
    page.get_by_label(T(lang, "Email"), exact=True).fill("not-an-address")
    # Leave the field first: with scripts, leaving it shows its error above the button and moves the button, so
    # a click made while the field still has the focus misses it (mousedown and mouseup land on different places).
    page.keyboard.press("Tab")
    page.get_by_role("button", name=T(lang, "Continue"), exact=True).click()
    message = assert_field_error(page, lang, "CPR number")
    assert message == T(lang, "Enter your CPR number: 9 digits, the first four the year and month of your birth.")
    assert_field_error(page, lang, "Full name")
    assert_field_error(page, lang, "Email")
    if not js:   # (page.evaluate never returns on a page without scripts: axe-core runs in the other case)
        expect(page.get_by_role("alert")).to_contain_text(T(lang, "There is a problem"))
        shoot_widths(page, "booking-details-errors-nojs", lang, keep=False)
    else:
        check_page(page, "booking-details-errors", lang)
