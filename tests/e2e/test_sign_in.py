"""Sign-in, end to end: who may call the staff routes and the events feed, what each kind of reader sees of a person,
a citizen's own bookings, the development issuer (`mawaeed token issue`, /.well-known/), the abuse limits, the
release-day challenge and CORS. The shared `suite` runs in both modes with real signed tokens (the embedded suite's
own development issuer; in the distributed mode a test issuer serving its keys over HTTP). Tests that need other
settings start an embedded suite of their own and stop it when they are done.
"""
import base64
import json
import time
import uuid
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlsplit

import jwt
import pytest
import requests
from altcha import solve_challenge_v1

from shared.masking import pseudonym
from tests.support.suite import Suite, running

pytestmark = pytest.mark.e2e

HERE, THERE = "npra-isa-town", "npra-muharraq"   # the clerk's branch, and a branch of another clerk
PASSPORT, RESIDENCE = "passport-renewal", "residence-permit"
CLOSED_DAY = "2026-12-31"                        # a Thursday nobody in this module books for
TIMEOUT = 10


# -- helpers ------------------------------------------------------------------------------------------

def fresh_cpr(yymm: str) -> str:
    """A CPR nobody else in the run has: YYMM then five random digits."""
    return f"{yymm}{uuid.uuid4().int % 100000:05d}"


def sub_of(headers: dict) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    return jwt.decode(token, options={"verify_signature": False})["sub"]


