"""The event store, its outbox and the processed-event records, on SQLite or PostgreSQL (SQLAlchemy Core).

Every service has its own database (a SQLite file, or a PostgreSQL schema) holding:
- `events`: the log. UNIQUE (stream_id, stream_version) makes a stale append fail; `position` is the global,
  gap-free, commit-ordered sequence that readers page through. `seq` is the order rows were inserted in.
- `outbox`: positions not yet confirmed by the broker; written in the transaction that gives events their positions.
- `processed_events`: (consumer, event_id) of every event a projection applied, written in the projection's
  transaction, so a redelivered event changes nothing.

Positions, and the hash chain, are given after the commit on PostgreSQL (Database.sequence, run by the relay):
appends hold no lock of the log, so concurrent commits share one WAL flush. On SQLite (one writer) an append
numbers its events at once. Readers of the log see an event only once it has its position.

Each event's `hash` chains it to the one before it (chain_hash), so a row changed by hand shows (verify_chain).
A service's tables are made and changed by its migrations (shared/migrations); `Database.create_tables` is for
scratch databases only.
"""
import functools
import hashlib
import json
from datetime import datetime
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite

from shared import metrics, vault
from shared.clock import UTC, clock, to_db
from shared.contracts import latest_version, validated_payload
from shared.events import Event, NewEvent
from shared.errors import ConcurrencyError

# Any fixed key: the sequencer of a service's log takes this transaction-scoped lock, so positions are given and
# committed one batch at a time, by one process at a time (however many replicas run a relay).
APPEND_LOCK_KEY = 7_263_011
SCHEMA_LOCK_KEY = 7_263_012  # migrating a service's schema (shared.migrations), creating a scratch one
PUBLISH_LOCK_KEY = 7_263_013  # the relay publishing a log's outbox: one replica at a time, so each event goes once
SEQUENCE_BATCH = 2000  # events given positions per sequencer transaction


def event_tables(metadata: sa.MetaData) -> None:
    """Add the store's tables to a service's metadata."""
    sa.Table(
        "events", metadata,
        # the insertion order: PostgreSQL's appends commit out of it, so it is not the log's order (position is)
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), primary_key=True),
        sa.Column("position", sa.BigInteger),  # NULL until the sequencer gives it (PostgreSQL)
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(120), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),  # naive UTC
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("causation_id", sa.String(36)),
        sa.Column("directorate", sa.String(64)),
        sa.Column("actor", sa.Text),  # JSON {subject, role, branch?}: who did it, never their token
        sa.Column("payload", sa.Text, nullable=False),
        # chain_hash of this row after the previous one's; nullable so that a bulk load (bench/) can leave it
        # out, which verify_chain then reports
        sa.Column("hash", sa.String(64)),
        sa.UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
        sa.UniqueConstraint("position", name="uq_events_position"),
    )
    events = metadata.tables["events"]
    sa.Index("ix_events_type_position", events.c.type, events.c.position)
    # what the sequencer looks for: small, since rows leave it as soon as they are sequenced
    sa.Index("ix_events_unsequenced", events.c.seq, postgresql_where=events.c.position.is_(None),
             sqlite_where=events.c.position.is_(None))
    sa.Table("outbox", metadata, sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False))
    vault.key_table(metadata)
    sa.Table(
        "processed_events", metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("processed_at", sa.DateTime, nullable=False),
    )


def make_engine(url: str, schema: str | None = None, pool_size: int = 10) -> sa.Engine:
    if url.startswith("sqlite"):
        # One connection per file: SQLite has one writer anyway, and under eventlet a second connection
        # waiting on the file lock would block the whole hub instead of yielding.
        engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                                  connect_args={"check_same_thread": False, "timeout": 30})

        @sa_event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        @sa_event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlocks
        return engine

    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    if schema:
        @sa_event.listens_for(engine, "connect")
        def _search_path(dbapi_conn, _record):
            with dbapi_conn.cursor() as cur:
                cur.execute(f'SET search_path TO "{schema}"')
            dbapi_conn.commit()
    return engine


