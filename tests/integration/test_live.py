"""The live board, end to end in both modes: a call made through the API reaches a screen connected to its
branch's Server-Sent Events stream (embedded: kombu's in-memory transport, one process; distributed: RabbitMQ,
the web service in its own process behind the gateway, which passes the stream on as it comes), and the stream
shows tickets and counters only: no CPR, booking reference, name or ticket id."""
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta

import pytest
import requests

from tests.support.net import free_port
from tests.support.suite import Suite, running

pytestmark = pytest.mark.integration

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"
MORNING = "2026-12-07T08:20:00+03:00"  # a Monday: the branch is open, and a 09:20 appointment can still be booked
SPEED = 300                            # the suite's clock: five minutes a second, so check-in opens in seconds
TIMEOUT = 10


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def suite(request, tmp_path_factory):
    with running(Suite(request.param, tmp_path_factory.mktemp(f"live-{request.param}"), now=MORNING,
                       speed=SPEED)) as started:
        yield started


class Screen:
    """A display's connection to the live stream, read in a thread as a browser's EventSource reads it."""

    def __init__(self, suite, branch: str = BRANCH, base_url: str | None = None):
        self.raw, self.boards, self.closed = [], [], False
        self.response = requests.get(f"{base_url or suite.base_url}/api/v1/branches/{branch}/live", stream=True, timeout=(5, 60),
                                     headers={"Accept": "text/event-stream"})
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        kind = None  # the message's `event:` line: a board has none, the heartbeat is `ping`
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                self.raw.append(line)
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind in (None, "message"):
                    self.boards.append(json.loads(line.removeprefix("data: ")))
                elif not line:
                    kind = None
        except (requests.RequestException, ValueError):
            pass
        self.closed = True

    def wait_for(self, predicate, timeout: float = 15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((b for b in list(self.boards) if predicate(b)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no such board within {timeout} s; last: {self.boards[-1:]}")

    def close(self):
        """Hang up as a browser tab does: the socket shut, the reading thread ends on its own."""
        try:
            self.response.raw._connection.sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        self.thread.join(timeout=5)


def serving(number: str, counter: str):
    return lambda board: {"number": number, "counter": counter} in [
        {k: row[k] for k in ("number", "counter")} for row in board["now_serving"]]


def fresh_cpr() -> str:
    return f"9001{uuid.uuid4().int % 100000:05d}"


def test_a_call_reaches_a_connected_screen_and_the_stream_names_nobody(suite):
    clerk = suite.as_("clerk", branches=[BRANCH])
    base = f"{suite.api}/branches/{BRANCH}"
    # someone with a booking (a name, a reference, a CPR) and a walk-in (a CPR)
    starts = requests.get(f"{suite.api}/availability", params={"branch": BRANCH, "service": SERVICE,
                                                               "date": "2026-12-07"}, timeout=TIMEOUT).json()["slots"]
    bookable = [s["start"] for s in starts if s["bookable"] and s["remaining"] > 0]
    # not the first one: on the suite's fast clock it can become too close to book between this read and the booking
    first = datetime.fromisoformat(bookable[0])
    start = next(s for s in bookable if datetime.fromisoformat(s) >= first + timedelta(minutes=30))
    booker, walker, name = fresh_cpr(), fresh_cpr(), "Maryam Live-Board"
    booked = requests.post(f"{suite.api}/bookings", timeout=TIMEOUT, json={
        "cpr": booker, "branch": BRANCH, "service": SERVICE, "start": start, "name": name, "language": "en"})
    assert booked.status_code == 201, booked.text
    reference = booked.json()["reference"]

    screen = Screen(suite)
    try:
        assert screen.response.status_code == 200
        assert screen.response.headers["Content-Type"].startswith("text/event-stream")
        first = screen.wait_for(lambda board: True)  # the current board comes first
        assert first["branch"] == BRANCH and "now_serving" in first

        for counter in ("4", "5"):
            opened = requests.post(f"{base}/counters/{counter}/open", json={"services": [SERVICE]}, headers=clerk,
                                   timeout=TIMEOUT)
            assert opened.status_code == 200, opened.text
        walk_in = requests.post(f"{base}/check-ins", json={"walk_in": True, "cpr": walker, "service": SERVICE},
                                headers=clerk, timeout=TIMEOUT)
        assert walk_in.status_code == 201, walk_in.text

        def check_in_with_booking():  # the suite's clock reaches the check-in window in a few seconds
            answer = requests.post(f"{base}/check-ins", json={"reference": reference, "cpr": booker}, headers=clerk,
                                   timeout=TIMEOUT)
            return answer if answer.status_code in (200, 201) else None
        deadline = time.monotonic() + 30
        while (checked_in := check_in_with_booking()) is None:
            assert time.monotonic() < deadline, "the booking never became ready to check in"
            time.sleep(0.3)

        called = {}
        for counter in ("4", "5"):
            answer = requests.post(f"{base}/counters/{counter}/call-next", headers=clerk, timeout=TIMEOUT)
            assert answer.status_code == 200, answer.text
            called[counter] = answer.json()["ticket"]
        for counter, ticket in called.items():
            board = screen.wait_for(serving(ticket["number"], counter))
            assert {"number": ticket["number"], "counter": counter} in [
                {k: c[k] for k in ("number", "counter")} for c in board["last_called"]]
        # a recall is a change too: the recalled ticket comes first among the last calls
        time.sleep(0.5)  # the recall interval (60 s) on the suite's fast clock
        before = len(screen.boards)
        recalled = requests.post(f"{suite.api}/tickets/{called['4']['id']}/recall", headers=clerk, timeout=TIMEOUT)
        assert recalled.status_code == 200, recalled.text
        screen.wait_for(lambda board: len(screen.boards) > before and board is screen.boards[-1]
                        and board["last_called"][0]["number"] == called["4"]["number"])
    finally:
        screen.close()

    stream = "\n".join(screen.raw)
    ticket_ids = [t["id"] for t in called.values()] + [checked_in.json()["ticket"]["id"],
                                                      walk_in.json()["ticket"]["id"]]
    for secret in (booker, walker, reference, reference.replace("-", ""), name, "Maryam", *ticket_ids):
        assert secret not in stream, f"{secret!r} is on the public stream"
    assert "cpr" not in stream.lower() and "reference" not in stream.lower()


def test_the_stream_of_an_unknown_branch_is_a_404_and_the_display_needs_its_device(suite):
    answer = requests.get(f"{suite.api}/branches/nowhere-at-all/live", timeout=TIMEOUT,
                          headers={"Accept": "text/event-stream"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "UNKNOWN_BRANCH"
    assert requests.get(f"{suite.base_url}/display/{BRANCH}", timeout=TIMEOUT).status_code == 401
    other = suite.token("display", branches=["npra-muharraq"])
    assert requests.get(f"{suite.base_url}/display/{BRANCH}", cookies={"device": other},
                        timeout=TIMEOUT).status_code == 403
    mine = suite.token("display", branches=[BRANCH])
    session = requests.Session()
    paired = session.get(f"{suite.base_url}/display/{BRANCH}", params={"device": mine, "lang": "en"},
                         timeout=TIMEOUT)
    assert paired.status_code == 200 and "device=" not in paired.url  # the token left the address bar
    assert "Now serving" in paired.text and f"/api/v1/branches/{BRANCH}/live" in paired.text


def test_every_replica_of_the_pages_hears_every_call(suite):
    """Two web processes on one RabbitMQ: each has a queue of its own, so a screen connected to either sees a call
    at once (with one shared queue only one replica would hear it, the other a minute later at its resync)."""
    if suite.mode != "distributed":
        pytest.skip("one process in the embedded mode")
    port = free_port()
    second = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "web", "--listen", f"127.0.0.1:{port}"],
                              env=suite.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    screens = []
    try:
        other = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not _answers(f"{other}/health"):
            assert second.poll() is None and time.monotonic() < deadline, "the second web process did not start"
            time.sleep(0.2)
        clerk = suite.as_("clerk", branches=[BRANCH])
        base = f"{suite.api}/branches/{BRANCH}"
        screens = [Screen(suite), Screen(suite, base_url=other)]
        for screen in screens:
            screen.wait_for(lambda board: True)
        time.sleep(1)  # both replicas' queues are bound by now (each binds its own as it starts consuming)
        assert requests.post(f"{base}/counters/7/open", json={"services": [SERVICE]}, headers=clerk,
                             timeout=TIMEOUT).status_code == 200
        walk_in = requests.post(f"{base}/check-ins", json={"walk_in": True, "cpr": fresh_cpr(), "service": SERVICE},
                                headers=clerk, timeout=TIMEOUT)
        assert walk_in.status_code == 201, walk_in.text
        called = requests.post(f"{base}/counters/7/call-next", headers=clerk, timeout=TIMEOUT)
        assert called.status_code == 200, called.text
        for screen in screens:
            screen.wait_for(serving(called.json()["ticket"]["number"], "7"), timeout=10)
    finally:
        for screen in screens:
            screen.close()
        second.terminate()
        second.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
