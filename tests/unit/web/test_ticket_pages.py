"""The live ticket page (/t/<token>) and the feedback page (/feedback/<token>) of services/web/ticket.py, with
the queue routes behind them (GET /api/v1/tickets/by-token/<token>, GET /api/v1/feedback/<token>), on an embedded
suite started as a newcomer starts it and driven over HTTP as a phone's browser drives them (no scripts)."""
import re
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.suite import Suite, running

ROOT = Path(__file__).resolve().parents[3]

BRANCH, PASSPORT = "npra-isa-town", "passport-renewal"
TIMEOUT = 15


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("ticket"))) as started:
        yield started


@pytest.fixture(scope="module")
def clerk(suite):
    return suite.as_("clerk", branches=[BRANCH], counter="5")


def walk_in(suite, cpr: str | None = None) -> dict:
    answer = requests.post(f"{suite.api}/branches/{BRANCH}/check-ins", timeout=TIMEOUT,
                           headers=suite.as_("kiosk", branches=[BRANCH]),
                           json={"walk_in": True, "service": PASSPORT, "cpr": cpr or fresh_cpr()})
    assert answer.status_code == 201, answer.text
    return answer.json()


def fresh_cpr() -> str:
    return f"9003{uuid.uuid4().int % 100000:05d}"


def page(suite, path: str, method: str = "GET", data=None):
    return requests.request(method, suite.base_url + path, data=data, timeout=TIMEOUT, allow_redirects=False)


def served_visit(suite, clerk) -> str:
    """A walk-in called to counter 5 and served: its feedback token."""
    walk_in(suite)
    assert requests.post(f"{suite.api}/branches/{BRANCH}/counters/5/open", json={"services": [PASSPORT]},
                         headers=clerk, timeout=TIMEOUT).status_code == 200
    called = requests.post(f"{suite.api}/branches/{BRANCH}/counters/5/call-next", headers=clerk, timeout=TIMEOUT)
    served = requests.post(f"{suite.api}/tickets/{called.json()['ticket']['id']}/served", headers=clerk,
                           timeout=TIMEOUT)
    assert served.status_code == 200, served.text
    return served.json()["feedback"]["token"]


# -- the live ticket ----------------------------------------------------------------------------------

def test_the_check_in_answer_links_the_live_ticket_and_the_link_tells_nothing_personal(suite):
    cpr = fresh_cpr()
    checked_in = walk_in(suite, cpr)
    link = checked_in["link"]
    assert link["url"] == f"{suite.base_url}/t/{link['token']}"
    answer = requests.get(f"{suite.api}/tickets/by-token/{link['token']}", timeout=TIMEOUT)  # public: no token
    assert answer.status_code == 200
    ticket = answer.json()
    assert ticket["number"] == checked_in["ticket"]["number"] and ticket["status"] == "waiting"
    assert ticket["position"] >= 1 and ticket["estimated_wait_minutes"] is not None and ticket["counter"] is None
    assert cpr not in answer.text and checked_in["ticket"]["id"] not in answer.text
    for made_up in ("made-up-token-123", f"{checked_in['ticket']['id']}.AAAAAAAAAAAAAAAAAAAA"):
        refused = requests.get(f"{suite.api}/tickets/by-token/{made_up}", timeout=TIMEOUT)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "TICKET_NOT_FOUND"
        assert refused.json()["error"]["message_ar"]


def test_the_live_ticket_shows_the_place_then_the_counter_it_is_called_to(suite, clerk):
    requests.post(f"{suite.api}/branches/{BRANCH}/counters/5/close", headers=clerk, timeout=TIMEOUT)
    link = walk_in(suite)["link"]
    waiting = page(suite, f"/t/{link['token']}?lang=en")
    html = waiting.text
    assert waiting.status_code == 200 and '<html lang="en" dir="ltr">' in html
    assert "Your place in line" in html and re.search(r'data-field="position">\d+</dd>', html)
    assert re.search(r'<div class="state called-box" data-when="called" hidden>', html)
    assert f'href="/t/{link["token"]}"' in html and ">Refresh</a>" in html  # without scripts: reload
    assert '<script src="/static/js/ticket.js"></script>' in html and "<style" not in html and " style=" not in html
    assert page(suite, "/static/js/ticket.js").status_code == 200

    requests.post(f"{suite.api}/branches/{BRANCH}/counters/5/open", json={"services": [PASSPORT]}, headers=clerk,
                  timeout=TIMEOUT)
    number = requests.get(f"{suite.api}/tickets/by-token/{link['token']}", timeout=TIMEOUT).json()["number"]
    for _ in range(50):  # call until it is this ticket's turn (earlier tests left others waiting)
        called = requests.post(f"{suite.api}/branches/{BRANCH}/counters/5/call-next", headers=clerk, timeout=TIMEOUT)
        assert called.status_code == 200, called.text
        if called.json()["ticket"]["number"] == number:
            break
        requests.post(f"{suite.api}/tickets/{called.json()['ticket']['id']}/served", headers=clerk, timeout=TIMEOUT)
    shown = page(suite, f"/t/{link['token']}?lang=en")
    assert 'You are called to counter <span data-field="counter">5</span>' in shown.text
    assert '<div class="state called-box" data-when="called">' in shown.text
    arabic = page(suite, f"/t/{link['token']}?lang=ar")
    assert 'تفضل إلى الشباك رقم <span data-field="counter">5</span>' in arabic.text
    assert requests.get(f"{suite.api}/tickets/by-token/{link['token']}", timeout=TIMEOUT).json()["counter"] == "5"
    requests.post(f"{suite.api}/tickets/{called.json()['ticket']['id']}/served", headers=clerk, timeout=TIMEOUT)
    assert "Your visit is complete" in page(suite, f"/t/{link['token']}?lang=en").text


