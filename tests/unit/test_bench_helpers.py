"""The bench's own helpers: the thread runner of bench.baselines and the append plan of bench.peer."""
import time

import pytest

from bench.baselines import run_threads


def test_run_threads_counts_every_step_until_each_thread_has_nothing_left():
    left = [3, 5]

    def setup(i):
        def step():
            if not left[i]:
                return False
            left[i] -= 1
        return step, None

    result = run_threads("test", 2, setup, total=8)
    assert result["ops"] == 8 and result["concurrency"] == 2 and result["p50_ms"] is not None


def test_run_threads_stops_after_its_seconds_and_closes_every_thread():
    closed = []

    def setup(i):
        # sleep: the test suite runs under eventlet, where a thread that never waits never lets another run
        return (lambda: time.sleep(0.001)), (lambda: closed.append(i))

    result = run_threads("test", 3, setup, seconds=0.2)
    assert result["ops"] > 0 and sorted(closed) == [0, 1, 2]


def test_run_threads_raises_what_a_thread_raised():
    def setup(i):
        if i == 1:
            raise ValueError("no connection")
        return (lambda: time.sleep(0.001)), None

    with pytest.raises(ValueError, match="no connection"):
        run_threads("test", 2, setup, seconds=5)


def test_peer_plan_gives_each_stream_to_one_thread_with_its_versions_in_order():
    peer = pytest.importorskip("bench.peer", reason="needs the bench extra (eventsourcing)")
    work = peer.plan(events=200, concurrency=3)
    assert sorted(n for mine in work for _, _, n in mine) == list(range(200))
    owners, versions = {}, {}
    for thread, mine in enumerate(work):
        for stream, expected, _ in mine:
            assert owners.setdefault(stream, thread) == thread
            assert versions.get(stream, 0) == expected  # appended in order: no append can conflict
            versions[stream] = expected + 1
    assert len(versions) == 20 and set(versions.values()) == {10}
