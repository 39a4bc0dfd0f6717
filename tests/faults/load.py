"""A steady load through the gateway, as real callers make it: people booking and cancelling, kiosks checking
walk-ins in, clerks calling the next ticket and serving it. Every answer is recorded (when, which route, status,
whether a 5xx said Retry-After), and every write the suite accepted (2xx) goes into the ledger the checks compare
with the logs. A write that got no answer or a 5xx may or may not have happened: it is not in the ledger, and the
checks only require that it did not happen twice.
"""
import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

import requests

from shared.schedule import WEEKDAYS

FIRST_DAY = date(2026, 12, 7)  # the suite starts on Sunday 2026-12-06 at 09:00; bookings from Monday on
WRITES = {"book", "cancel", "check-in", "call", "served"}

_cprs = itertools.count(1)
_cpr_lock = threading.Lock()


def new_cpr() -> str:
    """A CPR nobody used yet in this run (9 digits, the first four a plausible YYMM)."""
    with _cpr_lock:
        n = next(_cprs)
    return f"{70 + n // 1_200_000 % 30:02d}{n // 100_000 % 12 + 1:02d}{n % 100_000:05d}"


@dataclass
class Answer:
    sent: float          # time.monotonic() when the request went (green threads: never earlier than it went)
    at: float            # time.monotonic() when the answer (or the failure) came
    op: str              # book, cancel, check-in, call, served, open
    route: str           # the route, without ids
    status: int | None   # None: no answer (refused, reset, timed out)
    retry_after: bool
    detail: str = ""     # the error code, or the exception


@dataclass
class Ledger:
    """What the suite accepted (2xx), for the checks; shared by every client of a run and kept across faults."""
    booked: dict = field(default_factory=dict)      # reference -> (branch, service, start)
    cancelled: set = field(default_factory=set)     # references
    checked_in: set = field(default_factory=set)    # ticket ids
    called: list = field(default_factory=list)      # ticket ids, one per accepted call
    serving: dict = field(default_factory=dict)     # branch -> the ticket at its counter 1, until served
    answers: list = field(default_factory=list)     # every Answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)


class Catalogue:
    """The branches, their services and the places one can book, read once from the API."""

    def __init__(self, api: str, days: int = 6):
        self.branches = requests.get(f"{api}/branches", timeout=10).json()
        self.walk_ins = [(b["id"], s["id"]) for b in self.branches for s in b["services"]
                         if not (b["id"] == "traffic-driving-school")]  # appointments only there
        asks = []  # (branch, service, day) of the coming working days
        for day in (FIRST_DAY + timedelta(days=n) for n in range(days + 4)):
            for branch in self.branches:
                week = {d["day"]: d["periods"] for d in branch["opening_hours"]}
                if week[WEEKDAYS[day.weekday()]]:
                    asks += [(branch["id"], service["id"], day.isoformat()) for service in branch["services"]]

        def places(ask):
            answer = requests.get(f"{api}/availability", timeout=30,
                                  params=dict(zip(("branch", "service", "date"), ask))).json()
            return [(ask[0], ask[1], s["start"]) for s in answer["slots"] if s["bookable"]
                    for _ in range(s["remaining"])]

        with ThreadPoolExecutor(8) as pool:
            self.slots = [place for found in pool.map(places, asks) for place in found]  # (branch, service, start)
        random.Random(7).shuffle(self.slots)
        self._next = itertools.count()

    def next_slot(self) -> tuple[str, str, str]:
        """A place (round robin over every place of the coming days; a cancelled one comes round again)."""
        return self.slots[next(self._next) % len(self.slots)]


