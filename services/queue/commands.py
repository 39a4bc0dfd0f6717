"""The queue's commands: load a branch's day, decide with domain.py, append to the day's stream at the
version read first, and record the new events (folded by domain.evolve) in the waiting-room tables and in the
day this process keeps, all in one transaction.
The day's stream is locked for the transaction, so two counters calling at the same instant take turns: the
second decides on the state the first committed and gets the next ticket. The expected version stays as the
guard underneath (a conflict is decided again).
A command is five statements: the lock, the branch with the day's version (one statement), the append, and the
rows its events change; the day itself comes from this process's memory whenever the version says it is current."""
import json
import logging
import time
import weakref
from dataclasses import replace
from datetime import date, datetime

import eventlet
import sqlalchemy as sa

from shared import catalogue, schedule
from shared.auth import Caller
from shared.errors import NotFound
from shared.eventstore import Database, EventStore, UnitOfWork
from shared.retry import retrying
from shared.schedule import local_day
from services.booking.references import normalise_reference
from services.queue import domain, feedback, projection, view
from services.queue.domain import Day

log = logging.getLogger(__name__)


def queue_stream(branch: str, day: date) -> str:
    return f"queue-{branch}-{day:%Y%m%d}"


def _unknown_branch(branch_id: str) -> NotFound:
    return NotFound(f"There is no branch {branch_id!r}.", code="UNKNOWN_BRANCH", message_ar="الفرع المطلوب غير موجود.")


def _branch(uow: UnitOfWork, branch_id: str) -> dict:
    branch = catalogue.load_branch(uow, branch_id)
    if branch is None:
        raise _unknown_branch(branch_id)
    return branch


_BRANCH_AND_VERSION = {}  # the log's table -> the statement, built once with parameters


def _branch_and_version_query(store: EventStore) -> sa.Select:
    """Built once: building and keying this statement on each call costs more than running it."""
    query = _BRANCH_AND_VERSION.get(store.events)
    if query is None:
        branches = store.events.metadata.tables["branches"]
        query = _BRANCH_AND_VERSION[store.events] = sa.select(
            branches.c.doc, store.version_of(sa.bindparam("stream"))).where(branches.c.id == sa.bindparam("branch"))
    return query


def _branch_and_version(uow: UnitOfWork, branch_id: str, day: date) -> tuple[dict, int]:
    """The branch's document and its day stream's version, read in one statement (one snapshot)."""
    row = uow.execute(_branch_and_version_query(uow.store),
                      {"stream": queue_stream(branch_id, day), "branch": branch_id}).first()
    if row is None:
        raise _unknown_branch(branch_id)
    return json.loads(row[0]), row[1]


class DayCache:
    """The days this process worked on last, each tagged with the day stream's version it reflects. A command
    reads the version under the day's lock anyway: when it matches, the day is current and need not be loaded
    again (another replica's command leaves a different version and forces a load). A day is a value that no
    command changes in place, so one that fails or rolls back leaves the kept day as right as it was.

    An erasure changes tickets outside any day's stream: `forget` drops every day, and a command that took its day
    before a forget does not keep it afterwards (the generation it read it in is over)."""

    def __init__(self, size: int = 64):
        self.size = size
        self.by_db = weakref.WeakKeyDictionary()  # Database -> {(branch, day): (version, Day)}, oldest first
        self.generation = 0  # one more at each forget

    def get(self, db: Database, branch_id: str, day: date, version: int) -> Day | None:
        found = self.by_db.get(db, {}).get((branch_id, day))
        return found[1] if found and found[0] == version else None

    def put(self, db: Database, branch_id: str, day: date, version: int, state: Day, generation: int) -> None:
        if generation != self.generation:  # taken before an erasure: it may still name the person
            return
        days = self.by_db.setdefault(db, {})
        days.pop((branch_id, day), None)
        days[(branch_id, day)] = (version, state)
        while len(days) > self.size:
            days.pop(next(iter(days)))

    def day_of_ticket(self, db: Database, ticket_id: str) -> tuple[str, date] | None:
        """(branch, date) of a ticket in a day kept here, at whatever version: a ticket never changes day."""
        for (branch_id, day), (_, state) in reversed(self.by_db.get(db, {}).items()):
            if ticket_id in state.tickets:
                return branch_id, day
        return None

    def forget(self, db: Database) -> None:
        """All of them: a person's erasure changes tickets outside any day's stream."""
        self.generation += 1
        self.by_db.pop(db, None)