# The envelope's columns in a fixed order, the payload last: rows are unpacked by position, much cheaper than by
# name in a read of thousands of events.
ENVELOPE = ("position", "event_id", "stream_id", "stream_version", "type", "version", "occurred_at",
            "correlation_id", "causation_id", "directorate", "actor", "payload")


# -- the hash chain ------------------------------------------------------------------------------------------
# An event's hash is SHA-256 over the hash of the event before it (GENESIS before the first) and its ENVELOPE
# columns as stored: the payload with its personal fields sealed, so erasing a person (forgetting the key) leaves
# the chain intact. The bytes: each of these 13 values in that order as "<length of its UTF-8 bytes>:<those
# bytes>", NULL as "-"; integers in decimal, occurred_at as YYYY-MM-DDTHH:MM:SS.ffffff (naive UTC). Never change
# this layout (every stored hash depends on it): CHAIN_FUNCTIONS is the same in SQL, and
# tests/contract/test_hash_chain.py holds the two to each other.
GENESIS = "0" * 64


def _chain_field(value) -> bytes:
    if value is None:
        return b"-"
    data = (value.strftime("%Y-%m-%dT%H:%M:%S.%f") if isinstance(value, datetime) else str(value)).encode()
    return b"%d:%s" % (len(data), data)


def chain_hash(previous: str | None, row) -> str:
    """The hash of a stored event `row` (ENVELOPE values as stored) after the event hashed `previous`."""
    return hashlib.sha256(b"".join(map(_chain_field, (previous, *row)))).hexdigest()


def verify_chain(conn: sa.Connection, start: int = 1, page: int = 5000):
    """Walk the log from position `start` (the hash at start - 1 taken as written) and recompute every hash.
    Returns (events checked, None) when the chain holds, or (events checked, (position, what differs)) at the
    first position where it breaks."""
    columns = ", ".join(ENVELOPE)
    previous = GENESIS if start <= 1 else conn.execute(
        sa.text("SELECT hash FROM events WHERE position = :p"), {"p": start - 1}).scalar()
    expected, checked = max(start, 1), 0
    while True:
        rows = conn.execute(sa.text(f"SELECT {columns}, hash FROM events WHERE position >= :p "
                                    "ORDER BY position LIMIT :n").columns(occurred_at=sa.DateTime),  # as a datetime
                            {"p": expected, "n": page}).all()
        for *row, stored in rows:
            position = row[0]
            if position != expected:
                return checked, (expected, f"missing: the next event is at position {position}")
            if stored is None:
                return checked, (position, "no hash: written without the chain")
            recomputed = chain_hash(previous or GENESIS, row)
            if recomputed != stored:
                return checked, (position, f"stored hash {stored[:12]}…, its content after the hash at "
                                           f"{position - 1} gives {recomputed[:12]}…: this event (or the one "
                                           "before it, with its hash) was changed after it was written")
            previous, expected, checked = stored, expected + 1, checked + 1
        if len(rows) < page:
            return checked, None


def stored_event(envelope, payload: dict) -> Event:
    """An event from the envelope columns of a row (ENVELOPE without the payload) and its payload."""
    position, event_id, stream_id, stream_version, type_, version, occurred_at, correlation_id, causation_id, \
        directorate, actor = envelope
    return Event.of_stored(event_id=event_id, type=type_, version=version, stream_id=stream_id,
                           stream_version=stream_version, position=position, occurred_at=occurred_at.replace(tzinfo=UTC),
                           correlation_id=correlation_id, causation_id=causation_id, directorate=directorate,
                           payload=payload, actor=json.loads(actor) if actor else None)


