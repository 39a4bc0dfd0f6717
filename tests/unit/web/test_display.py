"""The waiting-room display (services/web/display.py, live.py): the stream's messages, one board fetch per change
for all of a branch's screens, the subscription the hub is fed by, the page rendered in both languages with every
word translated, and no inline script or style (the content security policy allows neither)."""
import json
import re
from datetime import datetime, timezone

import eventlet
import pytest
from babel.messages.extract import extract_from_file
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.issuer import DevelopmentIssuer
from shared.topology import REPLICA, SUBSCRIPTIONS, declared_by, subscriptions_to
from services.web import display, live
from services.web.devices import device_token, pair
from services.web.i18n import catalogue
from services.web.pages import HERE, render

BOARD = {"branch": "npra-isa-town", "name_en": "Isa Town branch", "name_ar": "فرع مدينة عيسى", "date": "2026-12-07",
         "closed": False, "hours": [{"opens": "07:00", "closes": "14:00"}], "open_now": True, "now_serving": [{"counter": "5", "number": "P-014", "service": "passport-renewal"}],
         "last_called": [{"number": "P-014", "counter": "5", "service": "passport-renewal",
                          "called_at": "2026-12-07T09:10:00+03:00"}],
         "waiting": [{"service": "passport-renewal", "name_en": "Passport renewal", "name_ar": "تجديد جواز السفر",
                      "count": 4, "estimated_wait_minutes": 30}]}
TEMPLATES = ("display.html", "display_unpaired.html")


def request(url: str = "/display/npra-isa-town", **kwargs) -> Request:
    return Request(EnvironBuilder(path=url.split("?")[0], query_string=url.partition("?")[2], **kwargs).get_environ())


# -- the stream ---------------------------------------------------------------------------------------

def test_a_message_is_one_data_line_and_a_blank_line():
    assert live.sse({"a": "ب"}) == 'data: {"a":"ب"}\n\n'.encode()
    assert live.sse({"n": 1}, retry=2000) == b'retry: 2000\ndata: {"n":1}\n\n'
    assert live.sse({"at": 1}, event="ping", comment="heartbeat") == b': heartbeat\nevent: ping\ndata: {"at":1}\n\n'


def test_every_screen_of_a_branch_gets_each_change_from_one_fetch():
    fetched = []
    hub = live.Hub(lambda branch: fetched.append(branch) or dict(BOARD, branch=branch), heartbeat=0.05)
    here = [hub.join("npra-isa-town") for _ in range(50)]
    there = hub.join("npra-muharraq")
    hub.changed("npra-isa-town")
    eventlet.sleep(0.01)
    assert fetched == ["npra-isa-town"]
    assert all(s.inbox.qsize() == 1 for s in here) and there.inbox.qsize() == 0
    hub.changed("nowhere")  # nobody watches it: nothing fetched
    eventlet.sleep(0.01)
    assert fetched == ["npra-isa-town"]


def test_a_burst_of_events_is_folded_into_few_fetches():
    fetched = []

    def slow_fetch(branch):
        fetched.append(branch)
        eventlet.sleep(0.02)
        return BOARD
    hub = live.Hub(slow_fetch)
    screen = hub.join("npra-isa-town")
    for _ in range(20):
        hub.changed("npra-isa-town")
    eventlet.sleep(0.1)
    assert len(fetched) == 1  # the 20 events came before the refresh ran: one fetch for all of them
    hub.changed("npra-isa-town")
    eventlet.sleep(0.05)
    assert 2 <= len(fetched) <= 3 and screen.inbox.qsize() == len(fetched)


def test_a_slow_screen_keeps_the_newest_boards_only():
    screen = live.Screen()
    for n in range(live.BACKLOG + 5):
        screen.offer(live.sse({"n": n}))
    kept = [json.loads(screen.inbox.get_nowait().decode()[6:]) for _ in range(live.BACKLOG)]
    assert kept[-1] == {"n": live.BACKLOG + 4} and screen.inbox.qsize() == 0