DAYS = DayCache()


def forget_days_after(db: Database, consumer: str, event, wait_seconds: float = 60.0) -> None:
    """Forget the days kept here once `consumer` has applied `event` (an erasure) to the tables: forgetting
    earlier, a day loaded again from the tables before the scrub would name the person once more."""
    table = db.tables["processed_events"]
    seen = sa.select(table.c.position).where(table.c.consumer == consumer, table.c.event_id == event.event_id)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.execute(seen).first():
                break
        eventlet.sleep(0.2)
    else:
        log.warning("erasure %s not applied within %.0f s; forgetting the days kept anyway", event.event_id,
                    wait_seconds)
    DAYS.forget(db)


def _load_day(db: Database, uow: UnitOfWork, branch_id: str, day: date, version: int) -> Day:
    """The day at `version`: as this process kept it, or from the tables."""
    return DAYS.get(db, branch_id, day, version) or projection.load_day(uow, branch_id, day)


def on_day(db: Database, command: str, branch_id: str, day: date, decide, answer, caller: Caller | None = None):
    """decide(uow, state, branch) -> events; answer(state after, branch, events) -> the reply."""
    return _on_stream(db, command, lambda uow: (branch_id, day), decide, answer, caller)


def on_ticket(db: Database, command: str, ticket_id: str, decide, answer, caller: Caller | None = None):
    """decide(state, branch, ticket) -> events; answer(state after, branch, ticket after, events) -> the reply."""
    def locate(uow):
        found = DAYS.day_of_ticket(db, ticket_id) or projection.ticket_day(uow, ticket_id)
        if found is None:
            raise NotFound("There is no such ticket.", code="TICKET_NOT_FOUND", message_ar="التذكرة غير موجودة.")
        return found
    return _on_stream(db, command, locate,
                      lambda uow, state, branch: decide(state, branch, state.tickets[ticket_id]),
                      lambda state, branch, events: answer(state, branch, state.tickets[ticket_id], events), caller)


def _on_stream(db: Database, command: str, locate, decide, answer, caller: Caller | None):
    """One transaction: find the day (locate(uow) -> (branch id, date)), lock its stream, read the branch and the
    stream's version, check that the caller may act at the branch (403 before anything is decided), take the day
    at that version, decide, append at that version (the events naming the caller as their actor), and record the
    new events in the tables and in the day this process keeps. Decided again on a conflict."""
    def attempt():
        generation = DAYS.generation
        with db.transaction() as uow:
            branch_id, day = locate(uow)  # a ticket's day never changes: safe to read before the lock
            stream = queue_stream(branch_id, day)
            uow.store.lock_stream(stream)  # a branch's day is one busy stream: wait for it rather than retry
            branch, version = _branch_and_version(uow, branch_id, day)  # after the lock: the version is current
            actor = caller.at(branch_id, branch["directorate"]) if caller else None
            state = _load_day(db, uow, branch_id, day, version)
            events = decide(uow, state, branch)
            if events:
                stored = uow.append(stream, version, [replace(e, directorate=branch["directorate"], actor=actor)
                                                      for e in events])
                state = projection.record(uow, state, stored)
                version += len(stored)
            reply = answer(state, branch, events)
        DAYS.put(db, branch_id, day, version, state, generation)  # committed
        return reply
    return retrying("queue", command, attempt)


def ticket_answer(day: Day, branch: dict, ticket: domain.Ticket, now: datetime) -> dict:
    answer = {"id": ticket.id, "number": ticket.number, "branch": day.branch, "service": ticket.service,
              "service_name_en": branch["services"][ticket.service]["name_en"],
              "service_name_ar": branch["services"][ticket.service]["name_ar"],
              "kind": ticket.kind, "priority": ticket.priority, "status": ticket.status, "counter": ticket.counter,
              "recalls": ticket.recalls, "position": None, "estimated_wait_minutes": None}
    if ticket.status == "waiting":
        position = 1 + [t.id for t in domain.line(day, ticket.service, now)].index(ticket.id)
        answer.update(position=position,
                      estimated_wait_minutes=domain.estimated_wait_minutes(day, branch, ticket.service, position))
    return answer


# -- commands ------------------------------------------------------------------------------------------

