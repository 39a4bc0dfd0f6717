"""The kiosk pages (services/web/kiosk.py) and device pairing (services/web/devices.py), on an embedded suite
started as a newcomer starts it, driven over HTTP as a kiosk's browser drives them (forms, no scripts); and the
Arabic catalogue of the kiosk, ticket and feedback templates."""
import re
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.web import devices
from services.web.client import ApiError
from services.web.devices import paired
from tests.support.suite import Suite, running

BRANCH, OTHER = "npra-isa-town", "npra-muharraq"
PASSPORT = "passport-renewal"
TIMEOUT = 15
WEB = Path(__file__).parents[3] / "services" / "web"
MINE = ("kiosk", "ticket", "feedback")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("kiosk"))) as started:
        yield started


@pytest.fixture(scope="module")
def kiosk(suite):
    return suite.token("kiosk", branches=[BRANCH])


def fresh_cpr(yymm: str = "9001") -> str:
    return f"{yymm}{uuid.uuid4().int % 100000:05d}"


def page(suite, path: str, device: str | None = None, method: str = "GET", data=None, **kwargs):
    return requests.request(method, suite.base_url + path, data=data, timeout=TIMEOUT, allow_redirects=False,
                            cookies={"device": device} if device else None, **kwargs)


def assert_no_inline_code(html: str) -> None:
    """What the content security policy would block: inline scripts, style attributes and blocks."""
    assert "<style" not in html and " style=" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))


# -- pairing ------------------------------------------------------------------------------------------