class EventStore:
    """The log of one service, used inside a transaction (a Connection)."""

    def __init__(self, conn: sa.Connection, metadata: sa.MetaData):
        self.conn = conn
        self.events = metadata.tables["events"]
        self.outbox = metadata.tables["outbox"]
        self.vault = vault.Vault(conn, metadata.tables["person_keys"])
        self.envelope = [self.events.c[name] for name in ENVELOPE]

    def events_of(self, rows) -> list[Event]:
        """Stored rows (columns as ENVELOPE) as events, their personal fields readable (or "[erased]"); the keys of
        all the people they name are read in one query."""
        self.vault.preload(vault.sealed_subjects(row[-1] for row in rows))
        # opened in place as parsed (row[4] is the type): no second copy of the payload or the event
        return [stored_event(row[:-1], self.vault.open(row[4], json.loads(row[-1]), fresh=True)) for row in rows]

    def lock_stream(self, stream_id: str) -> None:
        """Hold a hot stream for the rest of the transaction, so concurrent commands on it queue up instead of
        deciding in parallel and retrying on conflict (SQLite's BEGIN IMMEDIATE already serialises)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || :s, 0))"),
                              {"s": stream_id})

    def version_of(self, stream_id: str) -> sa.ScalarSelect:
        """The stream's version (0 for a new stream) as a scalar subquery, to read inside another statement: all
        that statement reads comes from one snapshot, so a decision made on it and appended at this version fails
        if anything was appended to the stream since."""
        return (sa.select(sa.func.coalesce(sa.func.max(self.events.c.stream_version), 0))
                .where(self.events.c.stream_id == stream_id).scalar_subquery())

    def stream_version(self, stream_id: str) -> int:
        return self.conn.execute(sa.select(self.version_of(stream_id))).scalar_one()

    def read_stream(self, stream_id: str) -> list[Event]:
        rows = self.conn.execute(sa.select(*self.envelope).where(self.events.c.stream_id == stream_id)
                                 .order_by(self.events.c.stream_version)).all()
        return self.events_of(rows)

    def read_all(self, after: int = 0, limit: int = 1000, types: list[str] | None = None) -> list[Event]:
        query = sa.select(*self.envelope).where(self.events.c.position > after)
        if types:
            query = query.where(self.events.c.type.in_(types))
        return self.events_of(self.conn.execute(query.order_by(self.events.c.position).limit(limit)).all())

    def head(self) -> int:
        return self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(self.events.c.position), 0))).scalar_one()

    def append(self, stream_id: str, expected_version: int, new_events: list[NewEvent]) -> list[Event]:
        """Append to a stream that must be at `expected_version`; raise ConcurrencyError otherwise.

        The events are written in the caller's transaction. On PostgreSQL they take no lock of the log: their
        positions, hashes and outbox rows come after the commit, from the sequencer (Database.sequence), so the
        events returned have position None. On SQLite they are numbered, hashed and put in the outbox here.
        """
        if not new_events:
            raise ValueError("nothing to append")
        occurred_at = clock.now()
        rows = []
        for offset, new in enumerate(new_events, start=1):
            version = new.version or latest_version(new.type)
            payload = validated_payload(new.type, version, new.payload)
            rows.append({
                "offset": offset, "event_id": new.event_id, "type": new.type, "version": version,
                "correlation_id": new.correlation_id or new.event_id, "causation_id": new.causation_id,
                "directorate": new.directorate, "payload": payload, "actor": new.actor,
                "stored_actor": json.dumps(new.actor, separators=(",", ":")) if new.actor else None,
                "stored": json.dumps(self.vault.seal(new.type, payload), ensure_ascii=False, separators=(",", ":")),
            })
        if self.conn.dialect.name == "postgresql":
            head = self._append_postgresql(stream_id, expected_version, rows, occurred_at)
        else:
            head = self._append_generic(stream_id, expected_version, rows, occurred_at)
        return [Event(event_id=r["event_id"], type=r["type"], version=r["version"], stream_id=stream_id,
                      stream_version=expected_version + r["offset"],
                      position=None if head is None else head + r["offset"],
                      occurred_at=occurred_at, correlation_id=r["correlation_id"], causation_id=r["causation_id"],
                      directorate=r["directorate"], payload=r["payload"], actor=r["actor"]) for r in rows]

    def _append_generic(self, stream_id: str, expected_version: int, rows: list[dict], occurred_at) -> int:
        # SQLite: BEGIN IMMEDIATE already holds the write lock, so these reads are current.
        if self.stream_version(stream_id) != expected_version:
            raise ConcurrencyError(f"{stream_id} is not at version {expected_version}")
        last = self.conn.execute(sa.select(self.events.c.position, self.events.c.hash)
                                 .order_by(self.events.c.position.desc()).limit(1)).first()
        head, previous = (last.position, last.hash) if last else (0, None)
        stored = []
        for r in rows:  # hashed in order, each after the one before (chain_hash)
            row = {"position": head + r["offset"], "event_id": r["event_id"], "stream_id": stream_id,
                   "stream_version": expected_version + r["offset"], "type": r["type"], "version": r["version"],
                   "occurred_at": to_db(occurred_at), "correlation_id": r["correlation_id"],
                   "causation_id": r["causation_id"], "directorate": r["directorate"], "actor": r["stored_actor"],
                   "payload": r["stored"]}
            row["hash"] = previous = chain_hash(previous or GENESIS, [row[name] for name in ENVELOPE])
            stored.append(row)
        try:
            self.conn.execute(self.events.insert(), stored)
        except sa.exc.IntegrityError as exc:
            raise ConcurrencyError(str(exc.orig)) from None
        self.conn.execute(self.outbox.insert(), [{"position": head + r["offset"]} for r in rows])
        return head

    def _append_postgresql(self, stream_id: str, expected_version: int, rows: list[dict], occurred_at) -> None:
        """One call of the schema's append_events (APPEND_FUNCTION): check the stream's version and insert the
        events unsequenced, in one round trip with a plan the session keeps. Two appends at one version both
        pass the check only when neither has committed: then UNIQUE (stream_id, stream_version) fails one."""
        columns = ("event_id", "type", "version", "correlation_id", "causation_id", "directorate", "stored_actor",
                   "stored")
        try:
            inserted = self.conn.exec_driver_sql(
                "SELECT append_events(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (stream_id, expected_version, to_db(occurred_at),
                 *([r[c] for r in rows] for c in columns))).scalar_one()
        except sa.exc.IntegrityError as exc:
            raise ConcurrencyError(str(exc.orig)) from None
        if not inserted:
            raise ConcurrencyError(f"{stream_id} is not at version {expected_version}")

    def sequence(self, limit: int = SEQUENCE_BATCH) -> int:
        """Give up to `limit` committed, unsequenced events the next positions, in the order they were inserted,
        with their hashes and outbox rows (SEQUENCE_FUNCTION); returns how many. Commit right after: the log's
        sequencer lock is held until then. SQLite numbers events as they are appended: nothing to do."""
        if self.conn.dialect.name != "postgresql":
            return 0
        return self.conn.exec_driver_sql("SELECT sequence_events(%s, %s)", (APPEND_LOCK_KEY, limit)).scalar_one()


# chain_hash in SQL (the same bytes: see the hash chain above). Migration 0003 installs a frozen copy of these
# functions; tests/contract/test_hash_chain.py checks that it is this one. STABLE, as convert_to and to_char are:
# declared IMMUTABLE they could not be inlined, and each append would run 14 SQL function calls per event (25x).
CHAIN_FUNCTIONS = """
CREATE OR REPLACE FUNCTION chain_field(v text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN v IS NULL THEN '-' ELSE octet_length(convert_to(v, 'UTF8')) || ':' || v END
$$;
CREATE OR REPLACE FUNCTION chain_hash(
    p_previous text, p_position bigint, p_event_id text, p_stream text, p_stream_version integer, p_type text,
    p_version integer, p_at timestamp, p_correlation text, p_causation text, p_directorate text, p_actor text,
    p_payload text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(
        chain_field(p_previous) || chain_field(p_position::text) || chain_field(p_event_id)
        || chain_field(p_stream) || chain_field(p_stream_version::text) || chain_field(p_type)
        || chain_field(p_version::text) || chain_field(to_char(p_at, 'YYYY-MM-DD"T"HH24:MI:SS.US'))
        || chain_field(p_correlation) || chain_field(p_causation) || chain_field(p_directorate)
        || chain_field(p_actor) || chain_field(p_payload), 'UTF8')), 'hex')