def free_starts(suite, day: str, branch: str = HERE, service: str = PASSPORT) -> list[str]:
    """The starts of the slots of `day` that can still be booked."""
    answer = requests.get(f"{suite.api}/availability", params={"branch": branch, "service": service, "date": day},
                          timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return [s["start"] for s in answer.json()["slots"] if s["bookable"] and s["remaining"] > 0]


def book(suite, start: str, cpr: str | None, branch: str = HERE, service: str = PASSPORT, headers=None,
         **fields) -> requests.Response:
    body = {"branch": branch, "service": service, "start": start, "language": "en", **fields}
    if cpr is not None:
        body["cpr"] = cpr
    if "name" not in body and cpr is not None:
        body["name"] = f"Person {cpr}"
    return requests.post(f"{suite.api}/bookings", json=body, headers=headers or {}, timeout=TIMEOUT)


def feed_pages(suite, service: str, headers: dict, limit: int = 50, types: str | None = None):
    """Every page of a service's events feed: [(the raw answer text, its events)]."""
    pages, after = [], 0
    while True:
        params = {"service": service, "after": after, "limit": limit, **({"types": types} if types else {})}
        answer = requests.get(f"{suite.api}/events", params=params, headers=headers, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages.append((answer.text, page["events"]))
        if len(page["events"]) < limit:
            return pages
        after = page["next_after"]


def feed_events(suite, service: str, types: str | None = None) -> list[dict]:
    """Every event of a service's log, read in clear (as the suite's own services read it)."""
    return [e for _, events in feed_pages(suite, service, suite.reader(), limit=1000, types=types) for e in events]


def head(suite, service: str) -> int:
    answer = requests.get(f"{suite.api}/events", params={"service": service, "limit": 1}, headers=suite.reader(),
                          timeout=TIMEOUT)
    return answer.json()["head"]


def refused(answer: requests.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"] and error["message_ar"], error
    return error


@contextmanager
def own_suite(tmp_path_factory, name: str, suite_class=Suite, env: dict | None = None, **settings):
    """An embedded suite of this test's own (other settings than the shared one), always stopped and removed."""
    suite = suite_class("embedded", tmp_path_factory.mktemp(name), **settings)
    suite.env.update(env or {})
    with running(suite) as started:
        yield started


# -- 1. staff routes and the events feed need a token of the right role and place -----------------------------

GUARDED = [  # (name, method, path, body)
    ("open counter", "POST", f"/api/v1/branches/{HERE}/counters/S1/open", {"services": [PASSPORT]}),
    ("call next", "POST", f"/api/v1/branches/{HERE}/counters/S1/call-next", None),
    ("close counter", "POST", f"/api/v1/branches/{HERE}/counters/S1/close", None),
    ("close day", "POST", f"/api/v1/branches/{HERE}/close-day?date={CLOSED_DAY}", None),
    ("queue feed", "GET", "/api/v1/events?service=queue", None),
    ("booking feed", "GET", "/api/v1/events?service=booking", None),
]


@pytest.mark.parametrize("name, method, path, body", GUARDED, ids=[g[0] for g in GUARDED])
def test_without_a_token_staff_routes_and_the_feed_answer_401(suite, name, method, path, body):
    """No token: 401 UNAUTHENTICATED with a `WWW-Authenticate: Bearer` challenge, and nothing is written."""
    before = head(suite, "queue")
    answer = requests.request(method, suite.base_url + path, json=body, timeout=TIMEOUT)
    refused(answer, 401, "UNAUTHENTICATED")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer"), answer.headers
    assert head(suite, "queue") == before


@pytest.mark.parametrize("name, method, path, body", GUARDED, ids=[g[0] for g in GUARDED])
def test_a_clerk_of_another_branch_is_forbidden(suite, name, method, path, body):
    """A valid clerk token placed at another branch: 403 FORBIDDEN (the feed: not an analyst or subscriber)."""
    before = head(suite, "queue")
    answer = requests.request(method, suite.base_url + path, json=body, timeout=TIMEOUT,
                              headers=suite.as_("clerk", branches=[THERE]))
    refused(answer, 403, "FORBIDDEN")
    assert head(suite, "queue") == before


def test_the_clerk_of_the_branch_runs_a_counter_and_is_named_as_the_actor(suite):
    """The branch's own clerk opens a counter, checks a walk-in in, calls them (200), serves them and closes the
    counter; the TicketCalled event in the queue's log names that clerk (the token's subject, role clerk, the
    branch)."""
    clerk = suite.as_("clerk", branches=[HERE])
    counter = f"{suite.api}/branches/{HERE}/counters/S1"
    opened = requests.post(f"{counter}/open", json={"services": [PASSPORT]}, headers=clerk, timeout=TIMEOUT)
    assert opened.status_code == 200, opened.text
    assert opened.json() == {"counter": "S1", "open": True, "services": [PASSPORT]}
    checked_in = requests.post(f"{suite.api}/branches/{HERE}/check-ins", headers=clerk, timeout=TIMEOUT,
                               json={"walk_in": True, "cpr": fresh_cpr("8807"), "service": PASSPORT})
    assert checked_in.status_code == 201, checked_in.text
    ticket = checked_in.json()["ticket"]["id"]

    called = requests.post(f"{counter}/call-next", headers=clerk, timeout=TIMEOUT)
    assert called.status_code == 200, called.text
    assert called.json()["ticket"]["id"] == ticket and called.json()["ticket"]["status"] == "called"

    events = [e for e in feed_events(suite, "queue", types="queue.TicketCalled") if e["payload"]["ticket_id"] == ticket]
    assert len(events) == 1
    assert events[0]["actor"] == {"subject": sub_of(clerk), "role": "clerk", "branch": HERE}

    served = requests.post(f"{suite.api}/tickets/{ticket}/served", headers=clerk, timeout=TIMEOUT)
    assert served.status_code == 200, served.text
    closed = requests.post(f"{counter}/close", headers=clerk, timeout=TIMEOUT)
    assert closed.status_code == 200 and closed.json()["open"] is False, closed.text


def test_closing_a_day_is_for_the_branch_manager_not_the_clerk(suite):
    """close-day needs a manager: the branch's own clerk gets 403; the branch's manager closes the day (200)."""
    url = f"{suite.api}/branches/{HERE}/close-day"
    refused(requests.post(url, params={"date": CLOSED_DAY}, headers=suite.as_("clerk", branches=[HERE]),
                          timeout=TIMEOUT), 403, "FORBIDDEN")
    closed = requests.post(url, params={"date": CLOSED_DAY}, headers=suite.as_("branch_manager", branches=[HERE]),
                           timeout=TIMEOUT)
    assert closed.status_code == 200, closed.text
    assert closed.json()["closed"] is True and closed.json()["date"] == CLOSED_DAY


# -- 2. abuse limits ------------------------------------------------------------------------------------------
# One mode is enough here: the limits are counted by the same code (shared/ratelimits.py) inside the booking
# service's process in both modes, in memory (neither suite sets MAWAEED_REDIS_URL), by the client's address,
# which behind the distributed mode's gateway is the same loopback address. What the distributed mode adds (the
# gateway passing X-Forwarded-For to a trusted-proxy list) is not what these tests are about.

def test_forty_bookings_in_a_minute_from_one_address_meet_the_default_limit(tmp_path_factory):
    """With the default limits (30 bookings a minute per address), 40 bookings from one address for 40 different
    people and free slots: the ones past the limit get 429 RATE_LIMITED with Retry-After and RateLimit-Limit, and
    the booking log holds one SlotBooked for each 201 and none for a refusal."""
    with own_suite(tmp_path_factory, "default-limits", rate_limits="") as suite:
        starts = (free_starts(suite, "2026-12-07") + free_starts(suite, "2026-12-08"))[:40]
        assert len(starts) == 40
        people = [f"8806{n:05d}" for n in range(40)]
        began = time.monotonic()
        answers = [book(suite, start, cpr) for start, cpr in zip(starts, people)]
        assert time.monotonic() - began < 50  # all within the minute the limit counts
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {201, 429}, [a.text for a in answers if a.status_code not in (201, 429)]
        booked = statuses.count(201)  # at most 30: Suite.wait_ready's probe bookings count against the address too
        assert 0 < booked <= 30 and statuses == [201] * booked + [429] * (40 - booked)
        for answer in answers[booked:]:
            refused(answer, 429, "RATE_LIMITED")
            assert 1 <= int(answer.headers["Retry-After"]) <= 60
            assert answer.headers["RateLimit-Limit"] == "30"

        slot_booked = feed_events(suite, "booking", types="booking.SlotBooked")
        assert len(slot_booked) == booked
        assert sorted(e["payload"]["reference"] for e in slot_booked) == \
            sorted(a.json()["reference"] for a in answers[:booked])
        assert {e["payload"]["person"]["cpr"] for e in slot_booked} == set(people[:booked])


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """An embedded suite with short, small limits: 5 bookings per 2 seconds and 20 reads a minute per address."""
    with own_suite(tmp_path_factory, "short-limits",
                   rate_limits="booking_address=5/2second,read_address=20/minute") as suite:
        yield suite


def test_a_spent_booking_limit_recovers_after_its_window(limited):
    """Booking until 429, then waiting what Retry-After says (the 2-second window), and a booking succeeds again."""
    starts, people = free_starts(limited, "2026-12-09"), iter(f"8808{n:05d}" for n in range(100))
    answers = []
    while not answers or answers[-1].status_code != 429:
        assert len(answers) <= 10, [a.status_code for a in answers]
        answers.append(book(limited, starts[len(answers)], next(people)))
    assert [a.status_code for a in answers[:-1]] == [201] * (len(answers) - 1)
    refused(answers[-1], 429, "RATE_LIMITED")
    assert answers[-1].headers["RateLimit-Limit"] == "5"
    retry_after = int(answers[-1].headers["Retry-After"])
    assert 1 <= retry_after <= 2

    time.sleep(retry_after + 0.3)
    again = book(limited, starts[len(answers)], next(people))
    assert again.status_code == 201, again.text
    assert again.json()["reference"] in {e["payload"]["reference"] for e in feed_events(
        limited, "booking", types="booking.SlotBooked")}


def test_a_wrong_reference_and_cpr_guess_costs_ten_reads(limited):
    """With 20 reads a minute per address, two reads of an unknown reference (with a CPR) spend the budget: each
    counts ten, so the third read, even of the caller's own booking with the right CPR, is 429."""
    owner = fresh_cpr("8809")
    made = book(limited, free_starts(limited, "2026-12-10")[0], owner)
    assert made.status_code == 201, made.text
    for guess in ("ZZZZ-ZZZZ", "YYYY-YYYY"):
        refused(requests.get(f"{limited.api}/bookings/{guess}", headers={"X-CPR": fresh_cpr("8810")},
                             timeout=TIMEOUT), 404, "BOOKING_NOT_FOUND")
    third = requests.get(f"{limited.api}/bookings/{made.json()['reference']}", headers={"X-CPR": owner},
                         timeout=TIMEOUT)
    refused(third, 429, "RATE_LIMITED")
    assert third.headers["RateLimit-Limit"] == "20" and int(third.headers["Retry-After"]) >= 1


# -- 3. the events feed: what analysts and subscribers see of a person ----------------------------------------

def test_the_feed_shows_a_person_in_clear_only_to_events_personal(suite):
    """After a booking with CPR, name, mobile and email: no page of the booking feed read by an analyst, or by a
    subscriber whose scope is only events:booking, holds any of them (their SlotBooked carries pseudonyms); the
    suite's own reader (events:personal) sees the CPR. A subscriber without events:queue gets 403 for that feed."""
    person = {"cpr": fresh_cpr("8611"), "name": f"Privacy Test {uuid.uuid4().hex[:8]}",
              "mobile": f"+9733{uuid.uuid4().int % 10**7:07d}", "email": f"p.{uuid.uuid4().hex[:10]}@example.bh"}
    made = book(suite, free_starts(suite, "2026-12-08")[0], **person)
    assert made.status_code == 201, made.text
    reference = made.json()["reference"]

    for reader in (suite.as_("analyst"), suite.as_("subscriber", scope="events:booking")):
        pages = feed_pages(suite, "booking", reader, limit=20)
        ours = [e for _, events in pages for e in events if e["payload"].get("reference") == reference
                and e["type"] == "booking.SlotBooked"]
        assert len(ours) == 1
        assert ours[0]["payload"]["person"]["cpr"].startswith("cpr-")
        assert ours[0]["payload"]["person"]["name"].startswith("contact-")
        for text, _ in pages:
            for value in person.values():
                assert value not in text

    clear = feed_pages(suite, "booking", suite.reader(), limit=1000)
    assert any(person["cpr"] in text for text, _ in clear)
    assert any(e["payload"].get("reference") == reference and e["payload"]["person"] == {**person, "language": "en"}
               for _, events in clear for e in events)

    refused(requests.get(f"{suite.api}/events", params={"service": "queue"}, timeout=TIMEOUT,
                         headers=suite.as_("subscriber", scope="events:booking")), 403, "FORBIDDEN")


# -- 4. a citizen's own bookings ---------------------------------------------------------------------------

def test_a_citizen_sees_their_own_bookings_everywhere_and_books_as_themselves(suite):
    """A citizen (token with cpr=X) lists X's bookings at branches of two directorates (npra and cid) and none of
    another person's; books with no CPR in the body (the booking is theirs); and is refused (403) when the body
    names another CPR, with nothing written."""
    day = "2026-12-09"
    x, y = fresh_cpr("8512"), fresh_cpr("8512")
    branches = requests.get(f"{suite.api}/branches", timeout=TIMEOUT).json()
    directorate = {b["id"]: b["directorate"] for b in branches}
    cid = next(b for b in branches if b["directorate"] == "cid")
    cid_service = next(s["id"] for s in cid["services"] if free_starts(suite, day, cid["id"], s["id"]))
    assert directorate[HERE] == "npra"

    here_start = free_starts(suite, day)[0]
    at_npra = book(suite, here_start, x)
    at_cid = book(suite, free_starts(suite, day, cid["id"], cid_service)[0], x, branch=cid["id"], service=cid_service)
    someone_else = book(suite, here_start, y)
    for made in (at_npra, at_cid, someone_else):
        assert made.status_code == 201, made.text

    citizen = suite.as_("citizen", cpr=x, name="Citizen Sign-In")
    own = book(suite, free_starts(suite, day, HERE, RESIDENCE)[0], None, service=RESIDENCE, headers=citizen)
    assert own.status_code == 201, own.text
    assert own.json()["name"] == "Citizen Sign-In"  # from the token, as the national eID gives it

    mine = requests.get(f"{suite.api}/me/bookings", headers=citizen, timeout=TIMEOUT)
    assert mine.status_code == 200, mine.text
    listed = {b["reference"]: b for b in mine.json()["bookings"]}
    assert set(listed) == {at_npra.json()["reference"], at_cid.json()["reference"], own.json()["reference"]}
    assert {directorate[b["branch"]] for b in listed.values()} == {"npra", "cid"}
    assert someone_else.json()["reference"] not in listed
    assert (listed[own.json()["reference"]]["branch"], listed[own.json()["reference"]]["service"]) == (HERE, RESIDENCE)

    before = head(suite, "booking")
    refused(book(suite, free_starts(suite, "2026-12-10")[0], y, headers=suite.as_("citizen", cpr=x)),
            403, "FORBIDDEN")
    assert head(suite, "booking") == before


def site_sign_in(suite, browser: requests.Session, role: str | None, next_page: str = "", **claims):
    """Sign in on the pages as a person would: with an external issuer (the distributed suite's), the code flow
    with PKCE through the issuer's authorization endpoint; on the embedded suite, the development form (a citizen
    by CPR and name). The last answer: the suite's redirect to the landing page (or its refusal)."""
    if suite.issuer is None:
        return browser.post(f"{suite.base_url}/signin/citizen", data={**claims, "next": next_page},
                            allow_redirects=False, timeout=TIMEOUT)
    suite.issuer.sign_in_as(role, **claims)
    try:
        asked = f"/signin?next={quote(next_page, safe='')}" if next_page else "/signin"
        to_issuer = browser.get(f"{suite.base_url}{asked}", allow_redirects=False, timeout=TIMEOUT)
        assert to_issuer.status_code == 303, to_issuer.text
        location = to_issuer.headers["Location"]
        query = dict(parse_qsl(urlsplit(location).query))
        assert location.startswith(f"{suite.issuer.url}/authorize?")
        assert (query["response_type"], query["scope"], query["code_challenge_method"]) == ("code", "openid", "S256")
        assert query["redirect_uri"] == f"{suite.base_url}/signin/callback"
        back = browser.get(location, allow_redirects=False, timeout=TIMEOUT)
        assert back.status_code == 302 and back.headers["Location"].startswith(f"{suite.base_url}/signin/callback?")
        return browser.get(back.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    finally:
        suite.issuer.sign_in_as(None)


def test_a_citizen_signs_in_on_the_site_and_finds_their_bookings_without_a_cpr(suite):
    """The booking site's sign-in for a citizen, through the same flow as staff: with an external issuer the
    authorization code with PKCE (role citizen, the CPR in the token's claim), on the embedded suite the development
    form. They land on /my, which lists their bookings (one made earlier with the CPR), book on the site without a
    CPR, and manage it without one; no CPR in any URL. Staff still land on their console."""
    cpr = fresh_cpr("8603")
    earlier = book(suite, free_starts(suite, "2026-12-10")[0], cpr)
    assert earlier.status_code == 201, earlier.text
    browser = requests.Session()
    landed = site_sign_in(suite, browser, "citizen", cpr=cpr, name="Eid Citizen")
    assert landed.status_code == 303 and landed.headers["Location"] == "/my", landed.text
    assert "session" in browser.cookies and all(cpr not in r.url for r in (landed, *landed.history))

    mine = browser.get(f"{suite.base_url}/my?lang=en", timeout=TIMEOUT)
    assert mine.status_code == 200 and earlier.json()["reference"] in mine.text
    assert "\u2022" * 6 + cpr[-3:] in mine.text and cpr not in mine.text and "Eid Citizen" in mine.text

    start = free_starts(suite, "2026-12-10", service=RESIDENCE)[0]   # (one active booking per service)
    form = {"directorate": "npra", "branch": HERE, "service": RESIDENCE, "start": start, "name": "Eid Citizen",
            "mobile": "", "email": "", "language": "en", "step": "confirm"}
    done = browser.post(f"{suite.base_url}/book?lang=en", data=form, allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 201, done.text
    reference = next(r for r in (b["reference"] for b in requests.get(
        f"{suite.api}/me/bookings", headers=suite.as_("citizen", cpr=cpr), timeout=TIMEOUT).json()["bookings"])
        if r != earlier.json()["reference"])
    assert reference in done.text
    opened = browser.get(f"{suite.base_url}/manage?reference={reference}&lang=en", timeout=TIMEOUT)
    assert opened.status_code == 200 and ">Change the time<" in opened.text and 'id="cpr"' not in opened.text
    assert reference in browser.get(f"{suite.base_url}/my?lang=en", timeout=TIMEOUT).text

    if suite.issuer is not None:   # the same flow still brings staff to their console, and a refusal signs nobody in
        clerk = requests.Session()
        staff = site_sign_in(suite, clerk, "clerk", branches=[HERE], counter="5")
        assert staff.status_code == 303 and staff.headers["Location"] == f"/counter/{HERE}?counter=5"
        nobody = requests.Session()
        refused_here = site_sign_in(suite, nobody, None, next_page="/my")
        assert refused_here.status_code == 400 and "session" not in nobody.cookies


# -- 5. `mawaeed token issue` -----------------------------------------------------------------------------

def test_token_issue_prints_a_token_the_suite_accepts_only_where_it_is_the_issuer(suite):
    """Embedded: `mawaeed token issue --role clerk --branch npra-isa-town` prints a token that opens a counter there
    (200), and an unknown role exits 2. Distributed: the suite trusts an external issuer (MAWAEED_OIDC_ISSUER), so
    the command refuses with exit 2 and prints no token."""
    issued = suite.run_cli("token", "issue", "--role", "clerk", "--branch", HERE)
    if suite.mode == "distributed":
        assert suite.env["MAWAEED_OIDC_ISSUER"]
        assert issued.returncode == 2, issued.stdout + issued.stderr
        assert issued.stdout == "" and "MAWAEED_OIDC_ISSUER" in issued.stderr
        return
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["roles"] == ["clerk"] and claims["branches"] == [HERE] and claims["iss"] == suite.base_url
    opened = requests.post(f"{suite.api}/branches/{HERE}/counters/T5/open", json={"services": [PASSPORT]},
                           headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert opened.status_code == 200 and opened.json()["open"] is True, opened.text

    nobody = suite.run_cli("token", "issue", "--role", "nobody")
    assert nobody.returncode == 2 and nobody.stdout == "" and "unknown role" in nobody.stderr


# -- 6. the development issuer's discovery document and keys ----------------------------------------------

def test_the_suite_publishes_its_issuer_only_when_it_is_one(suite):
    """Embedded: /.well-known/openid-configuration names the suite's base URL as issuer and its key set, whose key
    (with a kid) is the one tokens are signed with. Distributed: both answer 404 (tokens come from elsewhere)."""
    discovery = requests.get(f"{suite.base_url}/.well-known/openid-configuration", timeout=TIMEOUT)
    keys = requests.get(f"{suite.base_url}/.well-known/jwks.json", timeout=TIMEOUT)
    if suite.mode == "distributed":
        assert (discovery.status_code, keys.status_code) == (404, 404), (discovery.text, keys.text)
        return
    assert discovery.status_code == 200 and keys.status_code == 200
    assert discovery.json()["issuer"] == suite.base_url
    assert discovery.json()["jwks_uri"] == f"{suite.base_url}/.well-known/jwks.json"
    published = keys.json()["keys"]
    assert published and all(k["kid"] for k in published)
    assert jwt.get_unverified_header(suite.token("clerk", branches=[HERE]))["kid"] in {k["kid"] for k in published}


# -- 7. the release-day challenge, and CORS for an allowed origin ------------------------------------------

FRONT_END = "https://app.mawaeed.example"


def solved(api: str) -> str:
    """A fresh challenge from the suite, solved: the base64 ALTCHA payload a browser would send."""
    challenge = requests.get(f"{api}/challenge", timeout=TIMEOUT).json()
    solution = solve_challenge_v1(challenge["challenge"], challenge["salt"], challenge["algorithm"],
                                  challenge["maxnumber"])
    payload = {"algorithm": challenge["algorithm"], "challenge": challenge["challenge"], "number": solution.number,
               "salt": challenge["salt"], "signature": challenge["signature"]}
    return base64.b64encode(json.dumps(payload).encode()).decode()


class ReleaseDaySuite(Suite):
    """A suite whose bookings need a solved challenge. Suite.wait_ready's probe (a booking in the past, ready when
    refused as SLOT_IN_PAST) is refused with CHALLENGE_REQUIRED before the slot is looked at, so it would never see
    the suite ready: this probe carries a solved challenge."""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        probe = {"cpr": "900112345", "branch": HERE, "service": PASSPORT, "name": "Probe", "language": "en",
                 "start": "2026-12-01T07:00:00+03:00"}
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"the suite exited early; see {self.workdir / 'suite.log'}")
            try:
                if requests.get(f"{self.base_url}/health", timeout=2).status_code == 200 and requests.post(
                        f"{self.api}/bookings", json={**probe, "altcha": solved(self.api)}, timeout=2).json().get(
                        "error", {}).get("code") == "SLOT_IN_PAST":
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the suite did not come up; see {self.workdir / 'suite.log'}")


@pytest.fixture(scope="module")
def release_day(tmp_path_factory):
    """An embedded suite on a release day (MAWAEED_BOOKING_CHALLENGE=on) that also lets one web front end call it
    from a browser (MAWAEED_CORS_ORIGINS) and has a pseudonym key of its own (MAWAEED_EXPORT_KEY)."""
    with own_suite(tmp_path_factory, "release-day", suite_class=ReleaseDaySuite, env={
            "MAWAEED_BOOKING_CHALLENGE": "on", "MAWAEED_CORS_ORIGINS": FRONT_END,
            "MAWAEED_EXPORT_KEY": "release-day-export-key"}) as suite:
        yield suite


def test_on_a_release_day_a_booking_needs_a_solved_challenge_once(release_day):
    """Without `altcha`: 403 CHALLENGE_REQUIRED and nothing written. The challenge endpoint says it is required; a
    solved challenge books (201); the same solution again is refused (403): one booking per solution."""
    suite, starts = release_day, free_starts(release_day, "2026-12-07")
    before = head(suite, "booking")
    refused(book(suite, starts[0], fresh_cpr("8701")), 403, "CHALLENGE_REQUIRED")
    assert head(suite, "booking") == before

    challenge = requests.get(f"{suite.api}/challenge", timeout=TIMEOUT).json()
    assert set(challenge) == {"algorithm", "challenge", "maxnumber", "salt", "signature", "required"}
    assert challenge["required"] is True

    payload = solved(suite.api)
    first = book(suite, starts[0], fresh_cpr("8702"), altcha=payload)
    assert first.status_code == 201, first.text
    before = head(suite, "booking")
    refused(book(suite, starts[1], fresh_cpr("8703"), altcha=payload), 403, "CHALLENGE_REQUIRED")
    assert head(suite, "booking") == before


def test_a_solution_reencoded_is_still_the_same_solution(release_day):
    """The same solved challenge, its JSON written with other spacing (a different base64 string, the same
    solution), must not buy a second booking."""
    suite, starts = release_day, free_starts(release_day, "2026-12-08")
    payload = solved(suite.api)
    assert book(suite, starts[0], fresh_cpr("8704"), altcha=payload).status_code == 201
    same = json.loads(base64.b64decode(payload))
    reencoded = base64.b64encode(json.dumps(same, separators=(",", ":")).encode()).decode()
    assert reencoded != payload
    refused(book(suite, starts[1], fresh_cpr("8705"), altcha=reencoded), 403, "CHALLENGE_REQUIRED")


def test_the_analyst_feed_uses_the_configured_pseudonym_key(release_day):
    """With MAWAEED_EXPORT_KEY set, an analyst's pseudonym of a CPR is not the one anybody can compute with an empty
    key (else knowing or guessing a CPR finds that person's events)."""
    suite, cpr = release_day, fresh_cpr("8706")
    made = book(suite, free_starts(suite, "2026-12-09")[0], cpr, altcha=solved(suite.api))
    assert made.status_code == 201, made.text
    seen = next(e["payload"]["person"]["cpr"] for _, events in feed_pages(suite, "booking", suite.as_("analyst"))
                for e in events if e["payload"].get("reference") == made.json()["reference"])
    assert seen != pseudonym(cpr, "", "cpr")


# -- 8. CORS ---------------------------------------------------------------------------------------------

def test_cors_answers_no_origin_when_none_is_configured(suite):
    """MAWAEED_CORS_ORIGINS unset: a request or a preflight from another origin gets no Access-Control-Allow-Origin
    (the security headers are still there)."""
    assert not suite.env.get("MAWAEED_CORS_ORIGINS")
    elsewhere = {"Origin": "https://elsewhere.example"}
    answer = requests.get(f"{suite.api}/directorates", headers=elsewhere, timeout=TIMEOUT)
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    preflight = requests.options(f"{suite.api}/bookings", timeout=TIMEOUT, headers={
        **elsewhere, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Authorization"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_answers_only_the_configured_origin(release_day):
    """MAWAEED_CORS_ORIGINS set (embedded only, on the release-day suite started anyway): that origin gets
    Access-Control-Allow-Origin (and its preflight a 204 allowing Authorization); any other origin still none."""
    answer = requests.get(f"{release_day.api}/directorates", headers={"Origin": FRONT_END}, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert "Origin" in answer.headers["Vary"] and "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
    preflight = requests.options(f"{release_day.api}/bookings", timeout=TIMEOUT, headers={
        "Origin": FRONT_END, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    other = requests.get(f"{release_day.api}/directorates", headers={"Origin": "https://elsewhere.example"},
                         timeout=TIMEOUT)
    assert "Access-Control-Allow-Origin" not in other.headers
