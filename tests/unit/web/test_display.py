"""The waiting-room display (services/web/display.py, live.py): the stream's messages, one board fetch per change
for all of a branch's screens, the subscription the hub is fed by, the page rendered in both languages with every
word translated, and no inline script or style (the content security policy allows neither)."""
import json
import re

import eventlet
import pytest
from babel.messages.extract import extract_from_file
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.topology import REPLICA, SUBSCRIPTIONS, declared_by, subscriptions_to
from services.web import live
from services.web.devices import device_token, pair
from services.web.i18n import catalogue
from services.web.pages import HERE, render

BOARD = {"branch": "npra-isa-town", "name_en": "Isa Town branch", "name_ar": "فرع مدينة عيسى", "date": "2026-12-07",
         "closed": False, "now_serving": [{"counter": "5", "number": "P-014", "service": "passport-renewal"}],
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
    assert first.startswith("retry: 2000\ndata: ") and json.loads(first.split("data: ")[1]) == BOARD
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
    assert not any(s.live_only for s in SUBSCRIPTIONS.values() if s is not subscription)
    assert all(s.queue().queue_arguments["x-single-active-consumer"] for s in declared_by("queue"))


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


@pytest.mark.parametrize("reason", ["unpaired", "other", "unknown", "unavailable"])
def test_an_unpaired_screen_says_what_to_do(reason):
    html = render(request("/display/npra-isa-town"), "display_unpaired.html", reason=reason).get_data(as_text=True)
    assert "<h2" in html and ("http-equiv=\"refresh\"" in html) == (reason == "unavailable")


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