$$"""

# An append checks its stream's version and inserts its events with no position: no lock of the log, so
# concurrent appends commit (and flush) together. The version is read from committed rows, sequenced or not.
APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION append_events(
    p_stream text, p_expected integer, p_at timestamp, p_ids text[], p_types text[], p_versions integer[],
    p_correlations text[], p_causations text[], p_directorates text[], p_actors text[], p_payloads text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    IF (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = p_stream) <> p_expected THEN
        RETURN 0;  -- nothing appended: the caller raises ConcurrencyError
    END IF;
    INSERT INTO events (event_id, stream_id, stream_version, type, version, occurred_at, correlation_id,
                        causation_id, directorate, actor, payload)
    SELECT v.event_id, p_stream, p_expected + v.n, v.type, v.version, p_at, v.correlation_id, v.causation_id,
           v.directorate, v.actor, v.payload
    FROM unnest(p_ids, p_types, p_versions, p_correlations, p_causations, p_directorates, p_actors, p_payloads)
             WITH ORDINALITY AS v(event_id, type, version, correlation_id, causation_id, directorate, actor,
                                  payload, n)
    ORDER BY v.n;  -- seq in the stream's order
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$"""

# The sequencer: under the log's lock (one sequencer at a time; the next one waits, then reads after this one's
# commit), the committed events without a position, in seq order, get the next positions and their hashes, each
# after the one before (chain_hash), and their outbox rows. Each statement of a volatile PL/pgSQL function reads
# a fresh snapshot: the head and the events are read after the lock is held.
#
# Why seq order is commit order where it matters: an event that was committed before another was inserted has
# the smaller seq, and is visible to every snapshot the other is visible to; so it is sequenced in the same batch
# or an earlier one, before the other. In particular a stream's versions (each decided after the one before
# committed, UNIQUE (stream_id, stream_version) sees to that) are in position order. Events that are not so
# ordered were concurrent: neither could have read the other.
SEQUENCE_FUNCTION = """
CREATE OR REPLACE FUNCTION sequence_events(p_lock integer, p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_head bigint;
    v_hash text;
    v_seqs bigint[] := '{}';
    v_positions bigint[] := '{}';
    v_hashes text[] := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock, hashtext(current_schema()));
    SELECT e.position, e.hash INTO v_head, v_hash FROM events e
        WHERE e.position IS NOT NULL ORDER BY e.position DESC LIMIT 1;
    v_head := coalesce(v_head, 0);
    FOR r IN SELECT * FROM events e WHERE e.position IS NULL ORDER BY e.seq LIMIT p_limit LOOP
        v_head := v_head + 1;
        v_hash := chain_hash(coalesce(v_hash, repeat('0', 64)), v_head, r.event_id, r.stream_id, r.stream_version,
                             r.type, r.version, r.occurred_at, r.correlation_id, r.causation_id, r.directorate,
                             r.actor, r.payload);
        v_seqs := v_seqs || r.seq;
        v_positions := v_positions || v_head;
        v_hashes := v_hashes || v_hash;
    END LOOP;
    IF cardinality(v_seqs) = 0 THEN
        RETURN 0;
    END IF;
    UPDATE events e SET position = s.position, hash = s.hash
        FROM unnest(v_seqs, v_positions, v_hashes) AS s(seq, position, hash) WHERE e.seq = s.seq;
    INSERT INTO outbox (position) SELECT unnest(v_positions);
    RETURN cardinality(v_seqs);
END $$"""


