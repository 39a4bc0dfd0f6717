"""`mawaeed simulate`: a realistic day at one branch, lived through the public HTTP API as its callers would.

Two parts: `plan_day` (pure: who books which slot, who comes when or never, how long each visit takes, who is
transferred, who rates and how) and `Simulation` (the HTTP driving: citizens book, a kiosk checks people in,
clerks open counters, call, recall, serve, transfer and mark no-shows, people rate their visit). The driving is
paced by the suite's clock, which may run fast (MAWAEED_CLOCK_SPEED): no answer of the API carries the time,
so it is read from the public board (its `date` turning to the day, `open_now` turning on, the `called_at`
of a call just made) and run on between readings at `--speed`, corrected by those readings.
"""
import heapq
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared.clock import LOCAL, parse_instant

FIRST_NAMES = ["Fatima", "Ali", "Maryam", "Hasan", "Noora", "Ahmed", "Zainab", "Yusuf", "Aisha", "Khalid",
               "Layla", "Omar", "Huda", "Salman", "Reem", "Jassim", "فاطمة", "علي", "مريم", "حسن", "نورة", "أحمد"]
FAMILY_NAMES = ["Al-Khalifa", "Al-Mahmood", "Al-Sayed", "Hasan", "Abdulla", "Al-Doseri", "الخياط", "العلوي"]
COMMENTS = ["Quick and friendly, thank you.", "The wait was too long.", "The clerk explained everything clearly.",
            "Not enough counters open in the morning.", "شكراً على الخدمة السريعة", "الانتظار كان طويلاً"]
NO_SHOW, TOO_LATE = 0.08, 0.04          # appointments: never come; come after the check-in window closed
CANCELS, MOVES = 0.06, 0.04             # appointments cancelled or moved to another slot before the day
AT_ONCE, AFTER_RECALL = 0.88, 0.07      # at the counter; the rest never answer the call
TRANSFERS, RATES, COMMENTS_SHARE = 0.04, 0.65, 0.15


@dataclass(frozen=True)
class Visitor:
    id: str                      # a001 (appointment) or w001 (walk-in)
    kind: str                    # appointment | walk_in
    cpr: str
    name: str
    language: str
    service: str
    slot: datetime | None        # the appointment's start (after a move, the new one)
    arrives: datetime | None     # None: never comes
    priority: str | None
    at_counter: str              # at_once | after_recall | gone
    service_minutes: float
    transfer_to: str | None
    transfer_minutes: float      # the visit at the second service, after a transfer
    rates: bool
    rating_draw: float           # with the wait, gives the score (score_for)
    comment: str | None
    rates_after_minutes: float
    cancels: bool = False
    moved_from: datetime | None = None


@dataclass(frozen=True)
class Shift:
    counter: str
    services: tuple
    opens: datetime
    closes: datetime


@dataclass(frozen=True)
class DayPlan:
    branch: str
    day: date
    opens: datetime
    closes: datetime
    visitors: tuple
    shifts: tuple


def periods_of(branch: dict, day: date) -> list[tuple[datetime, datetime]]:
    """The day's opening periods (local instants) from a branch as GET /api/v1/branches gives it."""
    week = branch["opening_hours"]
    today = week[day.isoweekday() % 7]  # Sunday first
    at = lambda hhmm: datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), LOCAL)  # noqa: E731
    return [(at(p["opens"]), at(p["closes"])) for p in today["periods"]]


def score_for(wait_minutes: float, draw: float) -> int:
    """A rating skewed by the wait: 5 for a short one down to 1 for over an hour, one up or down by temper."""
    base = 5 if wait_minutes <= 10 else 4 if wait_minutes <= 20 else 3 if wait_minutes <= 40 else \
        2 if wait_minutes <= 60 else 1
    return min(5, max(1, base - (draw < 0.15) + (draw > 0.85)))