def check_in(db: Database, branch_id: str, request: dict, now: datetime, caller: Caller | None = None,
             link_key: str | None = None, public_url: str = "") -> tuple[int, dict]:
    """The ticket, and (given `link_key`) the link of its live page, `link: {token, url}`."""
    def decide(uow, state, branch):
        if request.get("reference"):
            appointment = projection.load_appointment(uow, normalise_reference(request["reference"]))
            return domain.check_in_appointment(state, branch, appointment, request["cpr"], request["priority"], now)
        return domain.check_in_walk_in(state, branch, request["service"], request["cpr"], request["language"],
                                       request["priority"], now)

    def answer(state, branch, events):
        if events:
            status, ticket = 201, state.tickets[events[0].payload["ticket_id"]]
        else:  # checked in before: the same ticket again
            reference = normalise_reference(request["reference"])
            status, ticket = 200, next(t for t in state.tickets.values() if t.reference == reference)
        reply = {"ticket": ticket_answer(state, branch, ticket, now)}
        if link_key:
            reply["link"] = feedback.link(ticket.id, link_key, public_url, feedback.TICKET)
        return status, reply

    return on_day(db, "check-in", branch_id, local_day(now), decide, answer, caller)


def open_counter(db: Database, branch_id: str, counter: str, services: list[str], now: datetime,
                 caller: Caller | None = None) -> dict:
    return on_day(db, "open-counter", branch_id, local_day(now),
                  lambda uow, state, branch: domain.open_counter(state, branch, counter, services),
                  lambda state, branch, events: counter_answer(state, counter), caller)


def close_counter(db: Database, branch_id: str, counter: str, now: datetime, caller: Caller | None = None) -> dict:
    return on_day(db, "close-counter", branch_id, local_day(now),
                  lambda uow, state, branch: domain.close_counter(state, counter),
                  lambda state, branch, events: counter_answer(state, counter), caller)


def counter_answer(state: Day, counter_id: str) -> dict:
    counter = state.counters.get(counter_id)
    return {"counter": counter_id, "open": bool(counter and counter.open),
            "services": counter.services if counter else []}


def call_next(db: Database, branch_id: str, counter: str, now: datetime,
              caller: Caller | None = None) -> dict | None:
    def answer(state, branch, events):
        if not events:
            return None
        return {"ticket": ticket_answer(state, branch, state.tickets[events[0].payload["ticket_id"]], now),
                "lane": events[0].payload["lane"]}
    return on_day(db, "call-next", branch_id, local_day(now),
                  lambda uow, state, branch: domain.call_next(state, branch, counter, now), answer, caller)


def _plain(now):
    return lambda state, branch, ticket, events: {"ticket": ticket_answer(state, branch, ticket, now)}


def recall(db: Database, ticket_id: str, now: datetime, caller: Caller | None = None) -> dict:
    return on_ticket(db, "recall", ticket_id, lambda state, branch, t: domain.recall(state, branch, t, now), _plain(now),
                     caller)


def no_show(db: Database, ticket_id: str, now: datetime, caller: Caller | None = None) -> dict:
    return on_ticket(db, "no-show", ticket_id, lambda state, branch, t: domain.no_show(state, t), _plain(now), caller)


def transfer(db: Database, ticket_id: str, to_service: str, now: datetime, caller: Caller | None = None) -> dict:
    return on_ticket(db, "transfer", ticket_id, lambda state, branch, t: domain.transfer(state, branch, t, to_service),
                     _plain(now), caller)


def served(db: Database, ticket_id: str, now: datetime, feedback_key: str, public_url: str,
           caller: Caller | None = None) -> dict:
    def answer(state, branch, ticket, events):
        return {"ticket": ticket_answer(state, branch, ticket, now),
                "wait_minutes": round(ticket.waited_seconds / 60, 1),
                "service_minutes": round((ticket.service_seconds or 0) / 60, 1),
                "feedback": feedback.link(ticket.id, feedback_key, public_url)}
    return on_ticket(db, "served", ticket_id, lambda state, branch, t: domain.serve(state, t, now), answer, caller)


def rate(db: Database, token: str, score: int, comment: str | None, feedback_key: str) -> dict:
    ticket_id = feedback.ticket_of(token, feedback_key)
    if ticket_id is None:
        raise NotFound("This feedback link is not valid.", code="FEEDBACK_TOKEN_UNKNOWN",
                       message_ar="رابط التقييم غير صالح.")
    return on_ticket(db, "feedback", ticket_id, lambda state, branch, t: domain.rate(state, t, score, comment),
                     lambda state, branch, t, events: {"thanks_en": "Thank you for your feedback.",
                                                       "thanks_ar": "شكرًا لتقييمك.", "score": t.score})


