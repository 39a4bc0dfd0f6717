"""The waiting room's rules, as pure functions over one branch's day: no database, no clock of their own.

Each decision returns the events it takes (a list of NewEvent, empty when there is nothing to do) or raises the
error that says why not. `evolve` is the one place a day changes: the day after a stored event, whether the
event was just decided (commands.py) or is read back from the log (projection.py, a replay).

Who is called next (`pick_next`), for a counter and the services it serves:
1. priority groups (elderly, disabled) first;
2. then appointments that are due (their time has come and they checked in on time), except that when
   walk-ins are waiting too, at least one walk-in is called for every `appointments_per_walk_in` appointments;
3. then walk-ins, with appointments that checked in late (they lost their appointment priority);
4. appointments that arrived early are not called before their time, unless nobody else waits.
Within each group, first come first served by check-in time (a transfer keeps the original check-in time).
"""
import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from shared.clock import LOCAL, parse_instant
from shared.schedule import is_open, require_service
from shared.events import NewEvent
from shared.errors import Conflict, NotFound

LANES = ("priority", "appointment", "walk_in", "early")


@dataclass(frozen=True)
class Policy:
    check_in_early_minutes: int = 30
    check_in_late_minutes: int = 30
    on_time_grace_minutes: int = 10
    appointments_per_walk_in: int = 3
    max_recalls: int = 2
    recall_interval_seconds: int = 60
    walk_in_quota: dict = field(default_factory=dict)
    # the waiting-time targets the branch is measured against (shared.schedule.wait_targets): they do not change
    # who is called next, they travel with the policy (QueuePolicySet v2)
    targets: dict = field(default_factory=dict)

    @classmethod
    def of(cls, branch: dict) -> "Policy":
        return cls(**branch.get("queue", {}))


# Days, tickets and counters are values: `evolve` makes new ones and shares what an event left alone.

@dataclass(frozen=True)
class Ticket:
    id: str
    number: str
    seq: int
    service: str                    # the queue it is in now
    kind: str                       # appointment | walk_in
    priority: str | None            # elderly | disabled
    status: str                     # waiting | called | served | no_show | closed_out
    queued_at: datetime             # the original check-in time
    on_time: bool
    cpr: str
    language: str
    reference: str | None = None
    checked_in_for: str | None = None   # the service it came for (quotas count this, transfers aside)
    appointment_start: datetime | None = None
    waiting_since: datetime | None = None
    waited_seconds: int = 0
    counter: str | None = None
    first_called_at: datetime | None = None
    last_called_at: datetime | None = None
    recalls: int = 0
    served_at: datetime | None = None
    service_seconds: int | None = None
    score: int | None = None
    comment: str | None = None

    def lane(self, now: datetime) -> str:
        if self.priority:
            return "priority"
        if self.kind == "appointment" and self.on_time:
            return "appointment" if self.appointment_start <= now else "early"
        return "walk_in"


@dataclass(frozen=True)
class Counter:
    id: str
    services: list[str]
    open: bool = True
    serving: str | None = None


@dataclass(frozen=True)
class Day:
    branch: str
    day: date
    tickets: dict[str, Ticket] = field(default_factory=dict)
    counters: dict[str, Counter] = field(default_factory=dict)
    appointments_since_walk_in: int = 0
    closed: bool = False

    def waiting(self, services=None) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.status == "waiting" and (services is None or t.service in services)]


def _event(type_: str, day: Day, payload: dict) -> NewEvent:
    return NewEvent(f"queue.{type_}", {"branch": day.branch, "day": day.day.isoformat(), **payload})


def _refuse_if_closed(day: Day) -> None:
    if day.closed:
        raise Conflict("The waiting room of this branch has closed for the day.", code="DAY_CLOSED",
                       message_ar="أُغلقت قاعة الانتظار في هذا الفرع لهذا اليوم.")


# -- check-in ------------------------------------------------------------------------------------------

def _next_number(day: Day, prefix: str) -> tuple[int, str]:
    seq = 1 + max((t.seq for t in day.tickets.values() if t.number.startswith(f"{prefix}-")), default=0)
    return seq, f"{prefix}-{seq:03d}"


def _new_ticket(day: Day, branch: dict, service: str, kind: str, cpr: str, language: str, priority: str | None,
                on_time: bool, reference: str | None = None, start: datetime | None = None) -> list[NewEvent]:
    seq, number = _next_number(day, branch["services"][service]["ticket_prefix"])
    return [_event("CustomerCheckedIn", day, {
        "ticket_id": str(uuid.uuid4()), "number": number, "service": service, "kind": kind, "priority": priority,
        "reference": reference, "appointment_start": start.isoformat() if start else None, "on_time": on_time,
        "cpr": cpr, "language": language,
    })]


