"""psycopg2 under eventlet: a query's wait lets the other greenlets run, except while holding a log's append lock.

Every append to a service's log takes one PostgreSQL lock until its transaction commits (shared/store.py). If the
greenlet holding it yielded while waiting for the database, the lock would stay held until the hub came back to
it, behind every other request of the process, and every writer would queue for that long. So from taking the
lock to the commit, that one greenlet waits on its socket without yielding: the process pauses for two short
round trips, and the lock is held for only those. Everyone else's waits yield as usual (psycogreen), so a
greenlet of this process never blocks the process waiting for a lock another greenlet of it holds.
"""
import psycopg2
from greenlet import getcurrent
from psycopg2 import extensions

_select = None  # the unpatched select module, once patch() ran
_yielding_wait = None  # psycogreen's wait callback
_holder = None  # the greenlet between taking its log's append lock and its commit


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
            _select.select([conn.fileno()], [], [])
        elif state == extensions.POLL_WRITE:
            _select.select([], [conn.fileno()], [])
        else:
            raise psycopg2.OperationalError(f"bad result from poll: {state!r}")