def test_the_stream_starts_with_the_board_beats_when_quiet_and_leaves_on_close():
    hub = live.Hub(lambda branch: BOARD, heartbeat=0.02)
    screen = hub.join("npra-isa-town")
    stream = hub.stream("npra-isa-town", screen, BOARD)
    first = next(stream).decode()
    assert first.startswith("retry: 2000\ndata: ")
    sent = json.loads(first.split("data: ")[1])
    assert {k: v for k, v in sent.items() if k != "now"} == BOARD and "now" in sent
    assert next(stream).startswith(b": heartbeat\nevent: ping\n")
    hub.changed("npra-isa-town")
    assert next(stream).startswith(b"data: ")
    stream.close()
    assert hub.connected("npra-isa-town") == 0


def test_a_connecting_screen_reuses_a_board_kept_fresh_by_events():
    fetched = []
    hub = live.Hub(lambda branch: fetched.append(branch) or BOARD)
    hub.join("npra-isa-town")
    hub.current("npra-isa-town")
    hub.current("npra-isa-town")
    assert len(fetched) == 1
    hub.changed("npra-isa-town")  # until the refresh ran, a newcomer fetches itself
    hub.current("npra-isa-town")
    assert len(fetched) >= 2


def test_the_pages_subscription_is_live_only_with_a_queue_for_each_replica():
    subscription = SUBSCRIPTIONS["web.queue"]
    assert subscription.live_only and subscription.source == "queue"
    assert subscription in subscriptions_to("queue") and subscription not in declared_by("queue")
    assert {"queue.TicketCalled", "queue.TicketRecalled", "queue.CounterOpened", "queue.DayClosed"} <= set(
        subscription.types)
    queue = subscription.queue()
    assert queue.name == f"web.queue.{REPLICA}" and queue.auto_delete and not queue.durable
    assert "x-single-active-consumer" not in queue.queue_arguments  # every replica gets every event
    assert queue.queue_arguments["x-message-ttl"] > 0 and queue.queue_arguments["x-expires"] > 0  # nothing piles up
    # the only other live-only one: every queue replica hears of an erasure (services/queue/service.py)
    assert {s.name for s in SUBSCRIPTIONS.values() if s.live_only} == {"web.queue", "queue.erasures"}
    assert all(s.queue().queue_arguments["x-single-active-consumer"] for s in declared_by("queue"))


# -- the suite's time, on every message ---------------------------------------------------------------

SUITE_TIME = "2026-12-07T09:10:00.250+03:00"


def data_of(message: bytes) -> dict:
    return json.loads(next(line for line in message.decode().splitlines() if line.startswith("data: "))[6:])


def test_every_board_and_every_ping_carries_the_suites_time():
    hub = live.Hub(lambda branch: dict(BOARD), heartbeat=0.02, now=lambda: SUITE_TIME)
    screen = hub.join("npra-isa-town")
    stream = hub.stream("npra-isa-town", screen, BOARD)
    assert data_of(next(stream)) == {**BOARD, "now": SUITE_TIME}
    ping = next(stream)
    assert b"event: ping" in ping and data_of(ping)["now"] == SUITE_TIME
    hub.changed("npra-isa-town")
    assert data_of(next(stream)) == {**BOARD, "now": SUITE_TIME}
    assert "now" not in BOARD and "now" not in hub.boards["npra-isa-town"][1]  # the kept board is the API's
    stream.close()


def test_the_time_sent_is_the_suites_clock_in_bahrain(monkeypatch):
    monkeypatch.setattr(live.clock, "now", lambda: datetime(2026, 12, 7, 6, 10, 0, 250000, tzinfo=timezone.utc))
    assert live.server_now() == SUITE_TIME
    assert live.Hub(lambda branch: BOARD).stamped(BOARD)["now"] == SUITE_TIME  # the hub's default clock


def test_the_page_is_served_with_the_suites_time_and_speed(monkeypatch):
    monkeypatch.setattr(display.clock, "now", lambda: datetime(2026, 12, 7, 6, 10, 0, 250000, tzinfo=timezone.utc))
    assert display.clock_context(speed=60) == {"now": "09:10", "now_iso": SUITE_TIME, "clock_speed": 60}
    html = render(request("/display/npra-isa-town?lang=en"), "display.html", board=BOARD, branch="npra-isa-town",
                  **display.clock_context(speed=1)).get_data(as_text=True)
    clock = re.search(r'<time id="clock"[^>]*>([^<]*)</time>', html)
    assert clock and clock.group(1) == "09:10"
    assert f'data-server-now="{SUITE_TIME}"' in clock.group(0) and 'data-speed="1"' in clock.group(0)