def _ticket_of(uow: UnitOfWork, db: Database, ticket_id: str | None):
    """(day, branch, ticket) of a ticket named by a genuine link; None for an unknown one."""
    found = (DAYS.day_of_ticket(db, ticket_id) or projection.ticket_day(uow, ticket_id)) if ticket_id else None
    if found is None:
        return None
    branch_id, day = found
    branch, version = _branch_and_version(uow, branch_id, day)
    state = _load_day(db, uow, branch_id, day, version)
    ticket = state.tickets.get(ticket_id)
    return (state, branch, ticket) if ticket else None


def public_ticket(db: Database, token: str, link_key: str, now: datetime) -> dict:
    """The live ticket behind a ticket link (its number, service, status, place in line, wait, counter):
    nothing personal, for anyone holding the link."""
    with db.transaction() as uow:
        found = _ticket_of(uow, db, feedback.ticket_of(token, link_key, feedback.TICKET))
        if found is None:
            raise NotFound("This ticket link is not valid.", code="TICKET_NOT_FOUND",
                           message_ar="رابط التذكرة غير صالح.")
        return view.public_ticket(*found, now)


def feedback_status(db: Database, token: str, feedback_key: str) -> dict:
    """What a feedback link is about (the visit's number, service, branch) and whether it can still be used."""
    with db.transaction() as uow:
        found = _ticket_of(uow, db, feedback.ticket_of(token, feedback_key))
        if found is None:
            raise NotFound("This feedback link is not valid.", code="FEEDBACK_TOKEN_UNKNOWN",
                           message_ar="رابط التقييم غير صالح.")
        state, branch, ticket = found
        service = branch["services"][ticket.service]
        return {"number": ticket.number, "branch": state.branch, "branch_name_en": branch["name_en"],
                "branch_name_ar": branch["name_ar"], "service": ticket.service,
                "service_name_en": service["name_en"], "service_name_ar": service["name_ar"],
                "date": state.day.isoformat(), "served": ticket.status == "served", "rated": ticket.score is not None}


def require_place(db: Database, branch_id: str, caller: Caller) -> None:
    """404 for an unknown branch, 403 when the caller's roles do not reach it; nothing else is read."""
    with db.transaction() as uow:
        branch = _branch(uow, branch_id)
    caller.at(branch_id, branch["directorate"])


def waiting_room(db: Database, branch_id: str, day: date, now: datetime, caller: Caller | None = None,
                 shown=view.waiting_room) -> dict:
    """A branch's day as `shown` renders it: the full waiting room (staff of the branch), or the public board."""
    with db.transaction() as uow:
        branch, version = _branch_and_version(uow, branch_id, day)
        if caller:
            caller.at(branch_id, branch["directorate"])
        state = _load_day(db, uow, branch_id, day, version)
        return shown(state, branch, now)


def close_day(db: Database, branch_id: str, day: date, caller: Caller | None = None) -> dict:
    def decide(uow, state, branch):
        return domain.close_day(state, projection.appointments_of(uow, branch_id, day))
    return on_day(db, "close-day", branch_id, day, decide,
                  lambda state, branch, events: {"branch": branch_id, "date": day.isoformat(), "closed": state.closed,
                                                 "events": len(events)}, caller)


def housekeeping(db: Database, now: datetime) -> int:
    """Unanswered recalls become no-shows; days past their closing time close. Returns events recorded."""
    recorded = 0
    with db.transaction() as uow:
        with_calls = projection.open_days_with_calls(uow)
        to_close = projection.days_to_close(uow, local_day(now))
    for branch_id, day in with_calls:
        recorded += on_day(db, "no-answer", branch_id, day,
                           lambda uow, state, branch: domain.unanswered(state, branch, now),
                           lambda state, branch, events: len(events))
    for branch_id, day in to_close:
        with db.transaction() as uow:
            branch = catalogue.load_branch(uow, branch_id)
        closes = schedule.closing_time(branch, day) if branch else None
        if day < local_day(now) or (closes is not None and now >= closes):
            recorded += close_day(db, branch_id, day)["events"]
    return recorded
