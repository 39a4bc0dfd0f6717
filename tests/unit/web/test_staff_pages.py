"""Staff sign-in (services/web/signin.py), the counter console and the centre manager's page (services/web/staff.py).

Sign-in against an external issuer is tested on the pages' methods with a small OpenID Connect provider served
on a loopback port (authorization code with PKCE); the development sign-in and the pages are tested through the
embedded suite, as a browser without JavaScript uses them: plain form posts, cookies, redirects."""
import base64
import glob
import hashlib
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jinja2.ext import babel_extract
from jwt.algorithms import RSAAlgorithm
from werkzeug.test import EnvironBuilder

from services.web import signin
from services.web.i18n import catalogue
from services.web.staff import StaffPages, bar_chart, column_chart
from tests.support.suite import Suite, running

BRANCH = "npra-isa-town"
TEMPLATES = Path(__file__).parents[3] / "services" / "web" / "templates"


# -- an identity provider for the authorization code flow -------------------------------------------------

class Provider:
    """Discovery, keys, an authorization code per test, and a token endpoint that checks the PKCE verifier."""

    def __init__(self):
        self.key, self.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), uuid.uuid4().hex[:8]
        self.codes = {}       # code -> (code_challenge, redirect_uri, client_id)
        self.exchanges = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    self._json(200, {"issuer": provider.url, "jwks_uri": f"{provider.url}/jwks",
                                     "authorization_endpoint": f"{provider.url}/auth",
                                     "token_endpoint": f"{provider.url}/token"})
                elif self.path == "/jwks":
                    self._json(200, {"keys": [dict(RSAAlgorithm.to_jwk(provider.key.public_key(), as_dict=True),
                                                   kid=provider.kid, alg="RS256", use="sig")]})
                else:
                    self._json(404, {})

            def do_POST(self):
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
                provider.exchanges.append(form)
                expected = provider.codes.pop(form.get("code"), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if expected is None or form.get("grant_type") != "authorization_code" or challenge != expected[0] \
                        or form.get("redirect_uri") != expected[1] or form.get("client_id") != expected[2]:
                    self._json(400, {"error": "invalid_grant"})
                    return
                self._json(200, {"access_token": provider.token("clerk", branches=[BRANCH], counter="5"),
                                 "token_type": "Bearer", "expires_in": 300})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, role, **claims):
        now = int(time.time())
        return jwt.encode({"iss": self.url, "aud": "mawaeed", "sub": f"{role}-1", "iat": now, "nbf": now,
                           "exp": now + 300, "roles": [role], **claims}, self.key, algorithm="RS256",
                          headers={"kid": self.kid})

    def authorize(self, redirect_to: str) -> str:
        """What the issuer does at its authorization endpoint for a person who signs in: a code, back."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect_to).query).items()}
        code = uuid.uuid4().hex
        self.codes[code] = (query["code_challenge"], query["redirect_uri"], query["client_id"])
        return f"/signin/callback?code={code}&state={query['state']}"


@pytest.fixture(scope="module")
def provider():
    started = Provider()
    yield started
    started.server.shutdown()


def pages_for(config: dict) -> StaffPages:
    pages = StaffPages()
    pages.config = config
    return pages


def request(path: str, method: str = "GET", cookies: dict | None = None, data=None):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())} if cookies else {}
    return EnvironBuilder(path=path, method=method, headers=headers, data=data).get_request()


def cookies_of(response) -> dict:
    """name -> the whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in response.headers.getlist("Set-Cookie")}


@pytest.fixture
def external(provider, tmp_path):
    return {"MAWAEED_OIDC_ISSUER": provider.url, "MAWAEED_OIDC_AUDIENCE": "mawaeed", "MAWAEED_OIDC_WEB_CLIENT_ID":
            "mawaeed-web", "MAWAEED_PUBLIC_URL": "https://mawaeed.example", "MAWAEED_DATA_DIR": str(tmp_path),
            "MAWAEED_API_URL": "http://127.0.0.1:9"}


