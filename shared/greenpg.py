"""psycopg2 under eventlet: a query's wait lets the other greenlets run, except while holding a log's append lock.

Every append to a service's log takes one PostgreSQL lock until its transaction commits (shared/eventstore.py). If the
greenlet holding it yielded while waiting for the database, the lock would stay held until the hub came back to
it, behind every other request of the process, and every writer would queue for that long. So from taking the
lock to the commit, that one greenlet waits on its socket without yielding: the process pauses for two short
round trips, and the lock is held for only those. Everyone else's waits yield as usual (psycogreen), and the
holder itself yields once a wait outlasts BLOCK_AT_MOST_SECONDS, so the process never hangs on a lock that another
of its greenlets holds.
"""
import psycopg2
from greenlet import getcurrent
from psycopg2 import extensions

_select = None  # the unpatched select module, once patch() ran
_yielding_wait = None  # psycogreen's wait callback
_holder = None  # the greenlet between taking its log's append lock and its commit
# A wait longer than this is not a round trip but a wait for a lock, perhaps one another greenlet of this process
# holds and can release only if it runs: then the holder yields after all, rather than hang the process.
BLOCK_AT_MOST_SECONDS = 0.05


def patch() -> None:
    """Make psycopg2 cooperative (eventlet is imported here, not when the store is: tools need no eventlet)."""
    global _select, _yielding_wait
    from eventlet import patcher
    from psycogreen.eventlet import eventlet_wait_callback
    _select, _yielding_wait = patcher.original("select"), eventlet_wait_callback
    extensions.set_wait_callback(_wait)


def hold_until_commit() -> None:
    """The current greenlet is about to take an append lock: it waits without yielding until release()."""
    global _holder
    _holder = getcurrent()


def release() -> None:
    global _holder
    if _holder is getcurrent():
        _holder = None


def _wait(conn, timeout=None):
    if _holder is None or _holder is not getcurrent():
        return _yielding_wait(conn)
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        if state == extensions.POLL_READ:
            ready = _select.select([conn.fileno()], [], [], BLOCK_AT_MOST_SECONDS)[0]
        elif state == extensions.POLL_WRITE:
            ready = _select.select([], [conn.fileno()], [], BLOCK_AT_MOST_SECONDS)[1]
        else:
            raise psycopg2.OperationalError(f"bad result from poll: {state!r}")
        if not ready:  # waiting on something (a row another greenlet of ours holds?): let the others run
            return _yielding_wait(conn)