def check_in_appointment(day: Day, branch: dict, appointment: dict | None, cpr: str, priority: str | None,
                         now: datetime) -> list[NewEvent]:
    """A person with a booking arrives. Nothing to do when they had already checked in: they keep their ticket."""
    if appointment is None or appointment["cpr"] != cpr:
        raise NotFound("No booking has this reference and CPR.", code="BOOKING_NOT_FOUND",
                       message_ar="لا يوجد حجز بهذا الرقم المرجعي ورقم الهوية.")
    if appointment["branch"] != day.branch:
        raise Conflict("This booking is for another branch.", code="WRONG_BRANCH",
                       message_ar="هذا الحجز لفرع آخر.")
    if appointment["status"] != "active":
        raise Conflict("This booking was cancelled.", code="BOOKING_CANCELLED", message_ar="هذا الحجز ملغى.")
    if any(t.reference == appointment["reference"] for t in day.tickets.values()):
        return []
    _refuse_if_closed(day)
    policy, start = Policy.of(branch), appointment["start"]
    if now < start - timedelta(minutes=policy.check_in_early_minutes):
        opens = (start - timedelta(minutes=policy.check_in_early_minutes)).astimezone(LOCAL)
        raise Conflict(f"Check-in for this appointment opens at {opens:%H:%M} on {opens:%Y-%m-%d}.",
                       code="TOO_EARLY", message_ar=f"يبدأ تسجيل الحضور لهذا الموعد الساعة {opens:%H:%M} بتاريخ {opens:%Y-%m-%d}.")
    if now > start + timedelta(minutes=policy.check_in_late_minutes):
        raise Conflict("This appointment's check-in window has passed; you may check in as a walk-in.",
                       code="TOO_LATE", message_ar="انتهت فترة تسجيل الحضور لهذا الموعد، يمكنك الحضور دون موعد.")
    on_time = now <= start + timedelta(minutes=policy.on_time_grace_minutes)
    return _new_ticket(day, branch, appointment["service"], "appointment", cpr, appointment["language"], priority,
                       on_time, appointment["reference"], start)


def check_in_walk_in(day: Day, branch: dict, service: str, cpr: str, language: str, priority: str | None,
                     now: datetime) -> list[NewEvent]:
    require_service(branch, day.branch, service)
    _refuse_if_closed(day)
    if not is_open(branch, now):
        raise Conflict("The branch is not open now.", code="BRANCH_CLOSED", message_ar="الفرع غير مفتوح الآن.")
    quota = Policy.of(branch).walk_in_quota.get(service, 0)
    if quota == 0:
        raise Conflict("This service takes appointments only; please book a time.", code="WALK_INS_NOT_TAKEN",
                       message_ar="هذه الخدمة بالمواعيد فقط، يرجى حجز موعد.")
    if sum(1 for t in day.tickets.values() if t.kind == "walk_in" and t.checked_in_for == service) >= quota:
        raise Conflict("Today's places for walk-ins at this service are taken; please book a time.",
                       code="WALK_IN_QUOTA_REACHED",
                       message_ar="اكتمل عدد المراجعين دون موعد لهذه الخدمة اليوم، يرجى حجز موعد.")
    if any(t.cpr == cpr and t.service == service for t in day.waiting()):
        raise Conflict("You are already waiting for this service.", code="ALREADY_WAITING",
                       message_ar="أنت بالفعل في قائمة الانتظار لهذه الخدمة.")
    return _new_ticket(day, branch, service, "walk_in", cpr, language, priority, on_time=False)


# -- order and estimates -------------------------------------------------------------------------------

def pick_next(day: Day, services: list[str], now: datetime, policy: Policy) -> tuple[Ticket, str] | None:
    """The ticket a counter serving `services` calls next, and the lane that chose it (rule in the docstring)."""
    # one pass keeping the first of each lane (first come first served): a crowded day is not sorted per call
    first = {}
    for ticket in day.tickets.values():
        if ticket.status != "waiting" or ticket.service not in services:
            continue
        lane = ticket.lane(now)
        best = first.get(lane)
        if best is None or (ticket.queued_at, ticket.seq) < (best.queued_at, best.seq):
            first[lane] = ticket
    if "priority" in first:
        return first["priority"], "priority"
    if "appointment" in first and "walk_in" in first and \
            day.appointments_since_walk_in >= policy.appointments_per_walk_in:
        return first["walk_in"], "walk_in"
    for lane in ("appointment", "walk_in", "early"):
        if lane in first:
            return first[lane], lane
    return None


