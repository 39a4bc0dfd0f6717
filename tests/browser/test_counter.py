"""The counter console in a real browser, in Arabic and in English: a clerk signs in through the development
sign-in form, opens a counter for passport renewal with two walk-in tickets waiting (taken through the API with a
kiosk's token), calls the next one with the keyboard, recalls it (the recall count shows), marks it a no-show, calls
the next, and transfers it (Arabic) or serves it (English); the waiting counts follow every step, and the queue's
API agrees at the end. The waiting lines also refresh by themselves when someone new arrives.

A recall is allowed only a recall interval (60 s of the suite's time) after the call, so this module's suite runs
its clock 20 times faster than real time: the interval passes in 3 s."""
import re
import time
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.kit import BRANCH, LANGUAGES, SERVICE, T, assert_accessible, check_page, shot
from tests.support.suite import Suite, running

pytestmark = pytest.mark.browser

SUITE_NOW = "2026-12-06T09:00:00+03:00"   # a Sunday morning: Isa Town is open and takes walk-ins
SPEED = 20
RECALL_INTERVAL = 60                      # the queue's default recall_interval_seconds
COUNTER = {"ar": "3", "en": "4"}
PASSPORT = {"ar": "تجديد جواز السفر", "en": "Passport renewal"}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """This module's embedded suite, its clock fast (see above)."""
    with running(Suite("embedded", tmp_path_factory.mktemp("browser"), now=SUITE_NOW, speed=SPEED)) as started:
        yield started


def fresh_cpr() -> str:
    return f"8503{uuid.uuid4().int % 100000:05d}"