def test_with_an_external_issuer_sign_in_is_the_code_flow_with_pkce(provider, external):
    pages = pages_for(external)
    started = pages.signin_page(request("/signin?next=/counter/npra-isa-town%3Fcounter%3D5"))
    assert started.status_code == 303
    to = urlsplit(started.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(to.query).items()}
    assert f"{to.scheme}://{to.netloc}{to.path}" == f"{provider.url}/auth"
    assert (query["response_type"], query["client_id"], query["redirect_uri"], query["code_challenge_method"]) == \
        ("code", "mawaeed-web", "https://mawaeed.example/signin/callback", "S256")
    assert len(query["state"]) >= 20 and len(query["code_challenge"]) == 43
    flow = cookies_of(started)[signin.FLOW_COOKIE]
    assert "HttpOnly" in flow and "Secure" in flow and "SameSite=Lax" in flow and "Path=/signin" in flow
    flow_value = flow.split("=", 1)[1].split(";", 1)[0]

    back = pages.signin_callback(request(provider.authorize(started.headers["Location"]),
                                         cookies={signin.FLOW_COOKIE: flow_value}))
    assert back.status_code == 303 and back.headers["Location"] == "/counter/npra-isa-town?counter=5"
    session = cookies_of(back)["session"]
    assert "HttpOnly" in session and "Secure" in session and "SameSite=Lax" in session and "Path=/" in session
    assert provider.exchanges[-1]["grant_type"] == "authorization_code"
    token = session.split("=", 1)[1].split(";", 1)[0]
    principal = signin.session_principal(request("/", cookies={"session": token}), external)
    assert principal.has("clerk") and BRANCH in principal.branches

    signed_out = pages.signout(request("/signout", "POST", cookies={"session": token}))
    assert re.search(r"session=; .*Max-Age=0", cookies_of(signed_out)["session"])


def test_a_callback_that_does_not_match_its_flow_signs_nobody_in(provider, external):
    pages = pages_for(external)
    started = pages.signin_page(request("/signin"))
    flow_value = cookies_of(started)[signin.FLOW_COOKIE].split("=", 1)[1].split(";", 1)[0]
    callback = provider.authorize(started.headers["Location"])
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    for refused in (pages.signin_callback(request(forged, cookies={signin.FLOW_COOKIE: flow_value})),
                    pages.signin_callback(request(callback)),  # no flow cookie: another browser
                    pages.signin_callback(request("/signin/callback?error=access_denied&state=x",
                                                  cookies={signin.FLOW_COOKIE: flow_value}))):
        assert refused.status_code == 400 and "session" not in cookies_of(refused)


def test_the_development_form_is_never_offered_with_an_external_issuer(external):
    pages = pages_for(external)
    page = pages.signin_page(request("/signin"))
    assert page.status_code == 303 and 'name="role"' not in page.get_data(as_text=True)
    posted = pages.signin_development(request("/signin", "POST", data={"role": "clerk", "branch": BRANCH}))
    assert posted.status_code == 404 and "session" not in cookies_of(posted)
    assert 'name="role"' not in posted.get_data(as_text=True)
    assert not signin.development_available(external)
    with pytest.raises(RuntimeError):
        signin.development_token(external, "clerk", {"id": BRANCH, "directorate": "npra"}, None)


def test_staff_pages_send_whoever_is_not_signed_in_to_sign_in(external):
    pages = pages_for(external)
    for answer in (pages.counter_console(request("/counter/npra-isa-town?counter=5"), branch=BRANCH),
                   pages.counter_console(request("/counter/npra-isa-town?counter=5", cookies={"session": "junk"}),
                                         branch=BRANCH),
                   pages.manager_page(request("/manage/npra-isa-town"), branch=BRANCH)):
        assert answer.status_code == 303 and answer.headers["Location"].startswith("/signin?next=%2F")
    assert pages.counter_console(request("/counter/npra-isa-town?counter=5"), branch=BRANCH).headers["Location"] == \
        "/signin?next=%2Fcounter%2Fnpra-isa-town%3Fcounter%3D5"
    posted = pages.counter_action(request("/counter/npra-isa-town/call-next", "POST", data={"counter": "5"}),
                                  branch=BRANCH, action="call-next")
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/signin?next=")


@pytest.mark.parametrize("wanted", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x",
                                    "", None, "counter/x"])
def test_only_a_page_of_this_site_is_a_place_to_go_after_signing_in(wanted):
    assert signin.safe_next(wanted, "/home") == "/home"
    assert signin.safe_next("/counter/npra-isa-town?counter=5") == "/counter/npra-isa-town?counter=5"


