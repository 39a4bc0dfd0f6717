"""Steps the migrations of every service share (each service's log has the same store tables). Frozen like the
migrations that call them: once released, a step is never edited, since databases were migrated with it; a
change is a new step called by a new migration in every versions folder."""
from alembic import op
import sqlalchemy as sa

APPEND_LOCK_KEY = 7_263_011  # shared.eventstore.APPEND_LOCK_KEY: a back-fill waits for appends and holds them off
GENESIS = "0" * 64


def is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


# -- 0001: the schema of the release before migrations (its create_all) -----------------------------------------

def create_store_tables() -> None:
    op.create_table('events',
    sa.Column('position', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('stream_id', sa.String(length=200), nullable=False),
    sa.Column('stream_version', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=120), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('correlation_id', sa.String(length=36), nullable=False),
    sa.Column('causation_id', sa.String(length=36), nullable=True),
    sa.Column('directorate', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('position'),
    sa.UniqueConstraint('event_id'),
    sa.UniqueConstraint('stream_id', 'stream_version', name='uq_events_stream_version')
    )
    op.create_index('ix_events_type_position', 'events', ['type', 'position'], unique=False)
    op.create_table('outbox',
    sa.Column('position', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('position')
    )
    op.create_table('person_keys',
    sa.Column('subject', sa.String(length=24), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('subject')
    )
    op.create_table('processed_events',
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id')
    )
    if is_postgresql():
        op.execute(APPEND_FUNCTION_0001)


def drop_store_tables() -> None:
    if is_postgresql():
        op.execute("DROP FUNCTION IF EXISTS append_events(integer, text, integer, timestamp, text[], text[], "
                   "integer[], text[], text[], text[], text[], text[])")
    for name in ("processed_events", "person_keys", "outbox", "events"):
        op.drop_table(name)


def create_catalogue_tables() -> None:
    """shared.catalogue.catalogue_tables: each service's copy of the catalogue."""
    op.create_table('branches',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('directorate', sa.String(length=64), nullable=True),
    sa.Column('doc', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_branches_directorate'), 'branches', ['directorate'], unique=False)
    op.create_table('directorates',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('name_ar', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def drop_catalogue_tables() -> None:
    op.drop_table('directorates')
    op.drop_index(op.f('ix_branches_directorate'), table_name='branches')
    op.drop_table('branches')


APPEND_FUNCTION_0001 = """
CREATE OR REPLACE FUNCTION append_events(
    p_lock integer, p_stream text, p_expected integer, p_at timestamp, p_ids text[], p_types text[],
    p_versions integer[], p_correlations text[], p_causations text[], p_directorates text[], p_actors text[],
    p_payloads text[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock, hashtext(current_schema()));
    IF (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = p_stream) <> p_expected THEN
        RETURN;  -- nothing appended: the caller raises ConcurrencyError
    END IF;
    RETURN QUERY WITH added AS (
        INSERT INTO events (position, event_id, stream_id, stream_version, type, version, occurred_at,
                            correlation_id, causation_id, directorate, actor, payload)
        SELECT head.position + v.n, v.event_id, p_stream, p_expected + v.n, v.type, v.version, p_at,
               v.correlation_id, v.causation_id, v.directorate, v.actor, v.payload
        FROM (SELECT coalesce(max(e.position), 0) AS position FROM events e) AS head,
             unnest(p_ids, p_types, p_versions, p_correlations, p_causations, p_directorates, p_actors, p_payloads)
                 WITH ORDINALITY AS v(event_id, type, version, correlation_id, causation_id, directorate, actor,
                                      payload, n)
        RETURNING events.position)
    INSERT INTO outbox (position) SELECT added.position FROM added RETURNING outbox.position;
END $$"""


# -- 0002: events name their actor ----------------------------------------------------------------------------

def add_actor_column() -> None:
    """The release before migrations added this column at start when missing; a log older than it is stamped at
    0001 without it (a log made by that release already has it, and a fresh 0001 too)."""
    if "actor" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("events")}:
        op.add_column("events", sa.Column("actor", sa.Text(), nullable=True))


# -- 0003: the hash chain ---------------------------------------------------------------------------------------

CHAIN_FUNCTIONS_0003 = """
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

APPEND_FUNCTION_0003 = """
CREATE OR REPLACE FUNCTION append_events(
    p_lock integer, p_stream text, p_expected integer, p_at timestamp, p_ids text[], p_types text[],
    p_versions integer[], p_correlations text[], p_causations text[], p_directorates text[], p_actors text[],
    p_payloads text[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    v_head bigint;
    v_hash text;
    v_hashes text[] := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock, hashtext(current_schema()));
    IF (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = p_stream) <> p_expected THEN
        RETURN;  -- nothing appended: the caller raises ConcurrencyError
    END IF;
    SELECT e.position, e.hash INTO v_head, v_hash FROM events e ORDER BY e.position DESC LIMIT 1;
    v_head := coalesce(v_head, 0);
    FOR i IN 1 .. cardinality(p_ids) LOOP
        v_hash := chain_hash(coalesce(v_hash, repeat('0', 64)), v_head + i, p_ids[i], p_stream, p_expected + i,
                             p_types[i], p_versions[i], p_at, p_correlations[i], p_causations[i],
                             p_directorates[i], p_actors[i], p_payloads[i]);
        v_hashes := v_hashes || v_hash;
    END LOOP;
    RETURN QUERY WITH added AS (
        INSERT INTO events (position, event_id, stream_id, stream_version, type, version, occurred_at,
                            correlation_id, causation_id, directorate, actor, payload, hash)
        SELECT v_head + v.n, v.event_id, p_stream, p_expected + v.n, v.type, v.version, p_at,
               v.correlation_id, v.causation_id, v.directorate, v.actor, v.payload, v.hash
        FROM unnest(p_ids, p_types, p_versions, p_correlations, p_causations, p_directorates, p_actors,
                    p_payloads, v_hashes)
                 WITH ORDINALITY AS v(event_id, type, version, correlation_id, causation_id, directorate, actor,
                                      payload, hash, n)
        RETURNING events.position)
    INSERT INTO outbox (position) SELECT added.position FROM added RETURNING outbox.position;
END $$"""

# The existing events, hashed in position order, with the appends held off until the migration commits.
BACKFILL_0003 = """
DO $$
DECLARE
    r record;
    v_hash text := repeat('0', 64);
BEGIN
    PERFORM pg_advisory_xact_lock(%d, hashtext(current_schema()));
    FOR r IN SELECT * FROM events ORDER BY position LOOP
        v_hash := chain_hash(v_hash, r.position, r.event_id, r.stream_id, r.stream_version, r.type, r.version,
                             r.occurred_at, r.correlation_id, r.causation_id, r.directorate, r.actor, r.payload);
        UPDATE events SET hash = v_hash WHERE position = r.position;
    END LOOP;
END $$""" % APPEND_LOCK_KEY

ENVELOPE_0003 = ("position", "event_id", "stream_id", "stream_version", "type", "version", "occurred_at",
                 "correlation_id", "causation_id", "directorate", "actor", "payload")


def add_hash_chain() -> None:
    op.add_column("events", sa.Column("hash", sa.String(length=64), nullable=True))
    if is_postgresql():
        op.execute(CHAIN_FUNCTIONS_0003)
        op.execute(APPEND_FUNCTION_0003)
        op.execute(BACKFILL_0003)
        return
    # SQLite: the migration holds the database's write lock (BEGIN IMMEDIATE) until it commits
    from shared.eventstore import chain_hash  # the layout, defined once; it never changes
    conn, previous, after = op.get_bind(), GENESIS, 0
    select = sa.text(f"SELECT {', '.join(ENVELOPE_0003)} FROM events WHERE position > :after "
                     "ORDER BY position LIMIT 5000").columns(occurred_at=sa.DateTime)  # as a datetime
    while rows := conn.execute(select, {"after": after}).all():
        hashes = []
        for row in rows:
            previous = chain_hash(previous, row)
            hashes.append({"h": previous, "p": row[0]})
        conn.execute(sa.text("UPDATE events SET hash = :h WHERE position = :p"), hashes)
        after = rows[-1][0]


def drop_hash_chain() -> None:
    if is_postgresql():
        op.execute(APPEND_FUNCTION_0001)
        op.execute("DROP FUNCTION IF EXISTS chain_hash(text, bigint, text, text, integer, text, integer, "
                   "timestamp, text, text, text, text, text)")
        op.execute("DROP FUNCTION IF EXISTS chain_field(text)")
    op.drop_column("events", "hash")


# -- 0004: positions given after the commit (the sequencer) -----------------------------------------------------

APPEND_FUNCTION_0003_SIGNATURE = ("append_events(integer, text, integer, timestamp, text[], text[], integer[], "
                                  "text[], text[], text[], text[], text[])")
APPEND_FUNCTION_0004_SIGNATURE = ("append_events(text, integer, timestamp, text[], text[], integer[], text[], "
                                  "text[], text[], text[], text[])")

APPEND_FUNCTION_0004 = """
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

SEQUENCE_FUNCTION_0004 = """
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


def _events_table_sqlite(name: str, sequenced_later: bool) -> None:
    """The events table of 0003 (`sequenced_later` False) or of 0004, made under `name` (SQLite changes a primary
    key only by copying the table)."""
    if sequenced_later:
        keys = [sa.Column("seq", sa.Integer(), nullable=False),
                sa.Column("position", sa.BigInteger(), nullable=True)]
        constraints = [sa.PrimaryKeyConstraint("seq"), sa.UniqueConstraint("position", name="uq_events_position")]
    else:
        keys = [sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False)]
        constraints = [sa.PrimaryKeyConstraint("position")]
    op.create_table(name, *keys,
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('stream_id', sa.String(length=200), nullable=False),
    sa.Column('stream_version', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=120), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('correlation_id', sa.String(length=36), nullable=False),
    sa.Column('causation_id', sa.String(length=36), nullable=True),
    sa.Column('directorate', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=True),
    *constraints,
    sa.UniqueConstraint('event_id'),
    sa.UniqueConstraint('stream_id', 'stream_version', name='uq_events_stream_version'))


def _copy_events_sqlite(sequenced_later: bool) -> None:
    columns = ("position, event_id, stream_id, stream_version, type, version, occurred_at, correlation_id, "
               "causation_id, directorate, actor, payload, hash")
    _events_table_sqlite("_events_copy", sequenced_later)
    if sequenced_later:  # every SQLite event has its position: it is their insertion order too
        op.execute(f"INSERT INTO _events_copy (seq, {columns}) SELECT position, {columns} FROM events")
    else:
        op.execute(f"INSERT INTO _events_copy ({columns}) SELECT {columns} FROM events")
    op.drop_table("events")  # and its indexes
    op.rename_table("_events_copy", "events")
    op.create_index("ix_events_type_position", "events", ["type", "position"], unique=False)


def sequence_after_commit() -> None:
    """`seq`, the insertion order, becomes the key; `position` may be NULL until the sequencer gives it. The
    events already there keep their positions (and seq = position). PostgreSQL's appends stop taking the log's
    lock (append_events), and sequence_events gives positions, hashes and outbox rows after the commit."""
    if not is_postgresql():  # SQLite holds the file's write lock (BEGIN IMMEDIATE) until the migration commits
        _copy_events_sqlite(sequenced_later=True)
        op.create_index("ix_events_unsequenced", "events", ["seq"], unique=False,
                        sqlite_where=sa.text("position IS NULL"))
        return
    # appends of replicas still running the code before this wait, and fail once it commits (no such function)
    op.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    op.execute("ALTER TABLE events ADD COLUMN seq bigint")
    op.execute("UPDATE events SET seq = position")
    op.execute("ALTER TABLE events ALTER COLUMN seq SET NOT NULL")
    op.execute("ALTER TABLE events ALTER COLUMN seq ADD GENERATED BY DEFAULT AS IDENTITY")
    op.execute("SELECT setval(pg_get_serial_sequence('events', 'seq'), "
               "(SELECT coalesce(max(seq), 0) + 1 FROM events), false)")
    op.execute("ALTER TABLE events DROP CONSTRAINT events_pkey")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq)")
    op.execute("ALTER TABLE events ALTER COLUMN position DROP NOT NULL")
    op.execute("ALTER TABLE events ADD CONSTRAINT uq_events_position UNIQUE (position)")
    op.execute("CREATE INDEX ix_events_unsequenced ON events (seq) WHERE position IS NULL")
    op.execute(f"DROP FUNCTION {APPEND_FUNCTION_0003_SIGNATURE}")
    op.execute(APPEND_FUNCTION_0004)
    op.execute(SEQUENCE_FUNCTION_0004)


def sequence_at_append() -> None:
    """Back to 0003: the events not yet sequenced get their positions first, then position is the key again."""
    if not is_postgresql():
        op.drop_index("ix_events_unsequenced", table_name="events")
        _copy_events_sqlite(sequenced_later=False)
        return
    op.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # every append in flight has committed or not
    op.execute(f"SELECT sequence_events({APPEND_LOCK_KEY}, 2147483647)")
    op.execute("DROP INDEX ix_events_unsequenced")
    op.execute("ALTER TABLE events DROP CONSTRAINT uq_events_position")
    op.execute("ALTER TABLE events ALTER COLUMN position SET NOT NULL")
    op.execute("ALTER TABLE events DROP CONSTRAINT events_pkey")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (position)")
    op.execute("ALTER TABLE events DROP COLUMN seq")
    op.execute("DROP FUNCTION sequence_events(integer, integer)")
    op.execute(f"DROP FUNCTION {APPEND_FUNCTION_0004_SIGNATURE}")
    op.execute(APPEND_FUNCTION_0003)
