"""The event store, its outbox and once-only projections, run against every backend (SQLite and PostgreSQL),
as pyeventsourcing runs one recorder suite against each of its databases.

On PostgreSQL an appended event gets its position (its hash, its outbox row) from the sequencer, after the commit
(Database.sequence, which the relay runs); on SQLite at once. `append` below runs the sequencer as the relay
would, and gives back the appended events with their positions."""
import eventlet
import eventlet.event
import pytest
import sqlalchemy as sa

from shared.contracts import from_dict
from shared.events import NewEvent
from shared.errors import ConcurrencyError, ContractError
from shared.projection import apply_once
from shared.dependencies import service_metadata
from shared.eventstore import verify_chain
from tests.support.store import sequenced

SERVICE = "storetest"


def metadata() -> sa.MetaData:
    meta = service_metadata()
    sa.Table("counters", meta,
             sa.Column("name", sa.String(50), primary_key=True),
             sa.Column("value", sa.Integer, nullable=False))
    return meta


@pytest.fixture
def db(open_db):
    return open_db(SERVICE, metadata(), sequenced_on_commit=False)  # the tests run the sequencer themselves


def holiday(n: int = 0) -> NewEvent:
    return NewEvent("availability.HolidayDeclared", {"branch": "npra-isa-town", "date": f"2027-01-{n % 28 + 1:02d}",
                                                     "name_en": f"Holiday {n}", "name_ar": f"عطلة {n}"}, "npra")


def directorate(n: int = 0) -> NewEvent:
    return NewEvent("availability.DirectorateRegistered",
                    {"directorate": f"d{n}", "name_en": f"Directorate {n}", "name_ar": "إدارة"}, f"d{n}")


def append(db, stream: str, expected: int, events: list[NewEvent]):
    with db.transaction() as uow:
        stored = uow.append(stream, expected, events)
    return sequenced(db, stored)


def column(db, table: str, name: str) -> list:
    t = db.tables[table]
    with db.engine.connect() as conn:
        return conn.execute(sa.select(t.c[name]).order_by(t.c[name])).scalars().all()


def positions(db) -> list[int]:
    return column(db, "events", "position")


def outbox(db) -> list[int]:
    return column(db, "outbox", "position")


def counter(db, name: str = "applied") -> int | None:
    t = db.tables["counters"]
    with db.engine.connect() as conn:
        return conn.execute(sa.select(t.c.value).where(t.c.name == name)).scalar()


def increment(uow, event, name: str = "applied") -> None:
    t = uow.tables["counters"]
    if uow.execute(t.update().where(t.c.name == name).values(value=t.c.value + 1)).rowcount == 0:
        uow.execute(t.insert().values(name=name, value=1))


# -- appending -------------------------------------------------------------------------------------------

def test_append_to_a_new_stream_at_version_zero(db):
    stored = append(db, "branch-npra-isa-town", 0, [holiday(1), holiday(2), holiday(3)])
    assert [e.stream_version for e in stored] == [1, 2, 3]
    assert [e.position for e in stored] == [1, 2, 3]
    assert {e.stream_id for e in stored} == {"branch-npra-isa-town"}
    assert all(e.version == 1 and e.directorate == "npra" for e in stored)
    assert all(e.correlation_id == e.event_id and e.causation_id is None for e in stored)
    assert all(e.occurred_at.utcoffset().total_seconds() == 0 for e in stored)
    with db.transaction() as uow:
        assert uow.store.stream_version("branch-npra-isa-town") == 3
        assert uow.store.stream_version("branch-nowhere") == 0
        assert uow.store.head() == 3
        assert uow.store.read_stream("branch-npra-isa-town") == stored   # the same envelope, Arabic and all
    assert from_dict(stored[0].to_dict()) == stored[0]