def walk_in(suite, lang: str) -> str:
    """A walk-in ticket for passport renewal, taken at the kiosk (through the API, with a kiosk's token)."""
    answer = requests.post(f"{suite.api}/branches/{BRANCH}/check-ins", headers=suite.as_("kiosk", branches=[BRANCH]),
                           json={"walk_in": True, "service": SERVICE, "cpr": fresh_cpr(), "language": lang},
                           timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket"]["number"]


def line(page, service: str):
    """The console's waiting line of `service` (its heading has the id line-<service>)."""
    return page.locator(f"article.line:has(#line-{service})")


def waiting(page, lang, service: str, count: int):
    """The console's line of `service` says `count` people wait."""
    expect(page.locator(f"#line-{service} .count")).to_have_text(T(lang, "Waiting: %(count)s") % {"count": count})


def status(page, lang, text: str, **values):
    expect(page.locator("#outcome").get_by_role("status")).to_have_text(T(lang, text) % values)


def loaded(page):
    page.wait_for_function("() => document.readyState === 'complete'")


def sign_in(page, lang, counter):
    """The development sign-in form, reached from the console it sends you back to."""
    page.goto(f"/counter/{BRANCH}?counter={counter}")
    expect(page).to_have_url(re.compile(r"/signin"))
    page.get_by_label(T(lang, "Role"), exact=True).select_option("clerk")
    page.get_by_label(T(lang, "Centre"), exact=True).select_option(BRANCH)
    page.get_by_label(T(lang, "Counter"), exact=True).fill(counter)
    page.get_by_role("button", name=T(lang, "Sign in"), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/counter/{BRANCH}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(T(lang, "Counter console"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_clerk_calls_recalls_marks_a_no_show_and_moves_on(open_page, suite, lang):
    counter = COUNTER[lang]
    first, second = walk_in(suite, lang), walk_in(suite, lang)
    console = open_page(lang, "desktop")
    sign_in(console, lang, counter)

    console.get_by_label(PASSPORT[lang], exact=True).check()
    console.get_by_role("button", name=T(lang, "Open counter"), exact=True).click()
    status(console, lang, "Counter %(counter)s is open.", counter=counter)
    waiting(console, lang, SERVICE, 2)
    expect(line(console, SERVICE).locator("tbody tr")).to_have_count(2)

    # N calls the next, from the keyboard (nothing focused: the page itself listens)
    loaded(console)
    console.keyboard.press("n")
    status(console, lang, "Ticket %(number)s is called to this counter.", number=first)
    called_at = time.monotonic()
    waiting(console, lang, SERVICE, 1)
    expect(console.locator(".current .ticket-number")).to_have_text(first)
    expect(console.locator(".current .recalls")).to_have_text(T(lang, "Recalls so far: %(count)s") % {"count": 0})

    # a recall, once the recall interval has passed on the suite's clock (R in Arabic, the button in English)
    console.wait_for_timeout(max(0.0, RECALL_INTERVAL / SPEED + 0.5 - (time.monotonic() - called_at)) * 1000)
    loaded(console)
    if lang == "ar":
        console.keyboard.press("r")
    else:
        console.get_by_role("button", name=T(lang, "Recall"), exact=True).click()
    status(console, lang, "Ticket %(number)s is called again.", number=first)
    expect(console.locator(".current .recalls")).to_have_text(T(lang, "Recalls so far: %(count)s") % {"count": 1})
    expect(console.locator(".current .ticket-number")).to_have_text(first)
    waiting(console, lang, SERVICE, 1)
    check_page(console, "counter-recall", lang, keep=True)

    # nobody came: a no-show (X in Arabic, the button in English)
    loaded(console)
    if lang == "ar":
        console.keyboard.press("x")
    else:
        console.get_by_role("button", name=T(lang, "No-show"), exact=True).click()
    status(console, lang, "Ticket %(number)s is marked as a no-show.", number=first)
    expect(console.locator(".current")).to_contain_text(T(lang, "No ticket at this counter."))

    # the next one, then transferred (Arabic) or served (English)
    console.get_by_role("button", name=T(lang, "Call next"), exact=True).click()
    status(console, lang, "Ticket %(number)s is called to this counter.", number=second)
    waiting(console, lang, SERVICE, 0)
    expect(line(console, SERVICE)).to_contain_text(T(lang, "Nobody is waiting."))
    if lang == "ar":
        target = console.get_by_label(T(lang, "Transfer to"), exact=True)
        to = target.locator("option").first.get_attribute("value")
        before = int(re.sub(r"\D", "", console.locator(f"#line-{to} .count").inner_text()))
        target.select_option(to)
        console.get_by_role("button", name=T(lang, "Transfer"), exact=True).click()
        status(console, lang, "Ticket %(number)s is transferred.", number=second)
        waiting(console, lang, to, before + 1)
        expect(line(console, to).locator("tbody")).to_contain_text(second)
    else:
        console.get_by_role("button", name=T(lang, "Served"), exact=True).click()
        status(console, lang, "Ticket %(number)s is served.", number=second)
    waiting(console, lang, SERVICE, 0)
    expect(console.locator(".current")).to_contain_text(T(lang, "No ticket at this counter."))
    assert_accessible(console, f"the console after the last step ({lang})")

    # the queue's API agrees
    room = requests.get(f"{suite.api}/branches/{BRANCH}/queue", headers=suite.as_("clerk", branches=[BRANCH]),
                        timeout=10).json()
    calls = {c["number"]: c for c in room["last_called"]}
    assert calls[first]["status"] == "no_show", calls[first]
    assert calls[second]["status"] == ("waiting" if lang == "ar" else "served"), calls[second]
    assert next(c for c in room["counters"] if c["counter"] == counter) == {
        "counter": counter, "services": [SERVICE], "open": True, "serving": None}
    assert next(line for line in room["waiting"] if line["service"] == SERVICE)["count"] == 0


def test_the_waiting_lines_refresh_by_themselves_and_n_calls_the_newcomer(open_page, suite):
    lang, counter = "en", COUNTER["en"]
    console = open_page(lang, "desktop")
    sign_in(console, lang, counter)
    waiting(console, lang, SERVICE, 0)
    newcomer = walk_in(suite, lang)
    waiting_line = line(console, SERVICE)
    expect(console.locator(f"#line-{SERVICE} .count")).to_have_text(T(lang, "Waiting: %(count)s") % {"count": 1}, timeout=8000)
    expect(waiting_line.locator("tbody")).to_contain_text(newcomer)   # no reload: the script fetched the lines
    loaded(console)
    console.keyboard.press("n")
    status(console, lang, "Ticket %(number)s is called to this counter.", number=newcomer)
    waiting(console, lang, SERVICE, 0)
    shot(console, "counter-called-en-1280")