class Load:
    """`bookers` threads booking (and cancelling `cancel_share` of what they book), one kiosk checking walk-ins in,
    one clerk calling and serving at every branch; `pause` seconds between a client's requests."""

    def __init__(self, suite, catalogue: Catalogue, ledger: Ledger, bookers: int = 3, pause: float = 0.1,
                 cancel_share: float = 0.5, kiosks: int = 1, clerks: int = 1, limit_events: int | None = None):
        self.suite, self.catalogue, self.ledger = suite, catalogue, ledger
        self.pause, self.cancel_share, self.limit_events = pause, cancel_share, limit_events
        self.api = suite.api
        self.staff = suite.as_("directorate_admin", directorates=["npra", "cid", "traffic", "customs"])
        self.stopping = threading.Event()
        self.events_made = 0  # booking events accepted by this load (book + cancel)
        self.threads = ([threading.Thread(target=self._booker, args=(i,), daemon=True) for i in range(bookers)]
                        + [threading.Thread(target=self._kiosk, args=(i,), daemon=True) for i in range(kiosks)]
                        + [threading.Thread(target=self._clerk, args=(i,), daemon=True) for i in range(clerks)])

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _post(self, session, op: str, route: str, path: str, body: dict, headers=None) -> requests.Response | None:
        sent = time.monotonic()
        try:
            response = session.post(f"{self.api}{path}", json=body, headers=headers, timeout=15)
        except requests.RequestException as exc:
            self.ledger.record(Answer(sent, time.monotonic(), op, route, None, False, type(exc).__name__))
            return None
        detail = ""
        if response.status_code >= 400:
            try:
                detail = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                detail = response.text[:120]
        self.ledger.record(Answer(sent, time.monotonic(), op, route, response.status_code,
                                  "Retry-After" in response.headers, detail))
        return response

    def _done(self) -> bool:
        return self.stopping.is_set() or (self.limit_events is not None and self.events_made >= self.limit_events)

    def _booker(self, n: int) -> None:
        session, rng = requests.Session(), random.Random(n)
        while not self._done():
            branch, service, start = self.catalogue.next_slot()
            cpr = new_cpr()
            body = {"cpr": cpr, "branch": branch, "service": service, "start": start, "name": f"Load {cpr}",
                    "language": rng.choice(["ar", "en"])}
            if rng.random() < 0.5:  # how they want to hear from the suite
                body["mobile"] = "+97333000000"
            else:
                body["email"] = f"p{cpr}@example.bh"
            response = self._post(session, "book", "POST /bookings", "/bookings", body)
            if response is not None and response.status_code == 201:
                reference = response.json()["reference"]
                with self.ledger.lock:
                    self.ledger.booked[reference] = (branch, service, start)
                    self.events_made += 1
                if rng.random() < self.cancel_share:
                    response = self._post(session, "cancel", "POST /bookings/{ref}/cancel",
                                          f"/bookings/{reference}/cancel", {"cpr": cpr})
                    if response is not None and response.status_code == 200:
                        with self.ledger.lock:
                            self.ledger.cancelled.add(reference)
                            self.events_made += 1
            self.stopping.wait(self.pause)

    def _kiosk(self, n: int) -> None:
        session, rng = requests.Session(), random.Random(100 + n)
        while not self._done():
            branch, service = rng.choice(self.catalogue.walk_ins)
            response = self._post(session, "check-in", "POST /branches/{b}/check-ins", f"/branches/{branch}/check-ins",
                                  {"walk_in": True, "cpr": new_cpr(), "service": service}, self.staff)
            if response is not None and response.status_code in (200, 201):
                with self.ledger.lock:
                    self.ledger.checked_in.add(response.json()["ticket"]["id"])
            self.stopping.wait(self.pause * 3)

    def open_counters(self) -> None:
        """Counter 1 of every branch serves all the branch's services (before the load starts)."""
        for branch in self.catalogue.branches:
            response = requests.post(f"{self.api}/branches/{branch['id']}/counters/1/open", headers=self.staff,
                                     json={"services": [s["id"] for s in branch["services"]]}, timeout=15)
            assert response.status_code == 200, response.text

    def _clerk(self, n: int) -> None:
        session = requests.Session()
        serving = self.ledger.serving  # kept from one load to the next: a counter serves one ticket at a time
        branches = [b["id"] for b in self.catalogue.branches]
        for turn in itertools.count():
            if self._done():
                return
            branch = branches[turn % len(branches)]
            if branch in serving:
                response = self._post(session, "served", "POST /tickets/{id}/served",
                                      f"/tickets/{serving[branch]}/served", {}, self.staff)
                if response is not None and (response.status_code == 200 or 400 <= response.status_code < 500):
                    del serving[branch]  # served, or the suite says it cannot be (already served): move on
            else:
                response = self._post(session, "call", "POST /branches/{b}/counters/{c}/call-next",
                                      f"/branches/{branch}/counters/1/call-next", {}, self.staff)
                if response is not None and response.status_code == 200:
                    ticket = response.json()["ticket"]["id"]
                    with self.ledger.lock:
                        self.ledger.called.append(ticket)
                    serving[branch] = ticket
            self.stopping.wait(self.pause)