def line(day: Day, service: str, now: datetime) -> list[Ticket]:
    """A service's waiting tickets in the order they can expect to be called (fairness interleaving aside)."""
    return sorted(day.waiting([service]), key=lambda t: (LANES.index(t.lane(now)), t.queued_at, t.seq))


def average_service_minutes(day: Day, service: str, default_minutes: float) -> float:
    measured = [t.service_seconds for t in day.tickets.values()
                if t.status == "served" and t.service == service and t.service_seconds is not None]
    return sum(measured) / len(measured) / 60 if measured else default_minutes


def estimated_wait_minutes(day: Day, branch: dict, service: str, position: int) -> int:
    """Minutes until the ticket at `position` (1 = next) is called: measured service time over open counters."""
    counters = max(1, sum(1 for c in day.counters.values() if c.open and service in c.services))
    per_visit = average_service_minutes(day, service, branch["services"][service]["duration_minutes"])
    return math.ceil((position - 1) / counters) * round(per_visit) if position > 1 else 0


# -- counters and calls --------------------------------------------------------------------------------

def open_counter(day: Day, branch: dict, counter_id: str, services: list[str]) -> list[NewEvent]:
    _refuse_if_closed(day)
    for service in services:
        require_service(branch, day.branch, service)
    counter = day.counters.get(counter_id)
    if counter and counter.open and sorted(counter.services) == sorted(services):
        return []  # already so
    return [_event("CounterOpened", day, {"counter": counter_id, "services": sorted(set(services))})]


def close_counter(day: Day, counter_id: str) -> list[NewEvent]:
    counter = day.counters.get(counter_id)
    if counter is None or not counter.open:
        return []
    if counter.serving:
        raise Conflict(f"Counter {counter_id} is serving {day.tickets[counter.serving].number}; finish it first.",
                       code="COUNTER_BUSY", message_ar=f"الشباك {counter_id} يخدم التذكرة {day.tickets[counter.serving].number}، يرجى إنهاؤها أولًا.")
    return [_event("CounterClosed", day, {"counter": counter_id})]


def call_next(day: Day, branch: dict, counter_id: str, now: datetime) -> list[NewEvent]:
    """The call a counter makes now; none when nobody it can serve is waiting."""
    _refuse_if_closed(day)
    counter = day.counters.get(counter_id)
    if counter is None or not counter.open:
        raise Conflict(f"Counter {counter_id} is not open.", code="COUNTER_CLOSED",
                       message_ar=f"الشباك {counter_id} غير مفتوح.")
    if counter.serving:
        raise Conflict(f"Counter {counter_id} is still serving {day.tickets[counter.serving].number}: mark it "
                       "served, a no-show, or transfer it first.", code="COUNTER_BUSY",
                       message_ar=f"الشباك {counter_id} ما زال يخدم التذكرة {day.tickets[counter.serving].number}.")
    chosen = pick_next(day, counter.services, now, Policy.of(branch))
    if chosen is None:
        return []
    ticket, lane = chosen
    return [_event("TicketCalled", day, {"ticket_id": ticket.id, "counter": counter_id, "number": ticket.number,
                                         "service": ticket.service, "lane": lane})]


def _require_called(ticket: Ticket) -> None:
    if ticket.status != "called":
        raise Conflict(f"Ticket {ticket.number} is {ticket.status.replace('_', ' ')}, not called.",
                       code="TICKET_NOT_CALLED", message_ar=f"التذكرة {ticket.number} لم يتم استدعاؤها.")


def recall(day: Day, branch: dict, ticket: Ticket, now: datetime) -> list[NewEvent]:
    _require_called(ticket)
    policy = Policy.of(branch)
    if ticket.recalls >= policy.max_recalls:
        raise Conflict(f"Ticket {ticket.number} was already called {ticket.recalls + 1} times; mark it a no-show.",
                       code="RECALL_LIMIT", message_ar=f"تم استدعاء التذكرة {ticket.number} بالحد الأقصى من المرات.")
    ready = ticket.last_called_at + timedelta(seconds=policy.recall_interval_seconds)
    if now < ready:
        seconds = math.ceil((ready - now).total_seconds())
        raise Conflict(f"Wait {seconds} more seconds before calling {ticket.number} again.", code="RECALL_TOO_SOON",
                       message_ar=f"يرجى الانتظار {seconds} ثانية قبل إعادة استدعاء التذكرة {ticket.number}.")
    return [_event("TicketRecalled", day, {"ticket_id": ticket.id, "counter": ticket.counter,
                                           "recall": ticket.recalls + 1})]