class Database:
    """One service's database: its engine, its tables, and transactions that hand out an EventStore."""

    def __init__(self, engine: sa.Engine, metadata: sa.MetaData, schema: str | None = None):
        self.engine = engine
        self.metadata = metadata
        self.schema = schema
        self.tables = metadata.tables
        self._after_commit = []

    def create_tables(self) -> None:
        """The metadata's missing tables, straight from it: for scratch databases (a replay's, a bench's) and the
        tables of no service (tests' own). A service's database is migrated instead (shared.migrations)."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # replicas starting together take turns creating the tables
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            if self.schema and conn.dialect.name == "postgresql":
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            self.metadata.create_all(conn)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(CHAIN_FUNCTIONS)
                conn.exec_driver_sql(APPEND_FUNCTION)
                conn.exec_driver_sql(SEQUENCE_FUNCTION)

    def on_commit(self, callback) -> None:
        """Call `callback()` after every transaction that appended events (the relay's doorbell)."""
        self._after_commit.append(callback)

    @contextmanager
    def transaction(self):
        with self.engine.begin() as conn:
            uow = UnitOfWork(conn, self.metadata)
            yield uow
        if uow.appended:
            for callback in self._after_commit:
                callback()

    def sequence(self) -> int:
        """Give every event committed before this call its position, hash and outbox row (EventStore.sequence),
        a batch per short transaction; returns how many. Safe to run in any number of processes at once."""
        if self.engine.dialect.name != "postgresql":
            return 0  # SQLite numbers events as they are appended
        total = 0
        while True:
            with self.engine.begin() as conn:
                done = EventStore(conn, self.metadata).sequence(SEQUENCE_BATCH)
            total += done
            if done < SEQUENCE_BATCH:
                return total

    @contextmanager
    def publishing_turn(self):
        """Whether this process holds the log's outbox for the length of the block: the relays of several
        replicas take turns (a session lock, PostgreSQL), so each publishes what the one before left and an event
        goes out once. A relay that finds the turn taken skips its round (the holder is publishing) rather than
        wait. SQLite's log has one process and one relay: always its turn."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        with self.engine.connect() as conn:
            released = False
            try:
                held = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"),
                                    {"key": PUBLISH_LOCK_KEY}).scalar_one()
                conn.commit()
                yield held
                if held:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"),
                                 {"key": PUBLISH_LOCK_KEY})
                    conn.commit()
                released = True
            finally:
                if not released:  # a failed round, or a greenlet killed anywhere in it: closing the session
                    conn.invalidate()  # is what surely releases a session lock (a pooled one would keep it)

    def last_processed_position(self, consumer: str) -> int:
        """The highest source position `consumer` has processed (0 when none): where catching up starts."""
        table = self.tables["processed_events"]
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.position), 0))
                                .where(table.c.consumer == consumer)).scalar_one()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


@functools.cache
def _record_processed(table: sa.Table, dialect: str):
    """The insert of a processed-event record that does nothing on a repeat, built once per table (building a
    statement and its cache key costs more than running it)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).on_conflict_do_nothing()