def test_the_script_ticks_from_the_suites_time_not_the_browsers():
    script = (HERE / "static/js/display.js").read_text(encoding="utf-8")
    clock = script[script.index("// -- the clock"):script.index("// -- the stream")]
    assert "dataset.serverNow" in clock and "performance.now()" in clock and "Date.now()" not in clock
    assert "new Date()" not in clock  # never the screen's own time
    assert script.count("sync(data.now)") == 2  # a board and a ping each set the clock again


# -- today's hours -------------------------------------------------------------------------------------

def hours_of(html: str) -> str:
    found = re.search(r'<p class="display-hours" id="hours">(.*?)</p>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip() if found else ""


@pytest.mark.parametrize("lang, board, shown", [
    ("ar", {"hours": [{"opens": "07:00", "closes": "14:00"}], "open_now": True},
     "مفتوح الآن ساعات العمل اليوم: 07:00–14:00"),
    ("en", {"hours": [{"opens": "07:00", "closes": "14:00"}], "open_now": True},
     "Open now Opening hours today: 07:00–14:00"),
    ("ar", {"hours": [{"opens": "07:00", "closes": "12:00"}, {"opens": "16:00", "closes": "19:00"}],
            "open_now": False}, "مغلق الآن ساعات العمل اليوم: 07:00–12:00 ، 16:00–19:00"),
    ("en", {"hours": [{"opens": "07:00", "closes": "12:00"}, {"opens": "16:00", "closes": "19:00"}],
            "open_now": False}, "Closed now Opening hours today: 07:00–12:00 , 16:00–19:00"),
    ("ar", {"hours": [], "open_now": False}, "مغلق اليوم ساعات العمل اليوم:"),
    ("en", {"hours": [], "open_now": False}, "Closed today Opening hours today:"),
])
def test_the_display_shows_todays_hours_and_whether_the_centre_is_open(lang, board, shown):
    html = render(request(f"/display/npra-isa-town?lang={lang}"), "display.html", board={**BOARD, **board},
                  branch="npra-isa-town", now="09:10").get_data(as_text=True)
    assert hours_of(html) == shown
    assert ('<span id="hours-today" hidden>' in html) == (not board["hours"])  # no hours: "closed today" alone
    for message in ("Open now", "Closed now", "Closed today"):  # the script words later boards the same way
        word = catalogue("ar").get(message).string if lang == "ar" else message
        assert f'="{word}"' in html


def test_a_board_without_hours_shows_no_hours_line():
    board = {k: v for k, v in BOARD.items() if k not in ("hours", "open_now")}
    html = render(request("/display/npra-isa-town"), "display.html", board=board, branch="npra-isa-town",
                  now="09:10").get_data(as_text=True)
    assert 'id="hours"' not in html and 'id="clock"' in html


# -- the page --------------------------------------------------------------------------------------------

def test_the_device_token_comes_from_the_url_once_then_from_the_cookie():
    """The display pairs as every device does (services/web/devices.py): the token from the URL into a cookie."""
    paired = pair(request("/display/x?device=a.b.c&lang=en"))
    assert paired.status_code == 303 and paired.headers["Location"].endswith("/display/x?lang=en")
    assert "device=a.b.c" in paired.headers["Set-Cookie"] and "HttpOnly" in paired.headers["Set-Cookie"]
    assert device_token(request("/display/x", headers={"Cookie": "device=x.y.z"})) == "x.y.z"
    assert device_token(request("/display/x")) is None


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_the_display_shows_the_board_in_the_page_language(lang):
    html = render(request(f"/display/npra-isa-town?lang={lang}"), "display.html", board=BOARD,
                  branch="npra-isa-town", now="09:10").get_data(as_text=True)
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in html
    assert "P-014" in html and 'data-stream="/api/v1/branches/npra-isa-town/live"' in html
    assert ("يُخدم الآن" if lang == "ar" else "Now serving") in html
    assert ("الشباك 5" if lang == "ar" else "Counter 5") in html
    assert ("تجديد جواز السفر" if lang == "ar" else "Passport renewal") in html
    assert 'src="/static/js/display.js"' in html


@pytest.mark.parametrize("reason", ["unpaired", "refused", "other", "unknown", "unavailable"])
def test_an_unpaired_screen_says_what_to_do(reason):
    html = render(request("/display/npra-isa-town"), "display_unpaired.html", reason=reason).get_data(as_text=True)
    assert "<h2" in html and ("http-equiv=\"refresh\"" in html) == (reason == "unavailable")


def test_a_display_is_paired_by_a_good_display_token_for_its_branch(tmp_path):
    config = {"MAWAEED_PUBLIC_URL": "http://mawaeed.test", "MAWAEED_DATA_DIR": str(tmp_path / "suite")}
    issuer = DevelopmentIssuer(config["MAWAEED_DATA_DIR"], config["MAWAEED_PUBLIC_URL"])
    stranger = DevelopmentIssuer(str(tmp_path / "elsewhere"), config["MAWAEED_PUBLIC_URL"])  # a withdrawn key
    pages = display.DisplayPages.__new__(display.DisplayPages)
    pages.config = config
    here = "npra-isa-town"
    assert pages._pairing(None, here) == "unpaired"
    assert pages._pairing(issuer.issue("display", branches=[here]), here) == "paired"
    assert pages._pairing(issuer.issue("display", branches=["npra-muharraq"]), here) == "other"
    assert pages._pairing(issuer.issue("kiosk", branches=[here]), here) == "other"
    assert pages._pairing(issuer.issue("display", branches=[here], ttl_seconds=-3600), here) == "refused"
    assert pages._pairing(stranger.issue("display", branches=[here]), here) == "refused"
    assert pages._pairing("a.b.c", here) == "refused"


def test_every_string_of_the_display_has_its_arabic():
    arabic = catalogue("ar")
    for template in TEMPLATES:
        for _, message, _, _ in extract_from_file("jinja2", HERE / "templates" / template,
                                                  options={"extensions": "jinja2.ext.i18n"}):
            assert arabic.get(message) is not None and arabic.get(message).string, (template, message)


def test_no_inline_script_or_style_anywhere_on_the_display():
    for template in TEMPLATES:
        text = (HERE / "templates" / template).read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert "<style" not in text and "style=" not in text and " on" + "click=" not in text, template
    script = (HERE / "static/js/display.js").read_text(encoding="utf-8")
    assert "http://" not in script and "https://" not in script
    assert "ar-SA" in script and "en-GB" in script  # the voice: Arabic, then English


# -- still paired? (an open screen asks; its token may have been revoked since the page was served) -----------

def paired_pages(tmp_path, **settings):
    config = {"MAWAEED_PUBLIC_URL": "http://mawaeed.test", "MAWAEED_DATA_DIR": str(tmp_path / "suite"), **settings}
    pages = display.DisplayPages.__new__(display.DisplayPages)
    pages.config = config
    return pages, DevelopmentIssuer(config["MAWAEED_DATA_DIR"], config["MAWAEED_PUBLIC_URL"])


def check(pages, token=None, branch="npra-isa-town"):
    return pages.display_paired(request(f"/display/{branch}/paired",
                                        headers={"Cookie": f"device={token}"} if token else {}), branch)


def test_the_pairing_check_says_204_for_a_paired_screen_and_401_or_403_when_not(tmp_path):
    pages, issuer = paired_pages(tmp_path)
    stranger = DevelopmentIssuer(str(tmp_path / "elsewhere"), "http://mawaeed.test")  # a withdrawn key
    here = "npra-isa-town"
    answers = {
        "paired": check(pages, issuer.issue("display", branches=[here])),
        "missing": check(pages),
        "expired": check(pages, issuer.issue("display", branches=[here], ttl_seconds=-3600)),
        "revoked": check(pages, stranger.issue("display", branches=[here])),
        "other branch": check(pages, issuer.issue("display", branches=["npra-muharraq"])),
        "kiosk": check(pages, issuer.issue("kiosk", branches=[here])),
    }
    assert {what: answer.status_code for what, answer in answers.items()} == {
        "paired": 204, "missing": 401, "expired": 401, "revoked": 401, "other branch": 403, "kiosk": 403}
    assert answers["paired"].get_data() == b""
    for what, answer in answers.items():
        assert answer.headers["Cache-Control"] == "no-store", what
        assert "Set-Cookie" not in answer.headers, what   # the check never drops (or sets) the cookie
        if answer.status_code != 204:
            error = json.loads(answer.get_data())["error"]  # the suite's error shape, in both languages
            assert error["code"] == ("FORBIDDEN" if answer.status_code == 403 else "UNAUTHENTICATED"), what
            assert error["message"] and error["message_ar"], what
            assert answer.content_type.startswith("application/json"), what
    assert answers["missing"].headers["WWW-Authenticate"].startswith("Bearer")


def test_the_pairing_check_does_not_unpair_while_the_issuers_keys_are_out_of_reach(tmp_path):
    # an issuer that does not answer: its discovery document cannot be fetched (connection refused)
    pages, issuer = paired_pages(tmp_path, MAWAEED_OIDC_ISSUER="http://127.0.0.1:9/realms/mawaeed")
    token = issuer.issue("display", branches=["npra-isa-town"])
    assert pages._pairing(token, "npra-isa-town") == "unavailable"
    answer = check(pages, token)
    assert answer.status_code == 503 and answer.headers["Cache-Control"] == "no-store"
    error = json.loads(answer.get_data())["error"]
    assert error["code"] == "UNAVAILABLE" and error["message_ar"]
    assert check(pages).status_code == 401   # no token at all: nothing to wait for


def test_a_key_set_that_cannot_be_fetched_is_an_outage_not_a_revocation(tmp_path, monkeypatch):
    """PyJWT's key-set client says "cannot fetch" as a PyJWKClientConnectionError, which the verifier words as
    any bad key: the page asks the keys itself to tell the two apart."""
    import jwt
    from shared import auth
    from services.web import devices

    class Unreachable:
        def signing_key(self, kid):
            raise jwt.PyJWKClientConnectionError("Fail to fetch data from the url, err: timed out")

    pages, issuer = paired_pages(tmp_path)
    verifier = auth.Verifier("http://mawaeed.test", "mawaeed", Unreachable())
    monkeypatch.setattr(display, "verifier_for", lambda config: verifier)
    monkeypatch.setattr(devices, "verifier_for", lambda config: verifier)
    assert check(pages, issuer.issue("display", branches=["npra-isa-town"])).status_code == 503


def test_the_page_tells_its_script_where_and_how_often_to_check_its_pairing():
    assert display.pairing_check_seconds(request("/display/x")) == 120
    assert display.pairing_check_seconds(request("/display/x?pairing_check=5")) == 5
    assert display.pairing_check_seconds(request("/display/x?pairing_check=0")) == 2      # never a flood
    assert display.pairing_check_seconds(request("/display/x?pairing_check=86400")) == 120  # never later
    assert display.pairing_check_seconds(request("/display/x?pairing_check=soon")) == 120
    html = render(request("/display/npra-isa-town"), "display.html", board=BOARD, branch="npra-isa-town",
                  now="09:10", pairing_check=5).get_data(as_text=True)
    assert 'data-paired="/display/npra-isa-town/paired"' in html and 'data-pairing-check="5"' in html
    assert 'data-pairing-check="120"' in render(request("/display/npra-isa-town"), "display.html", board=BOARD,
                                                branch="npra-isa-town", now="09:10").get_data(as_text=True)


def test_the_script_reloads_when_refused_and_checks_again_after_an_outage():
    script = (HERE / "static/js/display.js").read_text(encoding="utf-8")
    check_part = script[script.index("// -- still paired?"):script.index("// -- the stream")]
    assert "dataset.paired" in check_part and "dataset.pairingCheck" in check_part
    assert "setInterval(checkPairing" in check_part
    assert "answer.status === 401 || answer.status === 403" in check_part and "location.reload()" in check_part
    assert 'cache: "no-store"' in check_part
    stream = script[script.index("// -- the stream"):]
    assert "checkPairing()" in stream   # each time the stream comes back


def test_a_screen_whose_keys_are_out_of_reach_says_it_will_try_again(tmp_path):
    pages, issuer = paired_pages(tmp_path, MAWAEED_OIDC_ISSUER="http://127.0.0.1:9/realms/mawaeed")
    shown = pages.display(request("/display/npra-isa-town?lang=en", headers={
        "Cookie": f"device={issuer.issue('display', branches=['npra-isa-town'])}"}), "npra-isa-town")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 503 and "cannot be shown right now" in html and 'http-equiv="refresh"' in html
    assert not any(c.startswith("device=") for c in shown.headers.getlist("Set-Cookie"))  # still paired