def serve(day: Day, ticket: Ticket, now: datetime) -> list[NewEvent]:
    _require_called(ticket)
    return [_event("TicketServed", day, {
        "ticket_id": ticket.id, "counter": ticket.counter, "service": ticket.service,
        "wait_seconds": ticket.waited_seconds,
        "service_seconds": max(0, int((now - ticket.last_called_at).total_seconds())),
    })]


def no_show(day: Day, ticket: Ticket, reason: str = "clerk") -> list[NewEvent]:
    _require_called(ticket)
    return [_event("TicketNoShow", day, {"ticket_id": ticket.id, "counter": ticket.counter, "reason": reason})]


def unanswered(day: Day, branch: dict, now: datetime) -> list[NewEvent]:
    """Called tickets whose last recall went unanswered for a recall interval become no-shows."""
    policy = Policy.of(branch)
    return [event for t in day.tickets.values()
            if t.status == "called" and t.recalls >= policy.max_recalls
            and now >= t.last_called_at + timedelta(seconds=policy.recall_interval_seconds)
            for event in no_show(day, t, "no_answer_after_recalls")]


def transfer(day: Day, branch: dict, ticket: Ticket, to_service: str) -> list[NewEvent]:
    require_service(branch, day.branch, to_service)
    if ticket.status not in ("waiting", "called"):
        raise Conflict(f"Ticket {ticket.number} is {ticket.status.replace('_', ' ')} and cannot move.",
                       code="TICKET_FINISHED", message_ar=f"لا يمكن نقل التذكرة {ticket.number}.")
    if to_service == ticket.service:
        raise Conflict(f"Ticket {ticket.number} is already in that queue.", code="SAME_SERVICE",
                       message_ar=f"التذكرة {ticket.number} موجودة في قائمة هذه الخدمة.")
    return [_event("TicketTransferred", day, {"ticket_id": ticket.id, "from_service": ticket.service,
                                              "to_service": to_service, "counter": ticket.counter})]


def rate(day: Day, ticket: Ticket, score: int, comment: str | None) -> list[NewEvent]:
    if ticket.status != "served":
        raise Conflict("Only a visit that was served can be rated.", code="VISIT_NOT_SERVED",
                       message_ar="لا يمكن تقييم زيارة لم تتم خدمتها.")
    if ticket.score is not None:
        raise Conflict("This visit has already been rated; thank you.", code="FEEDBACK_ALREADY_GIVEN",
                       message_ar="تم تقييم هذه الزيارة مسبقًا، شكرًا لك.")
    return [_event("SatisfactionRated", day, {
        "ticket_id": ticket.id, "service": ticket.service, "score": score, "comment": comment,
        "wait_seconds": ticket.waited_seconds, "service_seconds": ticket.service_seconds or 0,
    })]


def close_day(day: Day, appointments: list[dict]) -> list[NewEvent]:
    """The end of a branch's day: close out what still waits, close the counters, name who never came."""
    if day.closed:
        return []
    events = [_event("TicketClosedOut", day, {"ticket_id": t.id, "status": t.status})
              for t in sorted(day.tickets.values(), key=lambda t: t.seq) if t.status in ("waiting", "called")]
    events += [_event("CounterClosed", day, {"counter": c.id}) for c in day.counters.values() if c.open]
    arrived = {t.reference for t in day.tickets.values() if t.reference}
    events += [_event("AppointmentMissed", day, {"reference": a["reference"], "service": a["service"],
                                                 "start": a["start"].isoformat()})
               for a in sorted(appointments, key=lambda a: (a["start"], a["reference"]))
               if a["status"] == "active" and a["reference"] not in arrived]
    return events + [_event("DayClosed", day, {})]


# -- how each event changes the day ----------------------------------------------------------------------

def evolve(day: Day, event) -> Day:
    """The day after `event`, a stored event of this day (anything with .type, .payload and .occurred_at). `day`
    is left as it was: what the event changes is copied and the rest shared, so a busy day folds cheaply. An
    event that changes nothing in the waiting room (an appointment missed) gives back `day` itself."""
    change = CHANGES.get(event.type)
    return change(day, event.payload, event.occurred_at) if change else day


