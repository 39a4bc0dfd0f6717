"""The hall's devices in a real browser, in Arabic and in English: a kiosk and a display opened without a device
token say they are not paired (and what to do), accessibly; opened once with `?device=<token>` they pair, and the
token leaves the address bar for an HttpOnly cookie; once the token is revoked, their next request shows "not
paired" again (and keeps the cookie: a refusal may be a short outage of the issuer's keys), and an open display
shows it by itself, without anyone loading it again (display.js asks /display/<branch>/paired; here every 2 s, the
page's `?pairing_check=2`, instead of every 2 minutes). And the display's clock shows the suite's time (its
MAWAEED_NOW), not the browser's.

Revoking: a device's token stops working when its issuer no longer vouches for it (deploy/README.md: disable the
device's client and its token is refused once it expires; services/web/devices.py: a refused token shows the "not
paired" page). The embedded suite's development issuer can only do that one way before the token expires: its
signing key is withdrawn (a new key on the next start), so every token it signed is refused. The suite is restarted
for that, at the end of the module."""
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.kit import BRANCH, LANGUAGES, T, check_page
from shared.auth import LEEWAY_SECONDS
from shared.issuer import KEY_FILE
from shared.schedule import WEEKDAYS

pytestmark = pytest.mark.browser

SUITE_NOW = "2026-12-06T09:30:00+03:00"   # a Sunday: Isa Town is open
KIOSK_UNPAIRED = "This screen is not paired"
DISPLAY_UNPAIRED = "This screen is not paired yet"
DISPLAY_REFUSED = "This screen is no longer paired"
CHECK_EVERY = 2   # seconds between an open display's pairing checks in these tests (?pairing_check=)

# The browser's own clock wrong (a TV set to 17:42 on another day), running on from there: Date only, as a wrong
# wall clock is (performance.now() counts from the page's start and knows no date)
BROWSER_NOW = "2031-03-15T17:42:00+03:00"
WRONG_CLOCK = """
(() => {
  const Real = Date, shift = Real.parse("%s") - Real.now();
  class Wrong extends Real {
    constructor(...args) { if (args.length) { super(...args); } else { super(Real.now() + shift); } }
    static now() { return Real.now() + shift; }
  }
  window.Date = Wrong;
})();
""" % BROWSER_NOW


def device_cookie(page):
    return next((c for c in page.context.cookies() if c["name"] == "device"), None)


# -- not paired ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_kiosk_and_a_display_without_a_token_say_they_are_not_paired(open_page, lang):
    kiosk = open_page(lang, "phone")
    answer = kiosk.goto(f"/kiosk/{BRANCH}")
    assert answer.status == 401
    expect(kiosk.get_by_role("heading", level=1)).to_have_text(T(lang, KIOSK_UNPAIRED))
    expect(kiosk.get_by_role("link", name=T(lang, "Try again"), exact=True)).to_have_attribute(
        "href", f"/kiosk/{BRANCH}")
    check_page(kiosk, "kiosk-unpaired", lang, keep=False)

    display = open_page(lang, "desktop")
    answer = display.goto(f"/display/{BRANCH}")
    assert answer.status == 401
    expect(display.get_by_role("heading", level=2)).to_have_text(T(lang, DISPLAY_UNPAIRED))
    assert display.locator("#board").count() == 0 and display.locator("#clock").count() == 0
    check_page(display, "display-unpaired", lang, keep=False)


# -- the display's clock ------------------------------------------------------------------------------------------

def suite_minutes(text: str) -> int:
    hours, minutes = map(int, text.split(":"))
    return hours * 60 + minutes


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_display_clock_shows_the_suites_time_not_the_browsers(open_page, suite, lang):
    display = open_page(lang, "desktop", init_script=WRONG_CLOCK)
    display.goto(f"/display/{BRANCH}?device={suite.token('display', branches=[BRANCH])}")
    clock = display.locator("#clock")
    expect(clock).to_have_text(re.compile(r"\d\d:\d\d"))
    browser_time = display.evaluate("""() => new Intl.DateTimeFormat('en-GB', {hour: '2-digit', minute: '2-digit',
        hourCycle: 'h23', timeZone: 'Asia/Bahrain'}).format(new Date())""")
    start = datetime.fromisoformat(SUITE_NOW)
    shown = clock.inner_text().strip()
    # the suite's clock started at 09:30 a few seconds (well under 10 minutes) ago, and runs at real speed
    assert 0 <= suite_minutes(shown) - suite_minutes(f"{start:%H:%M}") < 10, \
        f"the display shows {shown}, not the suite's time (started {start:%H:%M}); the browser says {browser_time}"
    assert browser_time.startswith("17:4"), f"the browser's clock is not the wrong one the test set: {browser_time}"

    # it ticks with the suite's time: the instant it holds moves on with the real seconds, on the suite's day
    first = datetime.fromisoformat(clock.get_attribute("datetime").replace("Z", "+00:00"))
    display.wait_for_timeout(1500)
    second = datetime.fromisoformat(clock.get_attribute("datetime").replace("Z", "+00:00"))
    assert first.date() == start.date() and first - start < timedelta(minutes=10)
    assert timedelta(seconds=0.5) <= second - first <= timedelta(seconds=3), (first, second)
    # and the live stream's first board (which carries the suite's time) kept it there
    expect(display.locator("#connection")).to_be_hidden()
    assert 0 <= suite_minutes(clock.inner_text().strip()) - suite_minutes(f"{start:%H:%M}") < 10

    # today's hours, as the catalogue has them, and "open now"
    week = next(b["opening_hours"] for b in requests.get(f"{suite.api}/branches", timeout=10).json()
                if b["id"] == BRANCH)
    periods = next(d["periods"] for d in week if d["day"] == WEEKDAYS[start.weekday()])
    expect(display.locator("#open-state")).to_have_text(T(lang, "Open now"))
    for period in periods:
        expect(display.locator("#hours-times")).to_contain_text(f"{period['opens']}–{period['closes']}")
    check_page(display, "display-hours", lang, keep=False)


