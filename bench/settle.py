"""Until the suite has done everything the load asked of it: each subscription has applied the last event of its
source it binds (shared/topology.py), and notifications has sent the messages due now (confirmations, notices).
A CPU window is closed only then, so what the consumers spend after the last 201 is counted too."""
import time

import sqlalchemy as sa

from bench.common import PG_URL
from shared.topology import SUBSCRIPTIONS


def subscriptions_among(services) -> list:
    """The durable subscriptions whose subscriber and source both run in the suite."""
    return [s for s in SUBSCRIPTIONS.values()
            if not s.live_only and s.source in services and s.name.split(".")[0] in services]


def behind(conn, prefix: str, services) -> dict[str, int]:
    """Per subscription, how many of its source's events (of the types it binds) it has not applied yet; and
    under "notifications.due", the messages scheduled for now or earlier and not sent."""
    late = {}
    for sub in subscriptions_among(services):
        types = list(sub.types)
        applied = conn.execute(sa.text(
            f'SELECT coalesce(max(position), 0) FROM "{prefix}{sub.name.split(".")[0]}".processed_events '
            "WHERE consumer = :c"), {"c": sub.name}).scalar()
        waiting = conn.execute(sa.text(
            f'SELECT count(*) FROM "{prefix}{sub.source}".events '
            "WHERE (position > :p OR position IS NULL) AND type = ANY(:t)"),  # committed, not yet sequenced too
            {"p": applied, "t": types}).scalar()
        if waiting:
            late[sub.name] = waiting
    if "notifications" in services:
        due = conn.execute(sa.text(  # reminders wait for their day: every other message is due at once
            f'SELECT count(*) FROM "{prefix}notifications".messages '
            "WHERE status = 'scheduled' AND kind <> 'reminder'")).scalar()
        if due:
            late["notifications.due"] = due
    return late


def wait_caught_up(prefix: str, services, timeout: float = 300, poll: float = 0.2) -> dict:
    """Wait until nothing is behind; {} when caught up, else what was still behind at the timeout. A database
    refusing a connection for a moment (a shared server at its max_connections) is waited out too."""
    engine = sa.create_engine(PG_URL, pool_size=1)
    deadline = time.monotonic() + timeout
    late = {"not read": "the database refused every connection"}
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    late = behind(conn, prefix, services)
            except sa.exc.OperationalError:
                late = {"not read": "the database refused the connection"}
            if not late:
                return late
            time.sleep(poll)
        return late
    finally:
        engine.dispose()