def _with(day: Day, tickets=(), counters=(), **fields) -> Day:
    """`day` with these tickets and counters in place of theirs (by id), and these fields set."""
    return replace(day, tickets={**day.tickets, **{t.id: t for t in tickets}} if tickets else day.tickets,
                   counters={**day.counters, **{c.id: c for c in counters}} if counters else day.counters, **fields)


def _counter(day: Day, counter_id: str | None, **fields) -> list[Counter]:
    """The day's counter with these fields set; none for a counter the day does not have."""
    counter = day.counters.get(counter_id)
    return [replace(counter, **fields)] if counter else []


def _waited(ticket: Ticket, at: datetime) -> int:
    """Seconds waited up to `at`: in earlier lines, and in the current one if still waiting."""
    since = ticket.waiting_since
    return ticket.waited_seconds + (int((at - since).total_seconds()) if since else 0)


def _checked_in(day: Day, p: dict, at: datetime) -> Day:
    start = p["appointment_start"]
    return _with(day, tickets=[Ticket(
        id=p["ticket_id"], number=p["number"], seq=int(p["number"].split("-")[1]), service=p["service"],
        kind=p["kind"], priority=p["priority"], status="waiting", queued_at=at, on_time=p["on_time"], cpr=p["cpr"],
        language=p["language"], reference=p["reference"], checked_in_for=p["service"],
        appointment_start=parse_instant(start) if start else None, waiting_since=at)])


def _called(day: Day, p: dict, at: datetime) -> Day:
    ticket = day.tickets[p["ticket_id"]]
    # the fairness count: appointments called since the last walk-in (priority and early calls leave it be)
    since_walk_in = {"appointment": day.appointments_since_walk_in + 1, "walk_in": 0}
    return _with(day, tickets=[replace(ticket, status="called", counter=p["counter"], waiting_since=None,
                                       waited_seconds=_waited(ticket, at),
                                       first_called_at=ticket.first_called_at or at, last_called_at=at)],
                 counters=_counter(day, p["counter"], serving=ticket.id),
                 appointments_since_walk_in=since_walk_in.get(p["lane"], day.appointments_since_walk_in))


def _on_ticket(change):
    """The change an event makes to the one ticket it names, from change(ticket, payload, at) -> the fields it
    sets. A ticket that stops being called leaves its counter free."""
    def fold(day: Day, p: dict, at: datetime) -> Day:
        ticket = day.tickets[p["ticket_id"]]
        changed = replace(ticket, **change(ticket, p, at))
        left = ticket.status == "called" and changed.status != "called"
        return _with(day, tickets=[changed], counters=_counter(day, ticket.counter, serving=None) if left else [])
    return fold


def _transferred(ticket: Ticket, p: dict, at: datetime) -> dict:
    # it keeps the time it waited so far, and its calls at the new counter start with no recalls
    return {"service": p["to_service"], "status": "waiting", "waiting_since": at, "counter": None,
            "waited_seconds": _waited(ticket, at), "recalls": 0}


def _counter_opened(day: Day, p: dict, at: datetime) -> Day:
    services, counter = sorted(p["services"]), day.counters.get(p["counter"])
    return _with(day, counters=[replace(counter, services=services, open=True) if counter
                                else Counter(p["counter"], services)])


CHANGES = {  # event type -> change(day, payload, instant) -> the day after it
    "queue.CustomerCheckedIn": _checked_in,
    "queue.TicketCalled": _called,
    "queue.TicketRecalled": _on_ticket(lambda ticket, p, at: {"recalls": p["recall"], "last_called_at": at}),
    "queue.TicketServed": _on_ticket(lambda ticket, p, at: {"status": "served", "served_at": at,
                                                             "service_seconds": p["service_seconds"]}),
    "queue.TicketNoShow": _on_ticket(lambda ticket, p, at: {"status": "no_show"}),
    "queue.TicketTransferred": _on_ticket(_transferred),
    "queue.TicketClosedOut": _on_ticket(lambda ticket, p, at: {"status": "closed_out", "waiting_since": None}),
    "queue.SatisfactionRated": _on_ticket(lambda ticket, p, at: {"score": p["score"], "comment": p["comment"]}),
    "queue.CounterOpened": _counter_opened,
    "queue.CounterClosed": lambda day, p, at: _with(day, counters=_counter(day, p["counter"], open=False,
                                                                           serving=None)),
    "queue.DayClosed": lambda day, p, at: replace(day, closed=True),
}