def plan_day(branch: dict, day: date, slots: dict, seed: int = 1, scale: float = 1.0) -> DayPlan:
    """Who comes to `branch` on `day` and what happens to them, from `seed` alone (the same plan every time).
    `slots`: per service, the slots of that day as GET /api/v1/availability gives them; a service's counters
    are taken to be its largest slot capacity (the catalogue's counters are not public)."""
    rng = random.Random(f"{seed}:{branch['id']}:{day.isoformat()}")
    periods = periods_of(branch, day)
    if not periods:
        raise ValueError(f"{branch['id']} is closed on {day.isoformat()}")
    opens, closes = periods[0][0], periods[-1][1]
    durations = {s["id"]: s["duration_minutes"] for s in branch["services"]}
    services = sorted(durations)
    counters = {s: max([x["capacity"] for x in slots.get(s, [])] or [1]) for s in services}
    people = iter(range(1, 100000))

    def person(kind: str, service: str) -> dict:
        n = next(people)
        born = date(1950 + rng.randrange(56), 1 + rng.randrange(12), 1)
        language = "ar" if rng.random() < 0.6 else "en"
        return {"cpr": f"{born:%y%m}{n:05d}", "language": language, "service": service,
                "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(FAMILY_NAMES)}", "kind": kind,
                "priority": "elderly" if rng.random() < 0.05 else "disabled" if rng.random() < 0.02 else None}

    def visit(p: dict, vid: str, slot=None, arrives=None, **extra) -> Visitor:
        service = p["service"]
        draw = rng.random()
        at_counter = "at_once" if draw < AT_ONCE else "after_recall" if draw < AT_ONCE + AFTER_RECALL else "gone"
        others = [s for s in services if s != service]
        transfer_to = rng.choice(others) if others and rng.random() < TRANSFERS else None
        return Visitor(
            id=vid, kind=p["kind"], cpr=p["cpr"], name=p["name"], language=p["language"], service=service,
            slot=slot, arrives=arrives, priority=p["priority"], at_counter=at_counter,
            service_minutes=_minutes(rng, durations[service]),
            transfer_to=transfer_to, transfer_minutes=_minutes(rng, durations[transfer_to]) if transfer_to else 0,
            rates=rng.random() < RATES, rating_draw=rng.random(),
            comment=rng.choice(COMMENTS) if rng.random() < COMMENTS_SHARE else None,
            rates_after_minutes=rng.uniform(5, 90), **extra)

    visitors = []
    for service in services:  # appointments: about 60% of what is left to book, early slots a little fuller
        free = {parse_instant(s["start"]).astimezone(LOCAL): s["remaining"]
                for s in slots.get(service, []) if s.get("bookable") and s["remaining"] > 0}
        wanted = min(sum(free.values()), round(0.6 * scale * sum(free.values())))
        for _ in range(wanted):
            starts = [s for s, left in sorted(free.items()) if left > 0]
            weights = [1.5 if s.hour < 11 else 1.0 for s in starts]
            slot = rng.choices(starts, weights)[0]
            free[slot] -= 1
            p = person("appointment", service)
            roll = rng.random()
            if roll < NO_SHOW:
                arrives = None
            elif roll < NO_SHOW + TOO_LATE:
                arrives = slot + timedelta(minutes=rng.uniform(31, 50))
            else:  # most a little early, some late (after the 10 minutes' grace), inside the window
                arrives = slot + timedelta(minutes=max(-29.0, min(29.0, rng.gauss(-8, 9))))
            fate = rng.random()
            moved_from = None
            if CANCELS <= fate < CANCELS + MOVES:
                others = [s for s, left in sorted(free.items()) if left > 0 and s != slot]
                if others:
                    moved_from, slot = slot, rng.choice(others)
                    free[slot] -= 1
                    free[moved_from] += 1
                    arrives = arrives and slot + (arrives - moved_from)
            visitors.append(visit(p, f"a{len(visitors) + 1:03d}", slot=slot, arrives=arrives,
                                  cancels=fate < CANCELS, moved_from=moved_from))
    walk_ins = []
    for service in services:  # walk-ins peak mid-morning: a triangle over each period, its top 40% in
        for _ in range(round(20 * scale * counters[service] / 2)):
            start, end = rng.choices(periods, [(c - o).total_seconds() for o, c in periods])[0]
            end = max(start + timedelta(minutes=10), end - timedelta(minutes=45))
            length = (end - start).total_seconds()
            arrives = start + timedelta(seconds=rng.triangular(0, length, 0.4 * length))
            walk_ins.append((arrives, person("walk_in", service)))
    for i, (arrives, p) in enumerate(sorted(walk_ins, key=lambda w: (w[0], w[1]["cpr"])), start=1):
        visitors.append(visit(p, f"w{i:03d}", arrives=arrives))
    shifts, number = [], 0
    for service in services:  # staggered: one counter a service opens at once and stays; the others come later
        for k in range(counters[service]):
            number += 1
            late = timedelta(minutes=0 if k == 0 else rng.randrange(5, 40))
            early = timedelta(minutes=0 if k == 0 or rng.random() < 0.6 else rng.randrange(30, 75))
            shifts.append(Shift(str(number), (service,), opens + late, closes - early))
    return DayPlan(branch["id"], day, opens, closes, tuple(visitors), tuple(shifts))