def test_the_charts_are_mirrored_for_arabic():
    ltr, rtl = bar_chart([("a", 4), ("b", 0)], False), bar_chart([("a", 4), ("b", 0)], True)
    assert ltr["bars"][0]["x"] == 190 and ltr["bars"][0]["width"] == rtl["bars"][0]["width"] > 0
    assert rtl["bars"][0]["x"] + rtl["bars"][0]["width"] == 480 - 190 and ltr["bars"][1]["width"] == 0
    hours = [("09:00", 2), ("10:00", 1)]
    assert column_chart(hours, False)["columns"][0]["mid"] < column_chart(hours, False)["columns"][1]["mid"]
    assert column_chart(hours, True)["columns"][0]["mid"] > column_chart(hours, True)["columns"][1]["mid"]


def test_every_text_of_the_staff_pages_has_its_arabic():
    arabic = catalogue("ar")
    missing = []
    for name in ("signin*.html", "counter*.html", "manager*.html"):
        for path in glob.glob(str(TEMPLATES / name)):
            with open(path, "rb") as template:
                for _, _, message, _ in babel_extract(template, ["_", "gettext", "ngettext"], [],
                                                      {"extensions": "jinja2.ext.i18n"}):
                    for msgid in ([message] if isinstance(message, str) else [m for m in message if m]):
                        found = arabic.get(msgid)
                        if found is None or not found.string:
                            missing.append((Path(path).name, msgid))
    assert missing == []


# -- the pages on the embedded suite ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("staff-pages"))) as started:
        yield started


def signed_in_as(suite, role: str, counter: str = "") -> requests.Session:
    browser = requests.Session()
    answer = browser.post(f"{suite.base_url}/signin", data={"role": role, "branch": BRANCH, "counter": counter},
                          allow_redirects=False, timeout=15)
    assert answer.status_code == 303, answer.text
    return browser


def alert(html: str) -> str:
    found = re.search(r'role="alert">\s*<p>(.*?)</p>', html, re.S)
    return found.group(1).strip() if found else ""


def status(html: str) -> str:
    found = re.search(r'role="status">(.*?)</p>', html, re.S)
    return " ".join(found.group(1).split()) if found else ""


