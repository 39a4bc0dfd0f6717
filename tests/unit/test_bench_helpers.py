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


# -- CPU per process from /proc (bench.cpu) -------------------------------------------------------------------

def test_parse_stat_reads_the_name_parent_and_cpu_ticks_even_with_spaces_and_parentheses_in_the_name():
    from bench.cpu import parse_stat
    fields = ["S", "41", "42", "42", "0", "-1", "4194560", "100", "0", "0", "0", "1234", "56", "7", "8"]
    assert parse_stat("4242 (python) " + " ".join(fields)) == ("python", 41, 1290)
    assert parse_stat("7 (a (b) c) " + " ".join(fields)) == ("a (b) c", 41, 1290)


def test_parse_stat_of_this_process_agrees_with_its_own_cpu_time():
    import os
    from bench.cpu import TICKS_PER_SECOND, ticks
    spent = os.times()
    assert abs(ticks(os.getpid()) / TICKS_PER_SECOND - (spent.user + spent.system)) < 0.5
    assert ticks(2 ** 22 + 12345) is None  # no such process


def test_parse_tcp_table_gives_local_and_remote_ports_and_the_socket_inode():
    from bench.cpu import parse_tcp_table
    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 0100007F:D431 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 98765 1 0\n"
            "   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 11111 1 0\n")
    assert parse_tcp_table(text) == [(0xD431, 5432, 98765), (5432, 0, 11111)]


def test_a_window_counts_each_process_from_its_first_sample_and_a_newcomer_from_zero():
    from bench.cpu import TICKS_PER_SECOND, Window
    window = Window()
    window.add("booking", 1, 1000, opening=True)
    window.add("booking", 2, 500, opening=True)
    window.add("postgresql", 9, 70, opening=True)
    window.add("booking", 1, 1000 + TICKS_PER_SECOND, opening=False)
    window.add("booking", 2, 500 + 2 * TICKS_PER_SECOND, opening=False)
    window.add("postgresql", 10, TICKS_PER_SECOND, opening=False)  # a backend that started inside the window
    window.add("postgresql", 10, 2 * TICKS_PER_SECOND, opening=False)
    seconds = window.seconds()
    assert seconds["booking"] == 3.0
    assert seconds["postgresql"] == 2.0  # process 9 spent nothing, 10 all its two seconds


def test_cost_per_item_takes_away_the_idle_rate_over_the_windows_length():
    from bench.cpu import cost_per_item
    busy = {"booking": 3.0, "rabbitmq": 1.0, "gateway": 0.0}
    idle = {"booking": 0.1, "rabbitmq": 0.5}   # over 10 s
    cost = cost_per_item(busy, busy_seconds=20, idle=idle, idle_seconds=10, items=400)
    assert cost == {"booking": 7.0, "rabbitmq": 0.0, "gateway": 0.0}  # (3.0 - 0.2) / 400 s; never below zero


def test_pids_pass_between_processes_as_text_and_back():
    from bench.cpu import format_pids, parse_pids
    groups = {"booking": [12, 13], "queue": [14], "postgresql-x": [1]}
    assert parse_pids(format_pids(groups)) == groups
    with pytest.raises(ValueError):
        parse_pids("booking")


def test_the_burst_counts_overloaded_answers_as_shed_not_as_errors():
    booking = pytest.importorskip("bench.booking", reason="needs the bench extra (aiohttp)")
    outcomes = {"201": 90, "503 OVERLOADED": 7, "503 SERVICE_UNAVAILABLE": 1, "500": 1,
                "client error ServerDisconnectedError": 2, "409 SLOT_FULL": 3}
    assert booking.split_5xx(outcomes) == (7, 4)


def test_the_ledger_names_what_a_projection_lost_doubled_or_holds_without_a_201():
    scale = pytest.importorskip("bench.scale", reason="needs the bench extra (aiohttp)")
    answered = ["A", "B", "C"]
    assert scale.ledger(answered, {"A": 1, "B": 1, "C": 1}) == {"missing": 0, "doubled": 0, "unexpected": 0}
    assert scale.ledger(answered, {"A": 2, "C": 1, "Z": 1}) == {"missing": 1, "doubled": 1, "unexpected": 1}
    # confirmations: one per channel
    assert scale.ledger(answered, {"A": 2, "B": 1, "C": 3}, each=2) == {"missing": 1, "doubled": 1, "unexpected": 0}


def test_the_national_days_lag_is_summed_over_subscriptions_and_by_minute():
    nationalday = pytest.importorskip("bench.nationalday", reason="needs the bench extra (aiohttp)")
    summary = nationalday.lag_summary({"availability.bookings": [(5, 0.01), (70, 0.02)],
                                       "queue.bookings": [(10, 0.03), (130, 1.0)]})
    assert summary["events"] == 4 and [m["minute"] for m in summary["per_minute"]] == [0, 1, 2]
    assert summary["worst_minute_p99_ms"] == 1000.0
    assert summary["per_subscription"]["availability.bookings"]["events"] == 2
    assert summary["per_subscription"]["queue.bookings"]["max_ms"] == 1000.0


def test_the_national_days_walk_ins_go_only_to_services_that_take_them():
    nationalday = pytest.importorskip("bench.nationalday", reason="needs the bench extra (aiohttp)")
    catalogue = {"directorates": [{"branches": [
        {"id": "a", "services": {"x": {}, "y": {}}, "queue": {"walk_in_quota": {"y": 0}}},
        {"id": "b", "services": {"x": {}, "y": {}}}]}]}
    assert nationalday.walk_in_services(catalogue) == {"a": ["x"], "b": ["x", "y"]}
