"""Faults injected into the distributed suite under a steady load through the gateway, one at a time, on the fault
suite's own RabbitMQ node and PostgreSQL cluster (conftest.py): the broker stops for 10 s, the database restarts,
every process is killed (SIGKILL) at random moments and restarted, a consumer comes back to a backlog, and
messages are delivered again and out of order.

After each: no accepted write is missing from its log and none is there twice, no effect is doubled (places,
calls, notifications), every projection's replay is identical, each 5xx carried Retry-After; the time to the
first accepted write and to every projection having caught up is measured and reported, never asserted. The
table of results is printed at the end of the run and written to results.md in the session's temporary folder.

MAWAEED_FAULTS_BACKLOG (default 10000) events for the backlog, generated for at most
MAWAEED_FAULTS_BACKLOG_SECONDS (default 45) seconds; MAWAEED_FAULTS_KILLS (default 2) kills per process;
MAWAEED_FAULTS_SEED fixes the random moments.
"""
import os
import random
import signal
import statistics
import time
from dataclasses import dataclass, field

import psycogreen.eventlet
import pytest
import requests
import sqlalchemy as sa
from kombu import Connection, Producer

from shared.feed import read_feed
from tests.faults import checks
from tests.faults.report import RESULTS, RESULTS_FILE, markdown_table
from tests.faults.suite import FaultSuite
from tests.faults.load import WRITES, Catalogue, Ledger, Load

pytestmark = pytest.mark.faults
psycogreen.eventlet.patch_psycopg()  # the checks' queries must not stop the load's green threads

SEED = int(os.environ.get("MAWAEED_FAULTS_SEED") or time.time())
BACKLOG = int(os.environ.get("MAWAEED_FAULTS_BACKLOG", "10000"))
BACKLOG_SECONDS = float(os.environ.get("MAWAEED_FAULTS_BACKLOG_SECONDS", "45"))
KILLS = int(os.environ.get("MAWAEED_FAULTS_KILLS", "2"))
WARM_UP = 3.0  # seconds of load before each fault


@dataclass
class World:
    suite: FaultSuite
    rabbit: object
    postgres: object
    engine: sa.Engine
    catalogue: Catalogue
    ledger: Ledger
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))

    def load(self, **kwargs) -> Load:
        """The steady load (a few people booking, a kiosk, a clerk), or another as `kwargs` say."""
        return Load(self.suite, self.catalogue, self.ledger, **{"bookers": 2, "pause": 0.3, **kwargs})


@pytest.fixture(scope="module")
def world(nodes, tmp_path_factory):
    rabbit, postgres = nodes
    workdir = tmp_path_factory.mktemp("faults")
    suite = FaultSuite(workdir, rabbit.uri, postgres.url)
    engine = sa.create_engine(postgres.url, pool_pre_ping=True)
    try:
        suite.start()
        catalogue = Catalogue(suite.api)
        world = World(suite, rabbit, postgres, engine, catalogue, Ledger())
        world.load().open_counters()
        print(f"fault suite: seed {SEED}, {len(catalogue.slots)} places, suite log {workdir / 'suite.log'}")
        yield world
    finally:
        suite.stop(signal.SIGKILL)
        suite.cleanup()
        engine.dispose()
        if RESULTS:
            (workdir / "results.md").write_text(markdown_table(RESULTS) + "\n")
            RESULTS_FILE.append(workdir / "results.md")