def _minutes(rng: random.Random, duration: float) -> float:
    """A visit's length around the service's duration: log-normal, its median the duration."""
    return max(0.3 * duration, min(3 * duration, duration * math.exp(rng.gauss(0, 0.35))))


# -- driving the API ------------------------------------------------------------------------------------

class SimulationError(Exception):
    """Something the person running simulate can put right (said in one line)."""


class Api:
    """JSON over HTTP with urllib; 429 and 503 are waited out (Retry-After) and tried again."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def call(self, method: str, path: str, body=None, headers=None, query=None) -> tuple[int, dict | None]:
        url = f"{self.base}/api/v1{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(30):
            request = urllib.request.Request(url, data=data, method=method, headers={
                "Content-Type": "application/json", "Accept": "application/json", **(headers or {})})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    raw = response.read()
                    return response.status, json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                if exc.code in (429, 503) and attempt < 29:
                    time.sleep(min(float(exc.headers.get("Retry-After") or 1), 30))
                    continue
                try:
                    return exc.code, json.loads(raw) if raw else None
                except ValueError:
                    return exc.code, None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise SimulationError(f"cannot reach the suite at {self.base}: {reason}") from None
        raise SimulationError(f"{method} {path}: the suite kept answering 429/503")


def code_of(answer: dict | None) -> str:
    return ((answer or {}).get("error") or {}).get("code", "")


class SuiteClock:
    """The suite's now: the last instant read from it, run on by the real time since at `speed`; readings a
    while apart correct the speed."""

    def __init__(self, speed: float):
        self.speed = speed
        self.anchor: tuple[float, datetime] | None = None
        self.first: tuple[float, datetime] | None = None

    def seen(self, instant: datetime, precise: bool = True) -> None:
        mono = time.monotonic()
        self.anchor = (mono, instant)
        if not precise:
            return
        if self.first is None:
            self.first = (mono, instant)
        elif mono - self.first[0] >= 5:
            measured = (instant - self.first[1]).total_seconds() / (mono - self.first[0])
            if measured > 0:
                self.speed = measured

    def now(self) -> datetime:
        mono, instant = self.anchor
        return instant + timedelta(seconds=(time.monotonic() - mono) * self.speed)

    def real_seconds_until(self, instant: datetime) -> float:
        return (instant - self.now()).total_seconds() / self.speed


@dataclass
class Tally:
    booked: int = 0
    not_booked: int = 0
    cancelled: int = 0
    moved: int = 0
    checked_in: dict = field(default_factory=lambda: {"appointment": 0, "walk_in": 0})
    refused_check_ins: dict = field(default_factory=dict)
    never_came: int = 0
    served: int = 0
    no_shows: int = 0            # at the counter
    recalls: int = 0
    transfers: int = 0
    ratings: int = 0
    scores: list = field(default_factory=list)
    comments: int = 0
    day_closed: bool = False

    def summary(self) -> dict:
        return {"booked": self.booked, "not_booked": self.not_booked, "cancelled": self.cancelled,
                "moved": self.moved, "checked_in": dict(self.checked_in),
                "refused_check_ins": dict(self.refused_check_ins), "never_came": self.never_came,
                "served": self.served, "no_shows": self.no_shows, "recalls": self.recalls,
                "transfers": self.transfers, "ratings": self.ratings, "comments": self.comments,
                "satisfaction_mean": round(sum(self.scores) / len(self.scores), 2) if self.scores else None,
                "day_closed": self.day_closed}


class Simulation:
    def __init__(self, api: Api, branch: str, day: date, speed: float, seed: int, scale: float,
                 kiosk: str, clerks, out=sys.stdout):
        self.api, self.branch, self.day, self.seed, self.scale = api, branch, day, seed, scale
        self.clock = SuiteClock(speed)
        self.kiosk = {"Authorization": f"Bearer {kiosk}"}
        self.clerks = clerks          # counter -> token
        self.out = out
        self.tally = Tally()
        self.references: dict[str, str] = {}     # visitor id -> booking reference
        self.tickets: dict[str, Visitor] = {}     # ticket id -> visitor
        self.transferred: set[str] = set()
        self.serving: dict[str, str | None] = {}  # counter -> ticket id
        self.closing: set[str] = set()
        self.queue: list = []
        self.seq = 0
        self.opened_seen = False
        self.calls = 0

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    # -- before the day

    def prepare(self) -> DayPlan:
        status, branches = self.api.call("GET", "/branches")
        if status != 200:
            raise SimulationError(f"GET /api/v1/branches answered {status}")
        branch = next((b for b in branches if b["id"] == self.branch), None)
        if branch is None:
            raise SimulationError(f"no branch {self.branch!r} (see GET /api/v1/branches)")
        board = self.board()
        if date.fromisoformat(board["date"]) > self.day:
            raise SimulationError(f"the suite's clock is at {board['date']}, past {self.day}: start it on the "
                                  "morning of the day or before (MAWAEED_NOW)")
        slots = {}
        for service in branch["services"]:
            status, answer = self.api.call("GET", "/availability", query={
                "branch": self.branch, "service": service["id"], "date": self.day.isoformat()})
            if status != 200:
                raise SimulationError(f"availability of {service['id']} answered {status} {code_of(answer)}")
            slots[service["id"]] = answer["slots"]
        try:
            return plan_day(branch, self.day, slots, self.seed, self.scale)
        except ValueError as exc:
            raise SimulationError(str(exc)) from None

    def book(self, plan: DayPlan) -> None:
        for v in plan.visitors:
            if v.kind != "appointment":
                continue
            start = v.moved_from or v.slot
            status, answer = self.api.call("POST", "/bookings", {
                "cpr": v.cpr, "branch": self.branch, "service": v.service, "start": start.isoformat(),
                "name": v.name, "language": v.language, "mobile": f"+9733{v.cpr[-7:]}"})
            if status != 201:  # a slot taken meanwhile, or too soon for the suite's clock
                self.tally.not_booked += 1
                continue
            self.tally.booked += 1
            reference = self.references[v.id] = answer["reference"]
            if v.cancels:
                status, _ = self.api.call("POST", f"/bookings/{reference}/cancel", {"cpr": v.cpr})
                self.tally.cancelled += status == 200
            elif v.moved_from:
                status, _ = self.api.call("POST", f"/bookings/{reference}/reschedule",
                                          {"cpr": v.cpr, "start": v.slot.isoformat()})
                if status == 200:
                    self.tally.moved += 1
                else:  # the new slot went meanwhile: they keep the old one
                    self.references.pop(v.id)
                    self.tally.not_booked += 1
        self.say(f"booked {self.tally.booked} appointments ({self.tally.cancelled} cancelled, {self.tally.moved} "
                 f"moved, {self.tally.not_booked} not booked)")

    def board(self) -> dict:
        status, answer = self.api.call("GET", f"/branches/{self.branch}/board")
        if status == 404:
            raise SimulationError(f"no branch {self.branch!r} in the waiting rooms (see GET /api/v1/branches)")
        if status != 200:
            raise SimulationError(f"the board of {self.branch} answered {status} {code_of(answer)}")
        return answer

    def wait_for_the_day(self, plan: DayPlan) -> None:
        """Until the board shows the day (anchoring the clock at midnight, or at opening time)."""
        told = False
        while True:
            board = self.board()
            today = date.fromisoformat(board["date"])
            if today == self.day:
                if board["open_now"]:
                    self.clock.seen(plan.opens, precise=False)
                    self.opened_seen = True
                elif told:  # it turned to the day while we watched: it is just past midnight
                    self.clock.seen(datetime.combine(self.day, datetime.min.time(), LOCAL), precise=False)
                else:  # the morning of the day, before opening: an hour early at most (check-ins open 30' early)
                    self.clock.seen(plan.opens - timedelta(hours=1), precise=False)
                return
            if today > self.day:
                raise SimulationError(f"the day {self.day} went by before the simulation could start")
            if not told:
                self.say(f"waiting for {self.day} (the suite's clock is on {today})")
                told = True
            time.sleep(0.1)

    # -- the day

    def at(self, instant: datetime, action, *args) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (instant, self.seq, action, args))

    def wait_until(self, instant: datetime, plan: DayPlan) -> None:
        while True:
            if not self.opened_seen and self.clock.first is None:
                board = self.board()  # the opening is a reading of the clock, to the poll's interval
                if board["open_now"]:
                    self.opened_seen = True
                    if self.clock.now() < plan.opens:
                        self.clock.seen(plan.opens, precise=False)
            left = self.clock.real_seconds_until(instant)
            if left <= 0:
                return
            time.sleep(min(left, 0.05 if not self.opened_seen else 0.5))

    def run_day(self, plan: DayPlan) -> None:
        for shift in plan.shifts:
            self.at(shift.opens, self.open_counter, shift)
            self.at(shift.closes, self.close_counter, shift.counter)
        for v in plan.visitors:
            if v.kind == "appointment" and v.id not in self.references:
                continue
            if v.kind == "appointment" and v.cancels:
                continue
            if v.arrives is None:
                self.tally.never_came += 1
                continue
            self.at(v.arrives, self.arrive, v)
        while self.queue:
            instant, _, action, args = heapq.heappop(self.queue)
            self.wait_until(instant, plan)
            action(*args)

    def clerk(self, counter: str) -> dict:
        return {"Authorization": f"Bearer {self.clerks(counter)}"}

    def arrive(self, v: Visitor) -> None:
        body = ({"reference": self.references[v.id], "cpr": v.cpr} if v.kind == "appointment" else
                {"walk_in": True, "cpr": v.cpr, "service": v.service, "language": v.language})
        if v.priority:
            body["priority"] = v.priority
        status, answer = self.api.call("POST", f"/branches/{self.branch}/check-ins", body, self.kiosk)
        if status in (200, 201):
            self.tickets[answer["ticket"]["id"]] = v
            self.tally.checked_in[v.kind] += 1
        else:
            code = code_of(answer) or str(status)
            if status in (401, 403):
                raise SimulationError(f"the kiosk's check-in was refused: {status} {code}")
            self.tally.refused_check_ins[code] = self.tally.refused_check_ins.get(code, 0) + 1

    def open_counter(self, shift: Shift) -> None:
        status, answer = self.api.call("POST", f"/branches/{self.branch}/counters/{shift.counter}/open",
                                       {"services": list(shift.services)}, self.clerk(shift.counter))
        if status in (401, 403):
            raise SimulationError(f"counter {shift.counter} could not open: {status} {code_of(answer)}")
        if status == 200:
            self.serving[shift.counter] = None
            self.at(self.clock.now(), self.call_next, shift.counter)

    def close_counter(self, counter: str) -> None:
        self.closing.add(counter)
        if counter in self.serving and self.serving[counter] is None:
            self.api.call("POST", f"/branches/{self.branch}/counters/{counter}/close", {}, self.clerk(counter))
            self.serving.pop(counter)

    def call_next(self, counter: str) -> None:
        if counter not in self.serving or self.serving[counter] is not None:
            return
        if counter in self.closing:
            return self.close_counter(counter)
        status, answer = self.api.call("POST", f"/branches/{self.branch}/counters/{counter}/call-next", {},
                                       self.clerk(counter))
        now = self.clock.now()
        if status == 204:
            self.at(now + timedelta(minutes=1), self.call_next, counter)
            return
        if status != 200:  # the day closed, or the counter was closed under us
            self.serving.pop(counter, None)
            return
        ticket = answer["ticket"]
        self.serving[counter] = ticket["id"]
        self.calls += 1
        if self.calls % 10 == 1:
            self.read_clock(ticket["number"], counter)
            now = self.clock.now()
        v = self.tickets.get(ticket["id"])
        if v is None:  # not one of ours: serve it as it comes
            self.at(now + timedelta(minutes=10), self.finish, counter, ticket["id"])
        elif ticket["id"] in self.transferred:
            self.at(now + timedelta(minutes=v.transfer_minutes), self.finish, counter, ticket["id"])
        elif v.at_counter == "at_once":
            self.start_visit(counter, ticket["id"], v, now)
        else:
            self.at(now + timedelta(seconds=75), self.recall, counter, ticket["id"], v)

    def read_clock(self, number: str, counter: str) -> None:
        """The board's record of the call just made is the suite's time of it."""
        for call in self.board().get("last_called", []):
            if call["number"] == number and call["counter"] == counter and call["called_at"]:
                self.clock.seen(parse_instant(call["called_at"]))
                return

    def start_visit(self, counter: str, ticket: str, v: Visitor, now: datetime) -> None:
        if v.transfer_to:
            self.at(now + timedelta(minutes=0.3 * v.service_minutes), self.transfer, counter, ticket, v)
        else:
            self.at(now + timedelta(minutes=v.service_minutes), self.finish, counter, ticket)

    def recall(self, counter: str, ticket: str, v: Visitor) -> None:
        status, answer = self.api.call("POST", f"/tickets/{ticket}/recall", {}, self.clerk(counter))
        now = self.clock.now()
        if status == 409 and code_of(answer) == "RECALL_TOO_SOON":
            self.at(now + timedelta(seconds=20), self.recall, counter, ticket, v)
            return
        self.tally.recalls += status == 200
        if v.at_counter == "after_recall":
            self.at(now + timedelta(seconds=40), self.start_visit, counter, ticket, v,
                    now + timedelta(seconds=40))
        else:
            self.at(now + timedelta(seconds=75), self.no_show, counter, ticket)

    def no_show(self, counter: str, ticket: str) -> None:
        status, _ = self.api.call("POST", f"/tickets/{ticket}/no-show", {}, self.clerk(counter))
        self.tally.no_shows += status == 200
        self.free(counter)

    def transfer(self, counter: str, ticket: str, v: Visitor) -> None:
        status, _ = self.api.call("POST", f"/tickets/{ticket}/transfer", {"service": v.transfer_to},
                                  self.clerk(counter))
        if status == 200:
            self.tally.transfers += 1
            self.transferred.add(ticket)
        self.free(counter)

    def finish(self, counter: str, ticket: str) -> None:
        status, answer = self.api.call("POST", f"/tickets/{ticket}/served", {}, self.clerk(counter))
        v = self.tickets.get(ticket)
        if status == 200:
            self.tally.served += 1
            if v is not None and v.rates:
                score = score_for(answer["wait_minutes"], v.rating_draw)
                self.at(self.clock.now() + timedelta(minutes=v.rates_after_minutes), self.rate,
                        answer["feedback"]["token"], score, v.comment)
        self.free(counter)

    def free(self, counter: str) -> None:
        if counter in self.serving:
            self.serving[counter] = None
            self.at(self.clock.now() + timedelta(seconds=30), self.call_next, counter)

    def rate(self, token: str, score: int, comment: str | None) -> None:
        body = {"token": token, "score": score, **({"comment": comment} if comment else {})}
        status, _ = self.api.call("POST", "/feedback", body)
        if status == 201:
            self.tally.ratings += 1
            self.tally.scores.append(score)
            self.tally.comments += comment is not None

    def wait_for_the_close(self, plan: DayPlan, within: float = 60) -> None:
        """The day closes by itself after closing time (waiting tickets closed out, missed appointments
        named): wait for the board to say so, a minute of real time at most."""
        self.wait_until(plan.closes, plan)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            board = self.board()
            if board["closed"] or date.fromisoformat(board["date"]) > self.day:
                self.tally.day_closed = True
                return
            time.sleep(0.2)

    def run(self) -> dict:
        plan = self.prepare()
        self.say(f"{plan.branch} on {plan.day}: {sum(v.kind == 'appointment' for v in plan.visitors)} "
                 f"appointments and {sum(v.kind == 'walk_in' for v in plan.visitors)} walk-ins planned, "
                 f"{len(plan.shifts)} counters")
        self.book(plan)
        self.wait_for_the_day(plan)
        self.say(f"the day has begun at {self.branch}")
        self.run_day(plan)
        self.wait_for_the_close(plan)
        return self.tally.summary()


def tokens(branch: str, shifts_counters=None):
    """The kiosk's token and a clerk's per counter: from MAWAEED_SIMULATE_KIOSK_TOKEN and
    MAWAEED_SIMULATE_CLERK_TOKEN (a real issuer's), else signed by the development issuer as `mawaeed token
    issue` signs them (the same MAWAEED_DATA_DIR and MAWAEED_PUBLIC_URL as the suite)."""
    kiosk, clerk = os.environ.get("MAWAEED_SIMULATE_KIOSK_TOKEN"), os.environ.get("MAWAEED_SIMULATE_CLERK_TOKEN")
    if kiosk and clerk:
        return kiosk, lambda counter: clerk
    from shared.auth import development_issuer
    from shared.config import nameko_config
    try:
        issuer = development_issuer(nameko_config())
    except RuntimeError as exc:
        raise SimulationError(f"{exc} (or set MAWAEED_SIMULATE_KIOSK_TOKEN and MAWAEED_SIMULATE_CLERK_TOKEN)") \
            from None
    signed = {}

    def clerk_token(counter: str) -> str:
        if counter not in signed:
            signed[counter] = issuer.issue("clerk", branches=[branch], counter=counter,
                                           subject=f"simulated-clerk-{counter}")
        return signed[counter]
    return issuer.issue("kiosk", branches=[branch], subject=f"simulated-kiosk-{branch}"), clerk_token


def print_summary(summary: dict, out=sys.stdout) -> None:
    checked = summary["checked_in"]
    refused = sum(summary["refused_check_ins"].values())
    mean = summary["satisfaction_mean"]
    print(f"booked {summary['booked']} ({summary['cancelled']} cancelled, {summary['moved']} moved); "
          f"checked in {checked['appointment'] + checked['walk_in']} ({checked['appointment']} appointments, "
          f"{checked['walk_in']} walk-ins, {refused} refused); served {summary['served']}; "
          f"no-shows {summary['no_shows']} at the counter, {summary['never_came']} never came; "
          f"{summary['recalls']} recalls, {summary['transfers']} transfers; ratings {summary['ratings']}"
          + (f" (mean {mean})" if mean is not None else "")
          + ("" if summary["day_closed"] else "; the day had not closed yet"), file=out)


def simulate(args) -> int:
    from services.cli import CliError
    if args.scale <= 0 or args.speed <= 0:
        raise CliError("--scale and --speed must be above 0")
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        raise CliError(f"{args.date!r} is not a date like 2026-12-07") from None
    try:
        kiosk, clerks = tokens(args.branch)
        simulation = Simulation(Api(args.api), args.branch, day, args.speed, args.seed, args.scale, kiosk, clerks,
                                out=sys.stderr if args.json else sys.stdout)
        summary = simulation.run()
    except SimulationError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(summary)
    return 0


def register(sub) -> None:
    from shared.config import nameko_config
    p = sub.add_parser("simulate", help="live through a realistic day at a branch over the public API (demos)")
    p.add_argument("--branch", required=True)
    p.add_argument("--date", required=True, help="the local day, e.g. 2026-12-07; the suite's clock must be on "
                                                 "its morning or before (it books first, then waits for the day)")
    p.add_argument("--speed", type=float, default=float(os.environ.get("MAWAEED_CLOCK_SPEED") or 60),
                   help="how fast the suite's clock runs (its MAWAEED_CLOCK_SPEED; default this shell's, else 60); "
                        "readings of the suite's clock correct it")
    p.add_argument("--api", default=os.environ.get("MAWAEED_API") or nameko_config()["MAWAEED_PUBLIC_URL"],
                   help="the suite's base URL (default: MAWAEED_API, else MAWAEED_PUBLIC_URL)")
    p.add_argument("--seed", type=int, default=1, help="the same seed plans the same day (default 1)")
    p.add_argument("--scale", type=float, default=1.0, help="how busy: 1.0 a normal day, 0.3 a quiet one")
    p.add_argument("--json", action="store_true", help="the summary as JSON (progress on stderr)")
    p.set_defaults(func=simulate)