def test_a_made_up_ticket_link(suite):
    shown = page(suite, "/t/made-up-token-123?lang=en")
    assert shown.status_code == 404 and "This ticket link is not valid" in shown.text
    assert "ticket.js" not in shown.text


# -- feedback -----------------------------------------------------------------------------------------

def test_the_feedback_page_is_a_form_sent_with_one_button_and_used_once(suite, clerk):
    token = served_visit(suite, clerk)
    status = requests.get(f"{suite.api}/feedback/{token}", timeout=TIMEOUT).json()
    assert status["served"] is True and status["rated"] is False and status["number"].startswith("P-")

    form = page(suite, f"/feedback/{token}?lang=en")
    html = form.text
    assert form.status_code == 200 and "How was your visit?" in html
    assert f'<form method="post" action="/feedback/{token}"' in html
    for value, text in (("1", "1 – Very poor"), ("3", "3 – Fair"), ("5", "5 – Excellent")):
        assert f'<input type="radio" id="score-{value}" name="score" value="{value}">' in html
        assert f'<label for="score-{value}">{text}</label>' in html
    assert '<label for="comment">Comment (optional)</label>' in html and '<button type="submit">Send</button>' in html
    assert html.count("<button") == 1 and "<style" not in html and " style=" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))

    no_score = page(suite, f"/feedback/{token}", "POST", {"comment": "لطيف"})
    assert no_score.status_code == 422 and "اختر تقييمًا من 1 إلى 5." in no_score.text
    assert 'aria-invalid="true"' in no_score.text and "لطيف</textarea>" in no_score.text
    assert requests.get(f"{suite.api}/feedback/{token}", timeout=TIMEOUT).json()["rated"] is False  # nothing sent

    sent = page(suite, f"/feedback/{token}?lang=en", "POST", {"score": "4", "comment": "Quick and kind"})
    assert sent.status_code == 200 and "Your feedback has been received." in sent.text
    assert requests.get(f"{suite.api}/feedback/{token}", timeout=TIMEOUT).json()["rated"] is True

    used = page(suite, f"/feedback/{token}?lang=en")
    assert used.status_code == 410  # gone: a used link is not a page with a form
    assert "This visit has already been rated" in used.text and "<form" not in used.text
    again = page(suite, f"/feedback/{token}?lang=en", "POST", {"score": "1"})
    assert again.status_code == 410
    assert "This visit has already been rated" in again.text and "<form" not in again.text
    in_arabic = page(suite, f"/feedback/{token}?lang=ar")
    assert in_arabic.status_code == 410 and "تم تقييم هذه الزيارة مسبقًا. شكرًا لتقييمك." in in_arabic.text


def test_choosing_a_score_sends_nothing_until_the_one_button_after_the_comment(suite, clerk):
    token = served_visit(suite, clerk)
    html = page(suite, f"/feedback/{token}?lang=en").text
    # the button comes after the comment, and no script sends the form when a score is picked
    assert html.index('<input type="radio"') < html.index("<textarea") < html.index('<button type="submit">')
    assert "onchange" not in html and "onclick" not in html
    script = (ROOT / "services/web/static/js/feedback.js").read_text(encoding="utf-8")
    assert not re.search(r"\.(request)?[sS]ubmit\(|\bchange\b", script)


def test_a_made_up_feedback_link_says_so_without_a_form(suite):
    for made_up in ("made-up-token-123", "6f1c2a9e-3b7d-4d0e-9a51-0c2f8e4b7a13.AAAAAAAAAAAAAAAAAAAA"):
        shown = page(suite, f"/feedback/{made_up}")
        assert shown.status_code == 404 and "رابط التقييم غير صالح" in shown.text and "<form" not in shown.text
        refused = requests.get(f"{suite.api}/feedback/{made_up}", timeout=TIMEOUT)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "FEEDBACK_TOKEN_UNKNOWN"
        posted = page(suite, f"/feedback/{made_up}?lang=en", "POST", {"score": "5"})
        assert "This feedback link is not valid" in posted.text and "<form" not in posted.text


def test_a_visit_not_over_yet_cannot_be_rated(suite):
    from services.queue.feedback import token_for  # a feedback link before its visit is served
    ticket = walk_in(suite)["ticket"]
    token = token_for(ticket["id"], "embedded-only-feedback-key")
    shown = page(suite, f"/feedback/{token}?lang=en")
    assert shown.status_code == 409  # not yet: the same link works once the visit is over
    assert "You can rate this visit once it is over." in shown.text and "<form" not in shown.text