def test_append_keeps_the_envelope_it_is_given(db):
    new = NewEvent("availability.DirectorateRegistered",
                   {"directorate": "cid", "name_en": "Criminal Information Directorate",
                    "name_ar": "إدارة المعلومات الجنائية"}, "cid", version=1,
                   correlation_id="11111111-1111-4111-8111-111111111111",
                   causation_id="22222222-2222-4222-8222-222222222222")
    [event] = append(db, "directorate-cid", 0, [new])
    with db.transaction() as uow:
        [read] = uow.store.read_stream("directorate-cid")
    assert read == event
    assert (read.event_id, read.correlation_id, read.causation_id, read.directorate) == (
        new.event_id, new.correlation_id, new.causation_id, "cid")
    assert read.actor is None and read.to_dict()["actor"] is None


def test_an_event_records_who_did_it(db):
    clerk = {"subject": "clerk-1", "role": "clerk", "branch": "npra-isa-town", "counter": "5"}
    [event] = append(db, "branch-npra-isa-town", 0, [NewEvent(holiday().type, holiday().payload, "npra", actor=clerk)])
    with db.transaction() as uow:
        [read] = uow.store.read_all()
    assert read.actor == event.actor == clerk
    assert from_dict(read.to_dict()).actor == clerk   # through the feed and the broker too


def test_append_at_a_stale_version_raises_and_writes_nothing(db):
    append(db, "s", 0, [holiday(1), holiday(2)])
    for stale in (0, 1, 3, 7):
        with pytest.raises(ConcurrencyError):
            append(db, "s", stale, [holiday(9)])
    assert positions(db) == [1, 2]
    assert outbox(db) == [1, 2]
    with db.transaction() as uow:
        assert uow.store.stream_version("s") == 2
    assert [e.position for e in append(db, "s", 2, [holiday(3)])] == [3]   # no hole left behind


def test_append_to_a_new_stream_at_a_nonzero_version_raises(db):
    with pytest.raises(ConcurrencyError):
        append(db, "fresh", 1, [holiday()])
    assert positions(db) == []


def test_a_payload_that_breaks_its_contract_is_not_appended(db):
    bad = NewEvent("availability.HolidayDeclared", {"branch": "npra-isa-town", "date": "soon",
                                                    "name_en": "x", "name_ar": "y"})
    with pytest.raises(ContractError):
        append(db, "s", 0, [holiday(1), bad])
    assert positions(db) == [] and outbox(db) == []


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_appending_no_events_is_not_a_concurrency_error(db):
    try:
        result = append(db, "s", 0, [])
    except ValueError:
        result = []
    assert result == []
    assert positions(db) == [] and outbox(db) == []


def test_read_stream_is_in_version_order_and_only_that_stream(db):
    for round_ in range(5):
        append(db, "a", round_, [holiday(round_)])
        append(db, "b", 2 * round_, [directorate(round_), directorate(round_ + 10)])
    with db.transaction() as uow:
        a, b = uow.store.read_stream("a"), uow.store.read_stream("b")
        assert uow.store.read_stream("c") == []
    assert [e.stream_version for e in a] == [1, 2, 3, 4, 5]
    assert [e.payload["name_en"] for e in a] == [f"Holiday {n}" for n in range(5)]
    assert [e.stream_version for e in b] == list(range(1, 11))
    assert {e.stream_id for e in a} == {"a"} and {e.stream_id for e in b} == {"b"}
    assert [e.position for e in a] == sorted(e.position for e in a)


