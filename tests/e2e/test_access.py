"""Who may do what, where: every route of the API asked by every kind of caller, in both run modes, with real
signed tokens (the embedded suite's own development issuer; in the distributed mode a test issuer publishing its
keys over HTTP). A caller the route does not let in gets 401 (no token) or 403 (a role or place that does not
allow it), and the log of every service is unchanged after each refusal."""
import uuid

import pytest
import requests

pytestmark = pytest.mark.e2e

HERE, THERE = "npra-isa-town", "npra-muharraq"        # two branches of one directorate
PASSPORT = "passport-renewal"
TOMORROW = "2026-12-07"

# The callers: role and the claims that place them.
CALLERS = {
    "public": None,
    "citizen": ("citizen", {"cpr": "900155555"}),
    "kiosk": ("kiosk", {"branches": [HERE]}),
    "kiosk_there": ("kiosk", {"branches": [THERE]}),
    "display": ("display", {"branches": [HERE]}),
    "clerk": ("clerk", {"branches": [HERE], "counter": "1"}),
    "clerk_there": ("clerk", {"branches": [THERE]}),
    "manager": ("branch_manager", {"branches": [HERE]}),
    "directorate_admin": ("directorate_admin", {"directorates": ["npra"]}),
    "other_admin": ("directorate_admin", {"directorates": ["cid"]}),
    "analyst": ("analyst", {}),
    "subscriber": ("subscriber", {"scope": "events:booking"}),
    "auditor": ("auditor", {}),
    "system_admin": ("system_admin", {}),
}
EVERYONE = set(CALLERS)
STAFF_HERE = {"clerk", "manager", "directorate_admin"}


def allowed(*names) -> set:
    return set(names)


# (name, method, path, body, who may) — paths use {reference}, {ticket}; bodies get {cpr} filled in.
ROUTES = [
    ("health", "GET", "/health", None, EVERYONE),
    ("directorates", "GET", "/api/v1/directorates", None, EVERYONE),
    ("branches", "GET", "/api/v1/branches", None, EVERYONE),
    ("availability", "GET", f"/api/v1/availability?branch={HERE}&service={PASSPORT}&date={TOMORROW}", None, EVERYONE),
    ("book", "POST", "/api/v1/bookings", "booking", EVERYONE),
    ("read booking", "GET", "/api/v1/bookings/{reference}", None, EVERYONE),
    ("reschedule", "POST", "/api/v1/bookings/{reference}/reschedule", "reschedule", EVERYONE),
    ("notifications", "GET", "/api/v1/notifications?reference={reference}", None, EVERYONE),
    ("feedback", "POST", "/api/v1/feedback", "feedback", EVERYONE),
    ("board", "GET", f"/api/v1/branches/{HERE}/board", None, EVERYONE),
    ("my bookings", "GET", "/api/v1/me/bookings", None, allowed("citizen")),
    ("check in", "POST", f"/api/v1/branches/{HERE}/check-ins", "walk_in", allowed("kiosk", *STAFF_HERE)),
    ("open counter", "POST", f"/api/v1/branches/{HERE}/counters/9/open", "counter", STAFF_HERE),
    ("call next", "POST", f"/api/v1/branches/{HERE}/counters/9/call-next", None, STAFF_HERE),
    ("recall", "POST", "/api/v1/tickets/{ticket}/recall", None, STAFF_HERE),
    ("transfer", "POST", "/api/v1/tickets/{ticket}/transfer", "transfer", STAFF_HERE),
    ("no-show", "POST", "/api/v1/tickets/{ticket}/no-show", None, STAFF_HERE),
    ("served", "POST", "/api/v1/tickets/{ticket}/served", None, STAFF_HERE),
    ("queue", "GET", f"/api/v1/branches/{HERE}/queue", None, STAFF_HERE),
    ("close counter", "POST", f"/api/v1/branches/{HERE}/counters/9/close", None, STAFF_HERE),
    ("close day", "POST", f"/api/v1/branches/{HERE}/close-day?date=2026-12-08", None,
     allowed("manager", "directorate_admin")),
    ("audit", "GET", f"/api/v1/audit?branch={HERE}&date=2026-12-06", None,
     allowed("auditor", "manager", "directorate_admin")),
    ("events feed", "GET", "/api/v1/events?service=booking", None, allowed("analyst", "subscriber")),
    ("erase", "POST", "/api/v1/people/erase", "erase", allowed("system_admin")),
]


_tokens = {}


