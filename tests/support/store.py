"""Events as a consumer gets them: with the positions the sequencer gave them after the commit."""
from dataclasses import replace

import sqlalchemy as sa


def sequenced(db, events: list) -> list:
    """`events` just appended to `db` and committed, once the sequencer has run (as the relay runs it after every
    commit on PostgreSQL; SQLite's are numbered as they are appended), with the positions it gave them."""
    db.sequence()
    table = db.tables["events"]
    with db.engine.connect() as conn:
        given = dict(conn.execute(sa.select(table.c.event_id, table.c.position)
                                  .where(table.c.event_id.in_([e.event_id for e in events]))).all())
    assert all(e.position in (None, given[e.event_id]) for e in events)  # SQLite's, given at once, are the same
    return [replace(e, position=given[e.event_id]) for e in events]