def test_read_all_pages_in_position_order(db):
    for n in range(25):
        append(db, f"s{n % 4}", n // 4, [holiday(n) if n % 3 else directorate(n)])
    pages, after = [], 0
    with db.transaction() as uow:
        while page := uow.store.read_all(after=after, limit=10):
            pages.append([e.position for e in page])
            after = page[-1].position
        assert uow.store.read_all(after=25) == []
        assert [e.position for e in uow.store.read_all(after=20, limit=100)] == [21, 22, 23, 24, 25]
        directorates = uow.store.read_all(types=["availability.DirectorateRegistered"])
        holidays = uow.store.read_all(after=5, limit=3, types=["availability.HolidayDeclared"])
        both = uow.store.read_all(types=["availability.HolidayDeclared", "availability.DirectorateRegistered"])
    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert [e.position for e in directorates] == [n + 1 for n in range(25) if n % 3 == 0]
    assert {e.type for e in directorates} == {"availability.DirectorateRegistered"}
    assert [e.position for e in holidays] == [6, 8, 9]
    assert [e.position for e in both] == list(range(1, 26))


def test_positions_are_gap_free_across_streams_and_failures(db):
    expected = 0
    for n in range(12):
        stream = f"s{n % 3}"
        if n % 4 == 3:   # a stale append and a rolled-back one in between
            with pytest.raises(ConcurrencyError):
                append(db, stream, 99, [holiday(n)])
            with pytest.raises(RuntimeError), db.transaction() as uow:
                uow.append(stream, uow.store.stream_version(stream), [holiday(n)])
                raise RuntimeError("after append")
        with db.transaction() as uow:
            uow.append(stream, uow.store.stream_version(stream), [holiday(n), directorate(n)])
        expected += 2
        db.sequence()
        assert positions(db) == list(range(1, expected + 1))
    with db.transaction() as uow:
        assert [e.position for e in uow.store.read_all()] == list(range(1, 25))


# -- the outbox ------------------------------------------------------------------------------------------

def test_every_appended_event_has_an_outbox_row(db):
    append(db, "a", 0, [holiday(1)])
    append(db, "b", 0, [holiday(2), holiday(3), holiday(4)])
    append(db, "a", 1, [directorate(5)])
    assert outbox(db) == positions(db) == [1, 2, 3, 4, 5]


def test_a_transaction_that_fails_after_append_leaves_no_events_and_no_outbox(db):
    rung = []
    db.on_commit(lambda: rung.append(True))
    with pytest.raises(RuntimeError), db.transaction() as uow:
        uow.append("a", 0, [holiday(1), holiday(2)])
        # the rows were really written inside the transaction ...
        assert uow.execute(sa.select(sa.func.count()).select_from(uow.tables["events"])).scalar() == 2
        assert uow.store.stream_version("a") == 2
        increment(uow, None)
        raise RuntimeError("the command failed after appending")
    assert db.sequence() == 0   # ... and all rolled back: nothing for the sequencer either
    assert positions(db) == [] and outbox(db) == [] and counter(db) is None
    assert rung == []   # the relay is not woken for events that never committed
    append(db, "a", 0, [holiday(3)])
    assert positions(db) == outbox(db) == [1]
    assert rung == [True]


def test_the_relay_is_rung_only_after_appending_transactions(db):
    rung = []
    db.on_commit(lambda: rung.append(True))
    with db.transaction() as uow:
        increment(uow, None)
    assert rung == []
    append(db, "a", 0, [holiday()])
    assert rung == [True]


# -- once-only projections -------------------------------------------------------------------------------

def test_apply_once_applies_an_event_once(db):
    [event] = append(db, "a", 0, [holiday()])
    assert apply_once(db, "test.counter", event, increment) is True
    assert apply_once(db, "test.counter", event, increment) is False
    assert apply_once(db, "test.counter", from_dict(event.to_dict()), increment) is False   # a redelivery
    assert counter(db) == 1
    assert apply_once(db, "test.other", event, increment) is True   # another consumer keeps its own record
    assert counter(db) == 2
    pe = db.tables["processed_events"]
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(pe.c.consumer, pe.c.event_id, pe.c.position).order_by(pe.c.consumer)).all()
    assert [tuple(r) for r in rows] == [("test.counter", event.event_id, 1), ("test.other", event.event_id, 1)]


def test_a_failing_apply_leaves_no_processed_record(db):
    [event] = append(db, "a", 0, [holiday()])

    def half_done(uow, e):
        increment(uow, e)
        raise RuntimeError("the projection broke halfway")

    with pytest.raises(RuntimeError):
        apply_once(db, "test.counter", event, half_done)
    assert counter(db) is None
    assert column(db, "processed_events", "event_id") == []
    assert apply_once(db, "test.counter", event, increment) is True   # the retry applies it
    assert apply_once(db, "test.counter", event, increment) is False
    assert counter(db) == 1