# -- pairing, and a revoked token ------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_open_display_whose_token_expires_says_it_is_no_longer_paired_by_itself(open_page, suite, lang):
    """The live stream is public and never asks for the token: the page's own pairing check sees it expire."""
    display = open_page(lang, "desktop")
    requests_seen = []
    display.on("request", lambda r: requests_seen.append(r.url))
    # good for about 10 s more (the verifier allows LEEWAY_SECONDS of clock skew after `exp`)
    token = suite.token("display", branches=[BRANCH], ttl_seconds=-(LEEWAY_SECONDS - 10))
    answer = display.goto(f"/display/{BRANCH}?device={token}&pairing_check={CHECK_EVERY}")
    assert answer.status == 200, answer.status
    assert "device=" not in display.url and f"pairing_check={CHECK_EVERY}" in display.url
    expect(display.locator("#board")).to_be_visible()
    expect(display.locator("#board")).to_have_attribute("data-pairing-check", str(CHECK_EVERY))
    expect(display.locator("#connection")).to_be_hidden()   # the stream is up, and stays up: only the check can tell

    # nobody touches the page: within the token's last seconds and a few checks, it turns itself off
    expect(display.get_by_role("heading", level=2, name=T(lang, DISPLAY_REFUSED))).to_be_visible(timeout=30_000)
    assert display.locator("#board").count() == 0
    assert sum(f"/display/{BRANCH}/paired" in url for url in requests_seen) >= 2, "the page never checked itself"
    cookie = device_cookie(display)
    assert cookie and cookie["value"] == token, "the refused token was dropped: pairing again replaces it"
    check_page(display, "display-expired", lang, keep=False)


def test_devices_pair_with_a_token_kept_in_a_cookie_and_a_revoked_token_unpairs_them(open_page, suite):
    screens = {}
    for lang, kind in (("ar", "kiosk"), ("en", "kiosk"), ("ar", "display"), ("en", "display")):
        page = open_page(lang, "phone" if kind == "kiosk" else "desktop")
        token = suite.token(kind, branches=[BRANCH])
        answer = page.goto(f"/{kind}/{BRANCH}?device={token}" + (f"&pairing_check={CHECK_EVERY}"
                                                                  if kind == "display" else ""))
        assert answer.status == 200, f"{kind} ({lang}) was not paired: {answer.status}"
        assert "device=" not in page.url and token not in page.url, "the device token stays in the address bar"
        assert page.evaluate("() => location.search.includes('device=')") is False
        cookie = device_cookie(page)
        assert cookie and cookie["value"] == token and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        assert page.evaluate("() => document.cookie").find(token) == -1   # out of the scripts' reach too
        if kind == "kiosk":
            expect(page.get_by_label(T(lang, "Booking reference"), exact=True)).to_be_visible()
        else:
            expect(page.locator("#board")).to_be_visible()
        page.reload()   # the cookie alone keeps it paired
        assert "device=" not in page.url
        expect(page.locator("#board") if kind == "display" else
               page.get_by_label(T(lang, "Booking reference"), exact=True)).to_be_visible()
        screens[(lang, kind)] = page, token

    # revoked: the development issuer's signing key is withdrawn; the suite starts again with a new one
    (Path(suite.env["MAWAEED_DATA_DIR"]) / KEY_FILE).unlink()
    suite.restart()
    refused = requests.get(f"{suite.api}/branches/{BRANCH}/queue",
                           headers={"Authorization": f"Bearer {screens['en', 'kiosk'][1]}"},
                           timeout=10)
    assert refused.status_code == 401, "the API still takes the revoked token"

    for (lang, kind), (page, token) in screens.items():
        if kind == "kiosk":
            answer = page.reload()   # the kiosk's next request (a step, or its return to the first screen)
            assert "device=" not in page.url
            assert answer.status == 401
            expect(page.get_by_role("heading", level=1)).to_have_text(T(lang, KIOSK_UNPAIRED))
            expect(page.get_by_role("alert")).to_contain_text(T(lang, "Its pairing has expired or was withdrawn."))
        else:  # the open display, left alone: it checks its pairing and loads itself again
            expect(page.get_by_role("heading", level=2, name=T(lang, DISPLAY_REFUSED))).to_be_visible(timeout=30_000)
            assert "device=" not in page.url
            assert page.locator("#board").count() == 0
        cookie = device_cookie(page)   # kept: a refusal may be the issuer's keys out of reach for a moment
        assert cookie and cookie["value"] == token, f"{kind} ({lang}): the refused token was dropped"
        if lang == "ar":
            check_page(page, f"{kind}-revoked", lang, keep=False)