def test_a_kiosk_is_paired_once_by_its_address_and_keeps_the_token_in_a_strict_cookie(suite, kiosk):
    paired = page(suite, f"/kiosk/{BRANCH}?device={kiosk}&lang=en")
    assert paired.status_code == 303
    assert paired.headers["Location"] == f"/kiosk/{BRANCH}?lang=en"  # the token leaves the address bar
    cookie = paired.headers["Set-Cookie"]
    assert cookie.startswith(f"device={kiosk};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/" in cookie

    first = page(suite, f"/kiosk/{BRANCH}?lang=en", device=kiosk)
    assert first.status_code == 200
    assert '<html lang="en" dir="ltr">' in first.text and "Welcome" in first.text
    assert_no_inline_code(first.text)


def test_an_unpaired_or_refused_screen_says_so_and_keeps_the_token(suite, kiosk):
    nothing = page(suite, f"/kiosk/{BRANCH}")
    assert nothing.status_code == 401 and "هذه الشاشة غير مربوطة" in nothing.text  # Arabic first
    assert '<html lang="ar" dir="rtl">' in nothing.text

    claims = jwt.decode(kiosk, options={"verify_signature": False})
    forged = jwt.encode({**claims, "sub": "kiosk-forged"}, "not-the-issuer-key", algorithm="HS256")
    refused = page(suite, f"/kiosk/{BRANCH}?lang=en", device=forged)
    assert refused.status_code == 401 and "This screen is not paired" in refused.text
    assert "expired or was withdrawn" in refused.text
    # the cookie stays (the API's 401 may be a short outage of the issuer's keys); pairing again replaces it
    assert "device=" not in refused.headers.get("Set-Cookie", "")
    # the form's POST with a refused token says the same
    posted = page(suite, f"/kiosk/{BRANCH}/walk-in?lang=en", device=forged, method="POST",
                  data={"service": PASSPORT, "cpr": fresh_cpr()})
    assert posted.status_code == 401 and "This screen is not paired" in posted.text

    garbage = page(suite, f"/kiosk/{BRANCH}?device=not%20a%20token")
    assert garbage.status_code == 303 and "device=;" in garbage.headers["Set-Cookie"].replace('""', "")


class FakeKiosk:
    """A page family whose one page the API refuses as it is told to."""
    config: dict = {}

    def __init__(self, refusal: ApiError):
        self.refusal = refusal

    @paired
    def page(self, request, branch):
        raise self.refusal


OUT_OF_REACH = ApiError(401, {"code": "UNAUTHENTICATED", "message": "The bearer token cannot be checked now (the "
                                                                    "issuer's keys are out of reach).",
                              "message_ar": "يلزم تسجيل الدخول برمز دخول صالح."})


def device_request(path: str, token: str | None = "a.b.c") -> Request:
    return Request(EnvironBuilder(path=path.split("?")[0], query_string=path.partition("?")[2],
                                  headers={"Cookie": f"device={token}"} if token else {}).get_environ())


def test_a_refusal_while_the_issuers_keys_are_out_of_reach_does_not_unpair_the_kiosk():
    shown = FakeKiosk(OUT_OF_REACH).page(device_request(f"/kiosk/{BRANCH}?lang=en"), BRANCH)
    html = shown.get_data(as_text=True)
    assert shown.status_code == 503 and "This screen cannot check its pairing now" in html
    assert "stays paired" in html and '<meta http-equiv="refresh" content="30">' in html  # tries again by itself
    assert not any(c.startswith("device=") for c in shown.headers.getlist("Set-Cookie"))
    arabic = FakeKiosk(OUT_OF_REACH).page(device_request(f"/kiosk/{BRANCH}"), BRANCH).get_data(as_text=True)
    assert "لا تستطيع هذه الشاشة التحقق من ربطها الآن" in arabic   # Arabic first

    revoked = ApiError(401, {"code": "UNAUTHENTICATED", "message": "The bearer token is not valid: it was signed "
                                                                   "with a key the issuer does not publish."})
    shown = FakeKiosk(revoked).page(device_request(f"/kiosk/{BRANCH}?lang=en"), BRANCH)
    assert shown.status_code == 401 and "expired or was withdrawn" in shown.get_data(as_text=True)
    assert not any(c.startswith("device=") for c in shown.headers.getlist("Set-Cookie"))  # kept all the same


def test_keys_out_of_reach_are_told_by_the_apis_words_or_by_asking_the_keys(tmp_path, monkeypatch):
    from shared.issuer import DevelopmentIssuer
    config = {"MAWAEED_PUBLIC_URL": "http://mawaeed.test", "MAWAEED_DATA_DIR": str(tmp_path / "suite")}
    token = DevelopmentIssuer(config["MAWAEED_DATA_DIR"], config["MAWAEED_PUBLIC_URL"]).issue(
        "kiosk", branches=[BRANCH])
    assert devices.keys_out_of_reach(config, token, OUT_OF_REACH)
    assert not devices.keys_out_of_reach(config, token, ApiError(401, {"message": "it has expired"}))
    assert not devices.keys_out_of_reach(config, "a.b.c") and not devices.keys_out_of_reach(config, None)
    # an issuer that does not answer (connection refused), and a key set that cannot be fetched
    assert devices.keys_out_of_reach({**config, "MAWAEED_OIDC_ISSUER": "http://127.0.0.1:9/realms/x"}, token)

    class Unreachable:
        def signing_key(self, kid):
            raise jwt.PyJWKClientConnectionError("Fail to fetch data from the url")
    monkeypatch.setattr(devices, "verifier_for", lambda config: type("V", (), {"keys": Unreachable()})())
    assert devices.keys_out_of_reach(config, token)


def test_the_kiosk_returns_to_its_first_screen_by_itself_so_a_revoked_token_shows_within_a_minute():
    """The kiosk needs no pairing check of its own (the display does, display.js): left alone, kiosk.js loads
    the first screen again, a request that shows "not paired" once the token is refused."""
    script = (WEB / "static" / "js" / "kiosk.js").read_text(encoding="utf-8")
    assert "IDLE_SECONDS = 60" in script and "window.location.assign(home)" in script
    assert 'data-home="/kiosk/{{ branch.id }}"' in (WEB / "templates" / "kiosk_layout.html").read_text()


def test_a_kiosk_of_another_branch_or_a_display_is_told_it_is_paired_elsewhere(suite):
    for device in (suite.token("kiosk", branches=[OTHER]), suite.token("display", branches=[BRANCH])):
        shown = page(suite, f"/kiosk/{BRANCH}?lang=en", device=device)
        assert shown.status_code == 403 and "This screen is paired elsewhere" in shown.text
    elsewhere = page(suite, f"/kiosk/{BRANCH}/walk-in?lang=en", suite.token("kiosk", branches=[OTHER]), "POST",
                     {"service": PASSPORT, "cpr": fresh_cpr()})
    assert elsewhere.status_code == 403 and "paired elsewhere" in elsewhere.text


def test_an_unknown_branch(suite):
    shown = page(suite, "/kiosk/no-such-branch?lang=en", device=suite.token("clerk", branches=["no-such-branch"]))
    assert shown.status_code == 404 and "Unknown centre" in shown.text


# -- the first screen and checking in with a booking ------------------------------------------------------

def test_the_first_screen_is_ready_for_a_scanner(suite, kiosk):
    shown = page(suite, f"/kiosk/{BRANCH}", device=kiosk)
    html = shown.text
    assert shown.status_code == 200 and '<html lang="ar" dir="rtl">' in html
    reference = re.search(r"<input id=\"reference\"[^>]*>", html, re.S)[0]
    assert "autofocus" in reference and 'name="reference"' in reference
    assert '<label for="reference">رقم الحجز</label>' in html and '<label for="cpr">الرقم الشخصي</label>' in html
    assert f'action="/kiosk/{BRANCH}/check-in"' in html and f'href="/kiosk/{BRANCH}/walk-in"' in html
    assert 'class="keypad"' in html and "hidden" in re.search(r'<div class="keypad"[^>]*>', html)[0]
    assert '<script src="/static/js/kiosk.js"></script>' in html and '/static/css/kiosk.css' in html
    assert page(suite, "/static/js/kiosk.js").status_code == 200
    assert "@page { size: 80mm auto" in page(suite, "/static/css/kiosk.css").text


def test_a_scanned_reference_asks_for_the_cpr_next_without_calling_the_api(suite, kiosk):
    shown = page(suite, f"/kiosk/{BRANCH}/check-in?lang=en", kiosk, "POST", {"reference": "k7mx9qrd", "cpr": ""})
    assert shown.status_code == 422
    html = shown.text
    assert 'value="K7MX9QRD"' in html  # kept, as scanned
    cpr = re.search(r"<input id=\"cpr\"[^>]*>", html, re.S)[0]
    assert 'aria-invalid="true"' in cpr and 'aria-describedby="cpr-error"' in cpr and "autofocus" in cpr
    assert '<p class="error" id="cpr-error">Type your CPR number.</p>' in html
    assert "autofocus" not in re.search(r"<input id=\"reference\"[^>]*>", html, re.S)[0]

    arabic = page(suite, f"/kiosk/{BRANCH}/check-in", kiosk, "POST", {"reference": "", "cpr": "12"})
    assert "امسح رمز QR الخاص بحجزك" in arabic.text and "يتكون الرقم الشخصي من 9 أرقام." in arabic.text


def test_a_reference_that_does_not_match_shows_the_apis_refusal_in_the_pages_language(suite, kiosk):
    for lang, words in (("en", "booking"), ("ar", "الحجز")):
        shown = page(suite, f"/kiosk/{BRANCH}/check-in?lang={lang}", kiosk, "POST",
                     {"reference": "https://mawaeed.example.bh/b/ACDE-FGHJ", "cpr": fresh_cpr()})
        assert shown.status_code == 404, shown.text
        assert 'role="alert"' in shown.text and words in shown.text.split('role="alert"')[1][:400]
        assert 'value="ACDE-FGHJ"' in shown.text  # the reference found in what the scanner typed


def test_a_booking_checks_in_at_the_kiosk_and_gets_its_ticket(suite, kiosk):
    cpr = fresh_cpr("8802")
    booked = requests.post(f"{suite.api}/bookings", timeout=TIMEOUT, json={
        "cpr": cpr, "branch": BRANCH, "service": PASSPORT, "start": "2026-12-06T10:20:00+03:00",
        "name": "Kiosk Person", "language": "en"})
    assert booked.status_code == 201, booked.text
    reference = booked.json()["reference"]
    too_early = page(suite, f"/kiosk/{BRANCH}/check-in?lang=en", kiosk, "POST", {"reference": reference, "cpr": cpr})
    assert too_early.status_code in (404, 409) and 'role="alert"' in too_early.text  # unknown yet, or too early
    suite.restart(now="2026-12-06T10:00:00+03:00")

    deadline = time.monotonic() + 10
    while True:  # the queue learns the booking from booking's events
        done = page(suite, f"/kiosk/{BRANCH}/check-in?lang=en", kiosk, "POST",
                    {"reference": reference.lower().replace("-", " "), "cpr": cpr})
        if done.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert done.status_code == 303, done.text
    location = done.headers["Location"]
    assert location.startswith(f"/kiosk/{BRANCH}/ticket/")
    ticket = page(suite, location + "?lang=en", device=kiosk)
    assert ticket.status_code == 200
    assert re.search(r'class="ticket-number" dir="ltr">.*P-\d{3}</p>', ticket.text)
    assert "Passport renewal" in ticket.text and "Your place in line" in ticket.text
    token = location.rsplit("/", 1)[1]
    # the same booking again: the same ticket, the same link
    again = page(suite, f"/kiosk/{BRANCH}/check-in", kiosk, "POST", {"reference": reference, "cpr": cpr})
    assert again.status_code == 303 and again.headers["Location"] == location
    assert page(suite, f"/t/{token}").status_code == 200


# -- a walk-in ticket -----------------------------------------------------------------------------------

def test_a_walk_in_chooses_a_service_and_a_priority_and_gets_a_printable_ticket_with_its_live_link(suite, kiosk):
    form = page(suite, f"/kiosk/{BRANCH}/walk-in?lang=en", device=kiosk)
    assert form.status_code == 200
    assert f'<label for="service-{PASSPORT}">Passport renewal</label>' in form.text
    assert '<label for="priority-elderly">Elderly</label>' in form.text
    assert re.search(r'id="priority-none"[^>]*checked', form.text)
    assert_no_inline_code(form.text)

    missing = page(suite, f"/kiosk/{BRANCH}/walk-in?lang=en", kiosk, "POST", {"cpr": fresh_cpr(), "priority": "elderly"})
    assert missing.status_code == 422 and "Choose the service you came for." in missing.text
    assert re.search(r'id="priority-elderly"[^>]*checked', missing.text)  # kept
    assert 'aria-describedby="service-error"' in missing.text

    taken = page(suite, f"/kiosk/{BRANCH}/walk-in", kiosk, "POST",
                 {"service": PASSPORT, "priority": "elderly", "cpr": fresh_cpr()})
    assert taken.status_code == 303, taken.text
    token = taken.headers["Location"].rsplit("/", 1)[1]
    ticket = page(suite, taken.headers["Location"], device=kiosk)
    html = ticket.text
    assert ticket.status_code == 200 and "تذكرتك" in html and "<svg" in html and 'class="qr"' in html
    assert 'role="img"' in html and 'id="print-ticket" hidden' in html
    assert_no_inline_code(html)
    number = re.search(r"(P-\d{3})</p>", html)[1]
    live = requests.get(f"{suite.api}/tickets/by-token/{token}", timeout=TIMEOUT).json()
    assert live["number"] == number and live["status"] == "waiting" and "priority" not in live

    # another branch's kiosk page does not show this ticket
    assert page(suite, f"/kiosk/{OTHER}/ticket/{token}", suite.token("kiosk", branches=[OTHER])).status_code == 404


# -- the Arabic catalogue of these pages ---------------------------------------------------------------

def extracted() -> dict:
    found = {}
    for path in sorted((WEB / "templates").glob("*.html")):
        if path.name.startswith(MINE):
            with path.open("rb") as template:
                for line, _, message, _ in babel_extract(template, ("_", "gettext", "ngettext"), [],
                                                         {"extensions": "jinja2.ext.i18n", "trim_blocks": "True",
                                                          "lstrip_blocks": "True"}):
                    found[message if isinstance(message, str) else message[0]] = f"{path.name}:{line}"
    return found


def test_every_text_of_these_pages_has_its_arabic():
    with (WEB / "translations" / "ar" / "kiosk.po").open("rb") as po:
        catalogue = {m.id: m.string for m in read_po(po, locale="ar") if m.id}
    with (WEB / "translations" / "ar" / "site.po").open("rb") as po:
        catalogue.update({m.id: m.string for m in read_po(po, locale="ar") if m.id})
    messages = extracted()
    assert len(messages) > 50
    missing = {m: where for m, where in messages.items() if not catalogue.get(m)}
    assert not missing
    for message in messages:  # the same placeholders in both languages
        assert sorted(re.findall(r"%\(\w+\)s", message)) == sorted(re.findall(r"%\(\w+\)s", catalogue[message]))
