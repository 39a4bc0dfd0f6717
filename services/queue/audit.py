"""Who did what at a branch on a day: the day's stream read back with each event's actor, for auditors and
managers (`GET /api/v1/audit`, `mawaeed audit`). It reads the log itself, so it shows what happened, not what a
projection made of it; it names people by their token's subject and role, never by a CPR."""
from datetime import date

from shared.clock import LOCAL
from shared.eventstore import Database
from services.queue.commands import queue_stream

# What an entry says of each event: the payload fields worth reading in an audit (never a CPR or a comment).
SHOWN = ("ticket_id", "number", "service", "counter", "lane", "kind", "priority", "reference", "recall",
         "to_service", "reason", "services", "score")


def trail(db: Database, branch: str, day: date) -> list[dict]:
    """Every event of the branch's day in order: when, what, who (None: the public or the suite itself)."""
    db.sequence()  # what was committed a moment ago gets its position first: an entry always has one
    with db.transaction() as uow:
        events = uow.store.read_stream(queue_stream(branch, day))
    return [{"at": e.occurred_at.astimezone(LOCAL).isoformat(), "position": e.position,
             "event": e.type.split(".", 1)[1], "actor": e.actor,
             "details": {k: v for k, v in e.payload.items() if k in SHOWN}} for e in events]
