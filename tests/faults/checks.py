"""What must hold after a fault, read straight from the services' own databases (the fault suite's PostgreSQL) and
broker, and from `mawaeed replay`: nothing the suite accepted is missing from its log, nothing happened twice, and
every projection rebuilt from the logs equals the live one."""
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

from services.availability.projection import MOVES
from shared.clock import parse_instant, to_db
from shared.topology import SUBSCRIPTIONS

DURABLE = [s for s in SUBSCRIPTIONS.values() if not s.live_only]
REPLAYED = ["availability", "booking", "queue", "notifications"]


def consumer_service(subscription) -> str:
    return subscription.name.split(".", 1)[0]


def heads(engine, suite) -> dict[str, int]:
    """The last position of each service's log."""
    with engine.connect() as conn:
        return {service: conn.execute(sa.text(f'SELECT coalesce(max(position), 0) FROM "{suite.schema(service)}".events'))
                .scalar_one() for service in REPLAYED}


def outbox_pending(engine, suite, services) -> int:
    """Events of `services` committed but not yet confirmed by the broker: in the outbox, or not yet given their
    position (the relay's sequencer puts them in the outbox then)."""
    with engine.connect() as conn:
        return sum(conn.execute(sa.text(f'SELECT (SELECT count(*) FROM "{suite.schema(s)}".outbox) + (SELECT '
                                        f'count(*) FROM "{suite.schema(s)}".events WHERE position IS NULL)'))
                   .scalar_one() for s in services)


def behind(engine, suite, upto: dict[str, int]) -> dict[str, int]:
    """Per subscription, how many of its source's events up to `upto[source]` it has not applied yet."""
    late = {}
    with engine.connect() as conn:
        for s in DURABLE:
            logged = conn.execute(sa.text(
                f'SELECT count(*) FROM "{suite.schema(s.source)}".events WHERE position <= :h AND type = ANY(:t)'),
                {"h": upto[s.source], "t": list(s.types)}).scalar_one()
            applied = conn.execute(sa.text(
                f'SELECT count(*) FROM "{suite.schema(consumer_service(s))}".processed_events '
                f'WHERE consumer = :c AND position <= :h'), {"c": s.name, "h": upto[s.source]}).scalar_one()
            if applied != logged:
                late[s.name] = logged - applied
    return late


SLOWEST: list[str] = []  # the subscription that caught up last, per wait (for the report)


def wait_caught_up(engine, suite, upto: dict[str, int], within: float = 300) -> float:
    """Seconds until every subscription applied every event of its source up to `upto`; raises after `within`."""
    began = time.monotonic()
    late, last = None, ""
    while time.monotonic() - began < within:
        try:
            late = behind(engine, suite, upto)
            if not late:
                SLOWEST.append(last)
                return time.monotonic() - began
            last = ", ".join(f"{name} ({n} behind)" for name, n in sorted(late.items()))
        except sa.exc.OperationalError as exc:  # the database restarting
            late = str(exc).splitlines()[0]
        time.sleep(0.2)
    raise AssertionError(f"projections still behind after {within} s: {late}")


def _log(conn, schema: str, types: list[str]) -> list[tuple[str, dict]]:
    rows = conn.execute(sa.text(f'SELECT type, payload FROM "{schema}".events WHERE type = ANY(:t) ORDER BY position'),
                        {"t": types}).all()
    return [(t, json.loads(p)) for t, p in rows]