class UnitOfWork:
    """What a command or projection gets inside one transaction."""

    def __init__(self, conn: sa.Connection, metadata: sa.MetaData):
        self.conn = conn
        self.tables = metadata.tables
        self.store = EventStore(conn, metadata)
        self.appended: list[Event] = []

    def execute(self, statement, params=None):
        return self.conn.execute(statement, params) if params is not None else self.conn.execute(statement)

    def append(self, stream_id: str, expected_version: int, new_events: list[NewEvent]) -> list[Event]:
        stored = self.store.append(stream_id, expected_version, new_events)
        self.appended.extend(stored)
        for event in stored:
            metrics.EVENTS_APPENDED.labels(event.source, event.type).inc()
        return stored

    def already_processed(self, consumer: str, event: Event) -> bool:
        """Record that `consumer` applies `event` in this transaction; True if it already had.

        One statement: the insert does nothing on the key it would repeat. A concurrent duplicate waits for the
        first one's transaction on that key and then finds it (True), or inserts it if the first rolled back."""
        recorded = self.conn.execute(_record_processed(self.tables["processed_events"], self.conn.dialect.name), {
            "consumer": consumer, "event_id": event.event_id, "position": event.position,
            "processed_at": to_db(clock.now())})
        return recorded.rowcount == 0