def healthy(suite, within: float = 120) -> None:
    """The gateway's health says every service and its database answer (and the process we started lives)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in suite.processes), f"a process exited; see {suite.workdir / 'suite.log'}"
        try:
            if requests.get(f"{suite.base_url}/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the suite is not healthy {within} s after a restart")


OWN_WRITES = {"booking": {"book", "cancel"}, "queue": {"check-in", "call", "served"}}  # the writes a service takes


def first_write_after(ledger: Ledger, since: float, within: float = 90, ops=WRITES) -> float:
    """Seconds from `since` to the first write (of `ops`) sent after it that the suite accepted (waits up to `within`).
    The load runs in green threads: a time taken in one may be late, never early, so "sent after" is certain."""
    deadline = time.monotonic() + within
    while True:
        with ledger.lock:
            done = [a.at for a in ledger.answers if a.sent >= since and a.op in ops and a.status and a.status < 300]
        if done:
            return min(done) - since
        if time.monotonic() > deadline:
            raise AssertionError(f"no write accepted within {within} s of the fault's end")
        time.sleep(0.05)


def server_errors(ledger: Ledger, windows: list[tuple[float, float]], since: float) -> dict:
    """5xx answers since `since`: during one of the outage windows, after them, and without Retry-After."""
    with ledger.lock:
        answers = [a for a in ledger.answers if a.at >= since and a.status and a.status >= 500]
    during = [a for a in answers if any(start <= a.at and a.sent <= end for start, end in windows)]
    bare = [a for a in answers if not a.retry_after]
    return {"during": len(during), "after": len(answers) - len(during), "bare": len(bare),
            "bare_routes": sorted({f"{a.route} {a.status} {a.detail}" for a in bare}),
            "after_routes": sorted({f"{a.route} {a.status} {a.detail}" for a in answers if a not in during})}


def settle_and_check(world: World, name: str, began: float, windows: list, first_write: list[float],
                     caught_up: list[float], notes: str = "") -> dict:
    """With the load stopped: wait until every projection has every event, check everything, record the row."""
    slowest = checks.SLOWEST[-1] if checks.SLOWEST else ""  # of the measured wait, before the one below
    checks.wait_caught_up(world.engine, world.suite, checks.heads(world.engine, world.suite))
    found = checks.invariants(world.engine, world.suite, world.ledger, world.rabbit,
                              world.suite.workdir / "var" / "outbox")
    replays = checks.replays(world.suite)
    errors = server_errors(world.ledger, windows, began)
    row = {"fault": name, "events lost": found["lost"], "effects doubled": found["doubled"],
           "replay identical": "yes" if not any(replays.values()) else
           "no: " + ", ".join(s for s, out in replays.items() if out and not out.startswith("differed once")),
           "5xx during": errors["during"], "5xx after": errors["after"],
           "5xx without Retry-After": errors["bare"],
           "first write after (s)": _seconds(first_write), "caught up after (s)": _seconds(caught_up),
           "notes": "; ".join(filter(None, [notes, slowest and f"last to catch up: {slowest}",
                                            *(f"replay of {s} {out[:200]}" for s, out in replays.items()
                                              if out.startswith("differed once")),
                                            *found["problems"],
                                            *(f"no Retry-After: {r}" for r in errors["bare_routes"][:3]),
                                            *(f"5xx after: {r}" for r in errors["after_routes"][:4])]))}
    RESULTS.append(row)
    print(row, f"counts so far: {found['counts']}", f"5xx after the outage: {errors['after_routes']}", sep="\n")
    return {"row": row, "found": found, "replays": replays, "errors": errors}


def _seconds(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} median, {max(values):.1f} max"


def assert_correct(outcome: dict) -> None:
    found, replays, errors = outcome["found"], outcome["replays"], outcome["errors"]
    assert found["lost"] == 0 and found["doubled"] == 0 and not found["problems"], found["problems"]
    assert not any(out for out in replays.values() if not out.startswith("differed once")), replays
    assert errors["bare"] == 0, f"5xx without Retry-After: {errors['bare_routes']}"


def outage(world: World, name: str, inject, notes: str = "") -> dict:
    """Run `inject` (which returns once the fault is over) under the steady load; measure; stop; check."""
    with world.load() as load:
        time.sleep(WARM_UP)
        began = time.monotonic()
        inject()
        ended = time.monotonic()
        upto = checks.heads(world.engine, world.suite)
        checks.wait_caught_up(world.engine, world.suite, upto)
        caught = time.monotonic() - ended
        first = first_write_after(world.ledger, ended)
        time.sleep(1)
    print(f"{name}: the outage lasted {ended - began:.1f} s; {len(load.ledger.answers)} answers so far")
    return settle_and_check(world, name, began, [(began, ended)], [first], [caught], notes)


def test_rabbitmq_stops_for_10_seconds_and_comes_back(world):
    def inject():
        world.rabbit.stop_app()
        time.sleep(10)
        world.rabbit.start_app()

    outcome = outage(world, "RabbitMQ stopped 10 s (stop_app / start_app)", inject)
    assert_correct(outcome)


def test_postgresql_restarts(world):
    outcome = outage(world, "PostgreSQL restart (pg_ctl restart -m fast)", world.postgres.restart)
    assert_correct(outcome)


def test_every_process_is_killed_at_random_moments_and_restarted(world):
    suite, rng = world.suite, world.rng
    rounds = [rng.sample(suite.names, len(suite.names)) for _ in range(KILLS)]
    windows, first, caught = {n: [] for n in suite.names}, {n: [] for n in suite.names}, {n: [] for n in suite.names}
    with world.load():
        time.sleep(WARM_UP)
        began = time.monotonic()
        for order in rounds:
            for name in order:
                time.sleep(rng.uniform(0.2, 3.0))  # a random moment of the load
                killed = time.monotonic()
                suite.kill(name)
                suite.start_one(name)
                restarted = time.monotonic()
                upto = checks.heads(world.engine, suite)
                healthy(suite)
                windows[name].append((killed, time.monotonic()))  # down until it answers again
                checks.wait_caught_up(world.engine, suite, upto)
                caught[name].append(time.monotonic() - restarted)
                first[name].append(first_write_after(world.ledger, restarted, ops=OWN_WRITES.get(name, WRITES)))
    every_window = [w for ws in windows.values() for w in ws]
    # one check covers every kill; each process gets its own row with its outages' 5xx and recovery times
    outcome = settle_and_check(world, f"SIGKILL {suite.names[0]} x{KILLS}", began, every_window,
                               first[suite.names[0]], caught[suite.names[0]],
                               f"one check after all {KILLS * len(suite.names)} kills (seed {SEED})")
    outcome["row"]["5xx during"] = server_errors(world.ledger, windows[suite.names[0]], began)["during"]
    for name in suite.names[1:]:
        RESULTS.append({**outcome["row"], "fault": f"SIGKILL {name} x{KILLS}",
                        "5xx during": server_errors(world.ledger, windows[name], began)["during"],
                        "first write after (s)": _seconds(first[name]), "caught up after (s)": _seconds(caught[name]),
                        "notes": f"checked with SIGKILL {suite.names[0]}"})
    assert_correct(outcome)


def test_a_consumer_comes_back_to_a_backlog(world):
    suite = world.suite
    began = time.monotonic()
    suite.kill("notifications", signal.SIGTERM)  # stopped as an operator stops it
    stopped = time.monotonic()
    with world.load(bookers=8, pause=0, cancel_share=1.0, kiosks=0, clerks=0, limit_events=BACKLOG) as load:
        while load.events_made < BACKLOG and time.monotonic() - stopped < BACKLOG_SECONDS:
            time.sleep(0.2)
        generated, seconds = load.events_made, time.monotonic() - stopped
    deadline = time.monotonic() + 60  # what the sources logged has reached the broker
    while checks.outbox_pending(world.engine, suite, ("booking", "queue")) and time.monotonic() < deadline:
        time.sleep(0.2)
    queued = {name: n for name, n in world.rabbit.queues().items() if name.startswith("notifications.")
              and not name.endswith(".dead-letter")}
    backlog = sum(queued.values())
    rate = generated / seconds
    with world.load() as load:
        suite.start_one("notifications")
        ended = time.monotonic()
        upto = checks.heads(world.engine, suite)
        checks.wait_caught_up(world.engine, suite, upto, within=600)
        caught = time.monotonic() - ended
        first = first_write_after(world.ledger, ended)
    print(f"backlog: {generated} booking events in {seconds:.0f} s ({rate:.0f}/s), {backlog} messages queued for "
          f"notifications; caught up {caught:.1f} s after its restart")
    note = (f"backlog {backlog} messages ({generated} booking events at {rate:.0f}/s through the API"
            + (f"; {BACKLOG} not reached in {BACKLOG_SECONDS:.0f} s" if generated < BACKLOG else "") + ")")
    outcome = settle_and_check(world, "notifications stopped, backlog, restarted", began, [(began, ended)], [first],
                               [caught], note)
    assert_correct(outcome)
    assert backlog >= min(generated, BACKLOG) * 0.5, f"the consumer came back to no backlog: {queued}"


def test_redelivered_and_out_of_order_messages_change_nothing(world):
    suite = world.suite
    reader = suite.reader()["Authorization"]
    logged = {source: list(read_feed(suite.base_url, source, max(0, head - 300), authorization=lambda: reader))
              for source, head in checks.heads(world.engine, suite).items() if source in ("booking", "queue")}
    deliveries = []  # (queue, event): every logged event its subscription wants, twice
    for s in checks.DURABLE:
        for event in logged.get(s.source, []):
            if event.type in s.types:
                deliveries += [(s.name, event)] * 2
    world.rng.shuffle(deliveries)
    targets = {name for name, _ in deliveries}

    def inject():
        with Connection(world.rabbit.uri) as conn:
            producer = Producer(conn.channel())
            for queue, event in deliveries:
                producer.publish(event.to_dict(), exchange="", routing_key=queue, serializer="json", delivery_mode=2,
                                 message_id=event.event_id, headers={"event_id": event.event_id,
                                                                     "position": event.position,
                                                                     "type": event.wire_name})

    with world.load():
        time.sleep(WARM_UP)
        began = time.monotonic()
        inject()
        ended = time.monotonic()
        deadline = ended + 120
        while any(n for name, n in world.rabbit.queues().items() if name in targets):
            assert time.monotonic() < deadline, "the copies were not consumed within 120 s"
            time.sleep(0.2)
        drained = time.monotonic() - ended
        checks.SLOWEST.append("")  # measured by the queues draining, not by a subscription
        first = first_write_after(world.ledger, ended)
    outcome = settle_and_check(world, "redelivered + out of order (shuffled duplicates)", began, [(began, ended)],
                               [first], [drained],
                               f"{len(deliveries)} copies of {len(deliveries) // 2} logged events to {len(targets)} queues")
    assert_correct(outcome)
    assert deliveries, "no logged event to deliver again"