def test_already_processed_records_in_the_transaction(db):
    events = append(db, "a", 0, [holiday(1), holiday(2)])
    with db.transaction() as uow:
        assert uow.already_processed("c", events[0]) is False
        assert uow.already_processed("c", events[0]) is True
        assert uow.already_processed("c", events[1]) is False
    with pytest.raises(RuntimeError), db.transaction() as uow:
        assert uow.already_processed("d", events[0]) is False
        raise RuntimeError
    with db.transaction() as uow:
        assert uow.already_processed("c", events[1]) is True
        assert uow.already_processed("d", events[0]) is False   # the rolled-back record is gone


# -- concurrency (PostgreSQL: many greenthreads, each with its own connection) ---------------------------

@pytest.fixture
def pg_db(backend_config, open_db):
    if not backend_config.get("DATABASE_URL"):
        pytest.skip("concurrent writers need PostgreSQL: SQLite has one connection and one writer")
    return open_db(SERVICE, metadata(), sequenced_on_commit=False)


def test_concurrent_appends_are_gap_free_and_commit_ordered(pg_db, open_db):
    """Twenty writers on connections of their own, sequenced meanwhile by two sequencers (the relays of two
    replicas, each with its own engine), read meanwhile by two readers."""
    db, replica = pg_db, open_db(SERVICE, metadata(), sequenced_on_commit=False)
    writers_done, all_sequenced = eventlet.event.Event(), eventlet.event.Event()
    snapshots, paged, retries, batches = [], [], [], []

    def own_stream(w):
        for version in range(10):
            with db.transaction() as uow:
                uow.append(f"own-{w}", version, [holiday(version)])
            eventlet.sleep(0)

    def shared_stream(w):
        for n in range(10):
            while True:
                try:
                    with db.transaction() as uow:
                        uow.append("shared", uow.store.stream_version("shared"), [directorate(w * 100 + n)])
                    break
                except ConcurrencyError:
                    retries.append(w)
                    eventlet.sleep(0)

    def sequencer(log):
        while not writers_done.ready():
            batches.append(log.sequence())
            eventlet.sleep(0)

    def snapshot_reader():   # sees the whole log: it must always be 1..m, with no hole a later commit could fill
        while not writers_done.ready():
            with db.transaction() as uow:
                snapshots.append([e.position for e in uow.store.read_all(after=0, limit=10_000)])
            eventlet.sleep(0)

    def paging_reader():   # reads like a consumer catching up: after the last position seen
        after = 0
        while True:
            finished = all_sequenced.ready()  # not writers_done: the last commits are sequenced after it
            with db.transaction() as uow:
                page = uow.store.read_all(after=after, limit=7)
            paged.extend(e.position for e in page)
            if page:
                after = page[-1].position
            elif finished:
                return
            eventlet.sleep(0)

    readers = [eventlet.spawn(snapshot_reader), eventlet.spawn(paging_reader)]
    sequencers = [eventlet.spawn(sequencer, db), eventlet.spawn(sequencer, replica)]
    writers = [eventlet.spawn(own_stream, w) for w in range(10)] + [eventlet.spawn(shared_stream, w) for w in range(10)]
    with eventlet.Timeout(60):
        for g in writers:
            g.wait()
        writers_done.send(True)
        for g in sequencers:
            g.wait()
        replica.sequence()   # what was committed after the sequencers' last round
        all_sequenced.send(True)
        for g in readers:
            g.wait()

    assert positions(db) == list(range(1, 201))
    assert outbox(db) == list(range(1, 201))
    with db.transaction() as uow:
        log = uow.store.read_all(limit=1000)
        shared = uow.store.read_stream("shared")
        own = [uow.store.read_stream(f"own-{w}") for w in range(10)]
    assert len({e.event_id for e in log}) == 200
    assert [e.stream_version for e in shared] == list(range(1, 101))
    assert [e.position for e in shared] == sorted(e.position for e in shared)   # version order is position order
    for stream in own:
        assert [e.stream_version for e in stream] == list(range(1, 11))
        assert [e.position for e in stream] == sorted(e.position for e in stream)
    with db.engine.connect() as conn:
        assert verify_chain(conn) == (200, None)   # hashed by whichever sequencer numbered each batch

    # commit order: no reader ever saw a position smaller than one it had already seen
    assert len(snapshots) > 2 and len({len(s) for s in snapshots}) > 2, "the reader never saw the log grow"
    for snapshot in snapshots:
        assert snapshot == list(range(1, len(snapshot) + 1))
    assert [len(s) for s in snapshots] == sorted(len(s) for s in snapshots)
    assert paged == list(range(1, 201))   # the paging reader missed nothing and saw nothing twice
    assert retries, "the shared stream never saw a conflict: the test did not exercise concurrency"
    assert sum(1 for n in batches if n > 1), "no batch of the sequencer held several commits"