def headers(suite, caller: str) -> dict:
    if CALLERS[caller] is None:
        return {}
    if (id(suite), caller) not in _tokens:
        role, claims = CALLERS[caller]
        _tokens[id(suite), caller] = suite.as_(role, **claims)
    return _tokens[id(suite), caller]


def heads(suite) -> dict:
    return {service: requests.get(f"{suite.api}/events", params={"service": service, "limit": 1},
                                  headers=suite.reader(), timeout=10).json()["head"]
            for service in ("availability", "booking", "queue", "notifications")}


@pytest.fixture(scope="module")
def world(suite):
    """A booking to read and change, and a ticket at HERE to act on."""
    clerk = headers(suite, "clerk")
    person = f"9001{uuid.uuid4().int % 100000:05d}"
    slots = requests.get(f"{suite.api}/availability", params={"branch": HERE, "service": PASSPORT, "date": TOMORROW},
                         timeout=10).json()["slots"]
    booked = requests.post(f"{suite.api}/bookings", json={
        "cpr": person, "branch": HERE, "service": PASSPORT, "start": slots[0]["start"], "name": "Access Test",
        "language": "en"}, timeout=10)
    assert booked.status_code == 201, booked.text
    ticket = requests.post(f"{suite.api}/branches/{HERE}/check-ins", headers=clerk, timeout=10, json={
        "walk_in": True, "cpr": "880512345", "service": PASSPORT})
    assert ticket.status_code == 201, ticket.text
    return {"reference": booked.json()["reference"], "cpr": person, "ticket": ticket.json()["ticket"]["id"],
            "later": slots[1]["start"]}


def body(kind: str | None, world: dict) -> dict | None:
    return {
        None: None,
        "booking": {"cpr": f"9002{uuid.uuid4().int % 100000:05d}", "branch": HERE, "service": "residence-permit",
                    "start": world["later"], "name": "Someone", "language": "ar"},
        "reschedule": {"cpr": world["cpr"], "start": world["later"]},
        "feedback": {"token": "not-a-real-token-at-all", "score": 5},
        "walk_in": {"walk_in": True, "cpr": f"8806{uuid.uuid4().int % 100000:05d}", "service": PASSPORT},
        "counter": {"services": [PASSPORT]},
        "transfer": {"service": "residence-permit"},
        "erase": {"cpr": "770100001", "reason": "access test: a person nobody booked for"},
    }[kind]


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("name, method, path, kind, who", ROUTES, ids=[r[0] for r in ROUTES])
def test_every_route_lets_in_only_its_callers(suite, world, caller, name, method, path, kind, who):
    url = suite.base_url + path.format(**world)
    request_headers, sent = dict(headers(suite, caller)), body(kind, world)
    if caller == "citizen":  # a citizen's CPR is their token's: they give none (another's would be refused)
        sent = {k: v for k, v in sent.items() if k != "cpr"} if sent else None
    else:
        request_headers["X-CPR"] = world["cpr"]
    before = None if caller in who else heads(suite)
    answer = requests.request(method, url, json=sent, headers=request_headers, timeout=10)
    if caller in who:
        assert answer.status_code not in (401, 403) and answer.status_code < 500, (caller, name, answer.text)
        return
    expected = 401 if CALLERS[caller] is None else 403
    assert answer.status_code == expected, (caller, name, answer.text)
    error = answer.json()["error"]
    assert error["code"] == ("UNAUTHENTICATED" if expected == 401 else "FORBIDDEN") and error["message_ar"]
    if expected == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert heads(suite) == before   # a refusal writes nothing


@pytest.mark.parametrize("route", ["/api/v1/events?service=booking", f"/api/v1/branches/{HERE}/queue"])
def test_a_bad_token_is_401_even_where_the_public_may_go(suite, route):
    for bad in ("Bearer not.a.token", "Bearer " + suite.token("clerk", branches=[HERE])[:-4] + "AAAA"):
        answer = requests.get(suite.base_url + route, headers={"Authorization": bad}, timeout=10)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    answer = requests.get(f"{suite.api}/directorates", headers={"Authorization": "Bearer garbage"}, timeout=10)
    assert answer.status_code == 401


def test_every_answer_carries_the_security_headers(suite):
    for answer in (requests.get(f"{suite.api}/directorates", timeout=10),
                   requests.get(f"{suite.api}/nothing-here", timeout=10),
                   requests.get(f"{suite.base_url}/health", timeout=10)):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Cache-Control"] == "no-store"
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in requests.get(
        f"{suite.api}/directorates", headers={"Origin": "https://evil.example"}, timeout=10).headers