def invariants(engine, suite, ledger, rabbit, outbox: Path) -> dict:
    """{lost, doubled, problems: [...]} over everything the load did so far."""
    problems, lost, doubled = [], 0, 0
    with engine.connect() as conn:
        booking_log = _log(conn, suite.schema("booking"), ["booking.SlotBooked", "booking.BookingCancelled",
                                                            "booking.BookingRescheduled"])
        queue_log = _log(conn, suite.schema("queue"), ["queue.CustomerCheckedIn", "queue.TicketCalled"])
        notes_log = _log(conn, suite.schema("notifications"), ["notifications.NotificationScheduled",
                                                               "notifications.NotificationSent"])
        slot_counts = {(b, s, start): n for b, s, start, n in conn.execute(sa.text(
            f'SELECT branch, service, start, booked FROM "{suite.schema("availability")}".slot_bookings')).all()}
        live_bookings = Counter({(b, s, start): n for b, s, start, n in conn.execute(sa.text(
            f'SELECT branch, service, start, count(*) FROM "{suite.schema("booking")}".bookings '
            f"WHERE status <> 'cancelled' GROUP BY 1, 2, 3")).all()})

    booked = Counter(p["reference"] for t, p in booking_log if t == "booking.SlotBooked")
    cancelled = Counter(p["reference"] for t, p in booking_log if t == "booking.BookingCancelled")
    checked_in = Counter(p["ticket_id"] for t, p in queue_log if t == "queue.CustomerCheckedIn")
    called = Counter(p["ticket_id"] for t, p in queue_log if t == "queue.TicketCalled")
    with ledger.lock:
        accepted = [("booking", booked, set(ledger.booked)), ("cancellation", cancelled, set(ledger.cancelled)),
                    ("check-in", checked_in, set(ledger.checked_in)), ("call", called, set(ledger.called))]
        calls_answered = Counter(ledger.called)
    for what, logged, ids in accepted:
        missing = [i for i in ids if logged[i] == 0]
        if missing:
            lost += len(missing)
            problems.append(f"{len(missing)} accepted {what}s not in the log, e.g. {missing[:3]}")
        twice = {i: n for i, n in logged.items() if n > 1}
        if twice:
            doubled += len(twice)
            problems.append(f"{len(twice)} {what}s logged more than once, e.g. {list(twice.items())[:3]}")
    answered_twice = {t: n for t, n in calls_answered.items() if n > 1}
    if answered_twice:
        doubled += len(answered_twice)
        problems.append(f"{len(answered_twice)} tickets handed to a clerk by more than one call: {list(answered_twice)[:3]}")

    # places: availability's counts = the booking log's moves = the bookings that hold a place
    from_log = Counter()
    for t, p in booking_log:
        for branch, service, start, delta in MOVES[t](p):
            from_log[(branch, service, to_db(parse_instant(start)))] += delta
    for slot in set(from_log) | set(slot_counts) | set(live_bookings):
        counted, logged, holding = slot_counts.get(slot, 0), from_log.get(slot, 0), live_bookings.get(slot, 0)
        if counted != logged or holding != logged:
            problems.append(f"slot {slot}: availability counts {counted}, the log {logged}, bookings {holding}")
            if counted > logged:
                doubled += counted - logged
            else:
                lost += logged - counted

    # notifications: one message per key, in the log and in what went out
    scheduled = Counter(p["key"] for t, p in notes_log if t == "notifications.NotificationScheduled")
    sent = Counter(p["key"] for t, p in notes_log if t == "notifications.NotificationSent")
    for what, counts in (("scheduled", scheduled), ("sent", sent)):
        twice = [k for k, n in counts.items() if n > 1]
        if twice:
            doubled += len(twice)
            problems.append(f"{len(twice)} notifications {what} more than once, e.g. {twice[:3]}")
    files = Counter((f.parent.name, f.stem.rsplit("-", 1)[-1]) for f in outbox.glob("*/*") if f.is_file())
    twice = [k for k, n in files.items() if n > 1]
    if twice:
        doubled += len(twice)
        problems.append(f"{len(twice)} messages written to the outbox more than once, e.g. {twice[:3]}")
    if len(files) < sum(sent.values()):
        problems.append(f"{sum(sent.values())} notifications sent but {len(files)} messages in the outbox")
        lost += sum(sent.values()) - len(files)

    dead = {name: n for name, n in rabbit.queues().items() if name.endswith(".dead-letter") and n}
    if dead:
        problems.append(f"dead letters: {dead}")
    return {"lost": lost, "doubled": doubled, "problems": problems, "dead_letters": sum(dead.values()),
            "counts": {"bookings": len(booked), "cancellations": len(cancelled), "check-ins": len(checked_in),
                       "calls": sum(called.values()), "notifications": len(scheduled), "sent": sum(sent.values())}}


def replays(suite) -> dict[str, str]:
    """`mawaeed replay <service>` of every service with projections, side by side: service -> "" when identical,
    else the start of what it printed (all of it in replay-<service>-<n>.txt beside the suite's log). A replay that
    differs is run once more a few seconds later, and both outcomes are reported: a difference that is gone then
    was the live projection moving between the two reads of one replay, one that stays is a real one."""
    def one(service):
        outputs = []
        for _attempt in range(2):
            for _ in range(3):  # the logs are read straight from the databases, not through the loaded API
                result = suite.run_cli("replay", service, "--direct")
                if "cannot read" not in result.stdout + result.stderr:
                    break
                time.sleep(2)
            output = result.stdout + result.stderr
            path = suite.workdir / f"replay-{service}-{len(list(suite.workdir.glob(f'replay-{service}-*')))}.txt"
            path.write_text(output)
            if result.returncode == 0 and "identical to the live one" in output:
                return service, "" if not outputs else f"differed once, identical on the second run: {outputs[0]}"
            outputs.append(f"{path.name}: {output[:1500]}")
            time.sleep(5)
        return service, " / then: ".join(outputs)

    with ThreadPoolExecutor(len(REPLAYED)) as pool:
        return dict(pool.map(one, REPLAYED))