def no_inline_code(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and "<style" not in html


def test_the_development_sign_in_form(suite):
    page = requests.get(f"{suite.base_url}/signin?next=/manage/npra-isa-town", timeout=15)
    assert page.status_code == 200 and '<html lang="ar" dir="rtl">' in page.text
    for field in ("role", "branch", "counter"):
        assert f'<label for="{field}">' in page.text and f'id="{field}" name="{field}"' in page.text
    assert 'value="/manage/npra-isa-town"' in page.text
    no_inline_code(page.text)

    refused = requests.post(f"{suite.base_url}/signin?lang=en", data={"role": "auditor", "branch": "nowhere",
                                                                      "counter": "five five"}, timeout=15,
                            allow_redirects=False)
    assert refused.status_code == 422 and "session" not in refused.cookies
    for field in ("role", "branch", "counter"):
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', refused.text.replace("\n", " ")) or \
            re.search(rf'aria-invalid="true"[^>]*id="{field}"', refused.text)
        assert f'id="{field}-error"' in refused.text

    manager = requests.post(f"{suite.base_url}/signin", data={"role": "branch_manager", "branch": BRANCH,
                                                              "next": "/manage/npra-isa-town"},
                            allow_redirects=False, timeout=15)
    assert manager.status_code == 303 and manager.headers["Location"] == "/manage/npra-isa-town"
    assert "HttpOnly" in manager.headers["Set-Cookie"] and "SameSite=Lax" in manager.headers["Set-Cookie"]


def test_a_morning_at_the_counter(suite):
    clerk = signed_in_as(suite, "clerk", "5")
    base = f"{suite.base_url}/counter/{BRANCH}"
    page = clerk.get(f"{base}?counter=5&lang=en", timeout=15)
    assert page.status_code == 200 and "Counter console" in page.text and "Isa Town" in page.text
    assert 'aria-keyshortcuts="O"' in page.text
    no_inline_code(page.text)

    # opening without a service: the API's refusal, next to the services
    refused = clerk.post(f"{base}/open", data={"counter": "5"}, timeout=15, allow_redirects=False)
    assert refused.status_code == 422 and alert(refused.text) == "Some fields are missing or invalid."
    assert 'aria-describedby="services-error"' in refused.text and 'id="services-error"' in refused.text

    opened = clerk.post(f"{base}/open", data={"counter": "5", "services": ["passport-renewal"]}, timeout=15)
    assert opened.url.endswith("done=opened") and status(opened.text) == "Counter 5 is open."
    assert clerk.post(f"{base}/call-next", data={"counter": "5"}, timeout=15).url.endswith("done=nobody")

    kiosk = {"Authorization": f"Bearer {clerk.cookies['session']}"}
    numbers = [requests.post(f"{suite.api}/branches/{BRANCH}/check-ins", headers=kiosk, timeout=15, json={
        "walk_in": True, "cpr": cpr, "service": "passport-renewal"}).json()["ticket"]["number"]
        for cpr in ("900112345", "900212345", "900312345")]
    waiting = clerk.get(f"{base}/waiting?counter=5", timeout=15)
    assert waiting.status_code == 200 and all(n in waiting.text for n in numbers) and "<html" not in waiting.text

    called = clerk.post(f"{base}/call-next", data={"counter": "5"}, timeout=15)
    assert status(called.text) == f"Ticket {numbers[0]} is called to this counter."
    assert f'class="ticket-number" dir="ltr">{numbers[0]}<' in called.text and "Recalls so far: 0" in called.text
    ticket = re.search(r'name="ticket" value="([^"]+)"', called.text).group(1)

    too_soon = clerk.post(f"{base}/recall", data={"counter": "5", "ticket": ticket}, timeout=15)
    assert too_soon.status_code == 409 and "again" in alert(too_soon.text)
    in_arabic = clerk.post(f"{base}/recall?lang=ar", data={"counter": "5", "ticket": ticket}, timeout=15)
    assert in_arabic.status_code == 409 and re.search(r"[\u0600-\u06ff]", alert(in_arabic.text))

    clerk.get(f"{base}?counter=5&lang=en", timeout=15)  # back to English (the choice is kept in a cookie)
    served = clerk.post(f"{base}/served", data={"counter": "5", "ticket": ticket}, timeout=15)
    assert status(served.text) == f"Ticket {numbers[0]} is served." and "No ticket at this counter." in served.text

    clerk.post(f"{base}/call-next", data={"counter": "5"}, timeout=15)
    page = clerk.get(f"{base}?counter=5", timeout=15)  # a reload finds the ticket at the counter
    second = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
    moved = clerk.post(f"{base}/transfer", data={"counter": "5", "ticket": second, "service": "residence-permit"},
                       timeout=15)
    assert status(moved.text) == f"Ticket {numbers[1]} is transferred."

    clerk.post(f"{base}/call-next", data={"counter": "5"}, timeout=15)
    third = re.search(r'name="ticket" value="([^"]+)"',
                      clerk.get(f"{base}?counter=5", timeout=15).text).group(1)
    gone = clerk.post(f"{base}/no-show", data={"counter": "5", "ticket": third}, timeout=15)
    assert status(gone.text) == f"Ticket {numbers[2]} is marked as a no-show."

    closed = clerk.post(f"{base}/close", data={"counter": "5"}, timeout=15)
    assert status(closed.text) == "Counter 5 is closed."

    # a session the API no longer accepts sends the clerk to sign in again
    again = requests.get(f"{base}?counter=5", cookies={"session": "not-a-token"}, timeout=15, allow_redirects=False)
    assert again.status_code == 303 and again.headers["Location"] == "/signin?next=%2Fcounter%2Fnpra-isa-town%3Fcounter%3D5"


def test_the_centre_managers_page(suite):
    clerk = signed_in_as(suite, "clerk", "7")
    assert clerk.get(f"{suite.base_url}/manage/{BRANCH}", timeout=15).status_code == 403

    manager = signed_in_as(suite, "branch_manager")
    page = manager.get(f"{suite.base_url}/manage/{BRANCH}?lang=en", timeout=15)
    assert page.status_code == 200 and "Centre manager" in page.text and "The day so far" in page.text
    assert page.text.count('<svg class="chart"') >= 1 and 'role="img"' in page.text
    no_inline_code(page.text)
    figures = manager.get(f"{suite.base_url}/manage/{BRANCH}/figures", timeout=15)
    assert figures.status_code == 200 and 'id="figures"' in figures.text and "<html" not in figures.text
    other = manager.get(f"{suite.base_url}/manage/cid-southern", timeout=15)
    assert other.status_code == 403
