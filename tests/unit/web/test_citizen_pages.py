"""A citizen signed in with the national eID on the booking site (services/web/signin.py, services/web/booking.py):
the development sign-in by CPR, "My bookings" across directorates, booking and managing without typing a CPR, the
session's token sent only for the citizen's own calls, and never a CPR in a URL. Driven over HTTP on an embedded
suite as a browser without JavaScript does it: plain forms, cookies, redirects."""
import re
import time
import uuid
from html import unescape
from urllib.parse import unquote

import pytest
import requests
from werkzeug.test import EnvironBuilder

from services.web import signin
from shared.auth import Principal
from tests.support.suite import Suite, running

BRANCH, SERVICE, DIRECTORATE = "npra-isa-town", "passport-renewal", "npra"
TIMEOUT = 15


def fresh_cpr() -> str:
    return f"8807{uuid.uuid4().int % 100000:05d}"


# -- the pure helpers ---------------------------------------------------------------------------------------------

def test_a_cpr_is_shown_to_its_owner_masked_but_for_its_last_three_digits():
    assert signin.masked_cpr("880712345") == "\u2022" * 6 + "345"
    assert signin.masked_cpr(None) == ""


def test_only_a_citizen_with_a_cpr_counts_as_one_and_lands_on_their_bookings():
    citizen = Principal(subject="c", roles=frozenset({"citizen"}), cpr="880712345")
    assert signin.is_citizen(citizen) and signin.landing(citizen) == "/my"
    assert not signin.is_citizen(Principal(subject="c", roles=frozenset({"citizen"})))      # no eID claim
    clerk = Principal(subject="k", roles=frozenset({"clerk"}), branches=frozenset({BRANCH}), cpr="880712345")
    assert not signin.is_citizen(clerk) and signin.landing(clerk).startswith("/counter/")


def test_the_development_citizen_token_is_only_for_the_embedded_issuer_and_a_real_cpr(tmp_path):
    embedded = {"MAWAEED_PUBLIC_URL": "http://127.0.0.1:1", "MAWAEED_DATA_DIR": str(tmp_path)}
    token = signin.development_citizen_token(embedded, "880712345", "Fatima Ali")
    cookie = {"Cookie": f"session={token}"}
    principal = signin.session_principal(EnvironBuilder(path="/", headers=cookie).get_request(), embedded)
    assert principal.has("citizen") and principal.cpr == "880712345" and principal.name == "Fatima Ali"
    assert "880712345" not in principal.subject
    with pytest.raises(ValueError):
        signin.development_citizen_token(embedded, "12345", None)
    with pytest.raises(RuntimeError):
        signin.development_citizen_token({**embedded, "MAWAEED_OIDC_ISSUER": "https://idp.example"}, "880712345")


def test_citizens_and_staff_share_one_code_flow(monkeypatch):
    monkeypatch.setitem(signin._discovered, "https://idp.example", {
        "authorization_endpoint": "https://idp.example/auth", "token_endpoint": "https://idp.example/token"})
    config = {"MAWAEED_OIDC_ISSUER": "https://idp.example", "MAWAEED_PUBLIC_URL": "https://mawaeed.example"}
    location = signin.start(config, "/my").headers["Location"]
    assert location.startswith("https://idp.example/auth?") and "scope=openid&" in location
    assert "client_id=mawaeed-web" in location and "code_challenge_method=S256" in location


# -- the pages, on an embedded suite ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("citizen-pages"))) as started:
        yield started


def browser(suite) -> requests.Session:
    """A browser of its own (cookies), that does not follow redirects by itself."""
    session = requests.Session()
    session.base = suite.base_url
    return session


def get(session, path, **kwargs):
    return session.get(f"{session.base}{path}", timeout=TIMEOUT, allow_redirects=False, **kwargs)