def test_an_uncommitted_append_holds_up_no_other_and_positions_follow_commits(pg_db):
    """Appends take no lock of the log: one committed while another is still open is sequenced first, and a
    reader that saw it never sees the other appear below it."""
    db = pg_db
    with eventlet.Timeout(10), db.transaction() as slow:
        [unsequenced] = slow.append("slow", 0, [holiday(1)])   # inserted first, committed last
        assert unsequenced.position is None
        [quick] = append(db, "quick", 0, [holiday(2)])   # another connection: committed and sequenced meanwhile
        assert quick.position == 1
        with db.transaction() as uow:
            assert [e.stream_id for e in uow.store.read_all()] == ["quick"]
            assert uow.store.head() == 1
    with db.transaction() as uow:   # committed, not yet sequenced: its stream knows it, readers of the log not
        assert uow.store.stream_version("slow") == 1
        assert [e.stream_id for e in uow.store.read_all()] == ["quick"]
    assert outbox(db) == [1]
    assert db.sequence() == 1 and db.sequence() == 0
    with db.transaction() as uow:
        assert [(e.position, e.stream_id) for e in uow.store.read_all()] == [(1, "quick"), (2, "slow")]
    assert outbox(db) == [1, 2]


def test_appends_at_the_same_expected_version_one_wins(pg_db):
    db = pg_db
    append(db, "race", 0, [holiday(n) for n in range(3)])
    gate = eventlet.event.Event()
    outcomes = []

    def contender(n):
        gate.wait()
        try:
            append(db, "race", 3, [directorate(n)])
            outcomes.append(("won", n))
        except ConcurrencyError:
            outcomes.append(("lost", n))

    threads = [eventlet.spawn(contender, n) for n in range(12)]
    eventlet.sleep(0)
    gate.send(True)
    with eventlet.Timeout(30):
        for g in threads:
            g.wait()
    assert len(outcomes) == 12
    winners = [n for outcome, n in outcomes if outcome == "won"]
    assert len(winners) == 1
    with db.transaction() as uow:
        stream = uow.store.read_stream("race")
    assert [e.stream_version for e in stream] == [1, 2, 3, 4]
    assert stream[-1].payload["directorate"] == f"d{winners[0]}"
    assert positions(db) == outbox(db) == [1, 2, 3, 4]


def test_concurrent_redeliveries_apply_once(pg_db):
    db = pg_db
    [event] = append(db, "a", 0, [holiday()])
    gate = eventlet.event.Event()
    outcomes = []

    def deliver():
        gate.wait()
        try:
            outcomes.append(apply_once(db, "test.counter", event, increment))
        except sa.exc.IntegrityError:   # the duplicate lost on the processed-events key and rolled back whole
            outcomes.append("rolled back")

    threads = [eventlet.spawn(deliver) for _ in range(6)]
    eventlet.sleep(0)
    gate.send(True)
    with eventlet.Timeout(30):
        for g in threads:
            g.wait()
    assert outcomes.count(True) == 1
    assert len(outcomes) == 6 and set(outcomes) <= {True, False, "rolled back"}
    assert counter(db) == 1