def post(session, path, data, **kwargs):
    return session.post(f"{session.base}{path}", data=data, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def sign_in(suite, cpr: str, name: str = "Fatima Ali", next_page: str = "") -> requests.Session:
    session = browser(suite)
    answer = post(session, "/signin/citizen", {"cpr": cpr, "name": name, "next": next_page})
    assert answer.status_code == 303, answer.text
    return session


def free_starts(suite, day: str, branch: str = BRANCH, service: str = SERVICE) -> list[str]:
    answer = requests.get(f"{suite.api}/availability", params={"branch": branch, "service": service, "date": day},
                          timeout=TIMEOUT).json()
    return [s["start"] for s in answer["slots"] if s["bookable"] and s["remaining"] > 0]


def reference_of(html: str) -> str:
    return re.search(r'class="ref">([0-9A-Z]{4}-[0-9A-Z]{4})<', html).group(1)


def test_my_bookings_without_a_citizen_signed_in_sends_to_sign_in(suite):
    answer = get(browser(suite), "/my")
    assert answer.status_code == 303 and answer.headers["Location"] == "/signin?next=%2Fmy"
    page = get(browser(suite), "/signin?next=%2Fmy&lang=en")
    assert page.status_code == 200 and 'action="/signin/citizen"' in page.text
    assert 'name="next" value="/my"' in page.text and 'action="/signin"' in page.text   # staff, as before
    home = get(browser(suite), "/?lang=en")
    assert ">Sign in with eID</a>" in home.text and 'href="/signin?next=%2F' in home.text


def test_the_development_sign_in_checks_the_cpr_and_keeps_it_out_of_urls(suite):
    session = browser(suite)
    refused = post(session, "/signin/citizen?lang=en", {"cpr": "12345", "name": "Fatima Ali", "next": "/my"})
    assert refused.status_code == 422 and "session" not in refused.cookies
    assert 'id="citizen-cpr-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert "12345" not in refused.text   # what was typed is not shown back

    cpr = fresh_cpr()
    signed = post(session, "/signin/citizen", {"cpr": cpr, "name": "Fatima Ali", "next": ""})
    assert signed.status_code == 303 and signed.headers["Location"] == "/my"
    cookie = signed.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert cpr not in signed.headers["Location"]
    elsewhere = post(browser(suite), "/signin/citizen", {"cpr": cpr, "next": "//evil.example/x"})
    assert elsewhere.headers["Location"] == "/my"
    back = post(browser(suite), "/signin/citizen", {"cpr": cpr, "next": "/manage?reference=K7MX-9QRD"})
    assert back.headers["Location"] == "/manage?reference=K7MX-9QRD"


def test_a_signed_in_citizen_books_without_a_cpr_and_finds_it_on_my_bookings(suite):
    cpr = fresh_cpr()
    # an earlier booking at another directorate, made the public way with the CPR
    cid = next(b for b in requests.get(f"{suite.api}/branches", timeout=TIMEOUT).json() if b["directorate"] == "cid")
    cid_service = next(s["id"] for s in cid["services"] if free_starts(suite, "2026-12-15", cid["id"], s["id"]))
    for _ in range(100):   # the booking service's copy of the catalogue may still be catching up
        elsewhere = requests.post(f"{suite.api}/bookings", json={
            "cpr": cpr, "branch": cid["id"], "service": cid_service, "language": "en", "name": "Fatima Ali",
            "start": free_starts(suite, "2026-12-15", cid["id"], cid_service)[0]}, timeout=TIMEOUT)
        if elsewhere.status_code == 201 or (elsewhere.json().get("error") or {}).get("code") not in (
                "UNKNOWN_BRANCH", "UNKNOWN_SERVICE", "SLOT_UNAVAILABLE"):
            break
        time.sleep(0.1)
    assert elsewhere.status_code == 201, elsewhere.text

    session = sign_in(suite, cpr)
    start = free_starts(suite, "2026-12-14")[0]
    shown = get(session, "/", params={"lang": "en", "directorate": DIRECTORATE, "branch": BRANCH, "service": SERVICE,
                                      "date": "2026-12-14", "start": start})
    assert shown.status_code == 200 and 'id="cpr"' not in shown.text and 'value="Fatima Ali"' in shown.text
    assert "Signed in as Fatima Ali (CPR" in unescape(shown.text)
    assert "\u2022" * 6 + cpr[-3:] in unescape(shown.text) and cpr not in shown.text
    form = {"directorate": DIRECTORATE, "branch": BRANCH, "service": SERVICE, "start": start, "name": "Fatima Ali",
            "mobile": "", "email": "", "language": "en"}
    confirm = post(session, "/book?lang=en", {**form, "step": "details"})
    assert confirm.status_code == 200 and cpr not in confirm.text and 'name="cpr"' not in confirm.text
    done = post(session, "/book?lang=en", {**form, "step": "confirm"})
    assert done.status_code == 201, done.text
    reference = reference_of(done.text)
    mine = requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": cpr}, timeout=TIMEOUT)
    assert mine.status_code == 200   # the booking is the signed-in citizen's

    listed = get(session, "/my?lang=en")
    assert listed.status_code == 200 and ">My bookings<" in listed.text
    assert reference in listed.text and elsewhere.json()["reference"] in listed.text   # every directorate
    assert f'href="/manage?reference={reference}&amp;lang=en"' in listed.text
    assert 'action="/signout"' in listed.text and cpr not in listed.text

    opened = get(session, f"/manage?reference={reference}&lang=en")
    assert opened.status_code == 200 and ">Change the time<" in opened.text and 'id="cpr"' not in opened.text
    asked = post(session, "/manage?lang=en", {"reference": reference, "action": "cancel", "branch": BRANCH,
                                              "service": SERVICE})
    assert asked.status_code == 200 and "Yes, cancel the booking" in asked.text
    cancelled = post(session, "/manage?lang=en", {"reference": reference, "action": "cancel-do"})
    assert cancelled.status_code == 200 and "has been cancelled" in cancelled.text
    assert requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": cpr},
                        timeout=TIMEOUT).json()["status"] == "cancelled"

    signed_out = post(session, "/signout", {})
    assert signed_out.status_code == 200
    assert get(session, "/my").status_code == 303


def test_a_staff_session_is_never_sent_for_a_citizens_calls(suite):
    staff = browser(suite)
    staff.cookies.set("session", suite.token("clerk", branches=[BRANCH]))
    assert get(staff, "/my").headers["Location"] == "/signin?next=%2Fmy"
    start = free_starts(suite, "2026-12-14")[1]
    form = {"directorate": DIRECTORATE, "branch": BRANCH, "service": SERVICE, "start": start, "name": "Ali Hasan",
            "mobile": "", "email": "", "language": "en", "step": "confirm"}
    answer = post(staff, "/book?lang=en", form)
    assert answer.status_code == 422 and 'id="cpr-error"' in answer.text   # asked for a CPR like anybody


def test_no_cpr_reaches_the_suites_log(suite):
    cpr = fresh_cpr()
    session = sign_in(suite, cpr, next_page="/my")
    assert get(session, "/my").status_code == 200
    log = (suite.workdir / "suite.log").read_text(errors="replace")
    assert cpr not in log and unquote(cpr) not in log
