"""The raw limits the suite is measured against: PostgreSQL commits and RabbitMQ confirmed publishes and acks.

`python -m bench.baselines [--concurrency N] [--seconds S] [--consumers C]`. Plain threads, no eventlet: this is
what the database and the broker give a client that does nothing else, one commit or one confirm at a time.
"""
import argparse
import json
import os
import socket
import threading
import time

import psycopg2
from kombu import Connection, Consumer, Producer, Queue
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import AMQP_URL, PG_URL, emit, percentiles_ms

# About the size of one of the suite's events on the wire.
BODY = json.dumps({"type": "bench.Message", "payload": {"text": "x" * 440}}).encode()


def watch(label: str, total: float, done, busy) -> None:
    """A progress bar on stderr, polling `done()` until `busy()` is false."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:>9,.0f}/{task.total:,.0f}"),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        while busy():
            bar.update(task, completed=min(done(), total))
            time.sleep(0.2)
        bar.update(task, completed=min(done(), total))


def run_threads(label: str, n: int, setup, seconds: float | None = None, total: int | None = None) -> dict:
    """Run `setup(i) -> (step, close)` in n threads, then `step()` in a loop, each call timed as one operation.

    Every thread connects before the clock starts (a barrier). The loop ends after `seconds`, or when `step()`
    returns False (nothing left for that thread). Returns ops, seconds, ops_per_s and latency percentiles.
    """
    stop, barrier = threading.Event(), threading.Barrier(n + 1)
    latencies: list[list[float]] = [[] for _ in range(n)]
    errors: list[BaseException] = []

    def target(i: int) -> None:
        close = None
        try:
            step, close = setup(i)
            barrier.wait()
            mine = latencies[i]
            while not stop.is_set():
                started = time.perf_counter()
                if step() is False:
                    break
                mine.append(time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
            barrier.abort()
            stop.set()
        finally:
            if close:
                close()

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    if seconds is not None:  # the bar shows time; the threads stop when it is up
        watch(label, seconds, lambda: time.perf_counter() - started,
              lambda: time.perf_counter() - started < seconds and not stop.is_set())
        stop.set()
    else:
        watch(label, total, lambda: sum(map(len, latencies)), lambda: any(t.is_alive() for t in threads))
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    merged = [x for mine in latencies for x in mine]
    return {"ops": len(merged), "seconds": round(elapsed, 2), "ops_per_s": round(len(merged) / elapsed, 1),
            "concurrency": n, **percentiles_ms(merged)}


def postgres_insert_commit(concurrency: int, seconds: float) -> dict:
    """One row per transaction, each thread on its own connection: the commit (WAL flush) rate."""
    schema = f"bench_raw_{os.getpid()}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
        cur.execute(f'CREATE TABLE "{schema}".rows (id bigserial PRIMARY KEY, body text NOT NULL)')
    body = BODY.decode()

    def setup(_i):
        conn = psycopg2.connect(PG_URL)  # autocommit off: every INSERT opens a transaction, COMMIT ends it
        cur = conn.cursor()

        def step():
            cur.execute(f'INSERT INTO "{schema}".rows (body) VALUES (%s)', (body,))
            conn.commit()
        return step, conn.close

    try:
        result = run_threads("postgres insert+commit", concurrency, setup, seconds=seconds)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
    return {**result, "synchronous_commit": _pg_setting("synchronous_commit"), "fsync": _pg_setting("fsync")}


def _pg_setting(name: str) -> str:
    with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(f"SHOW {name}")
        return cur.fetchone()[0]


def rabbitmq_publish_confirmed(concurrency: int, seconds: float, queue: Queue) -> dict:
    """Persistent messages to a durable queue, each publish waiting for the broker's confirm (as the relay does)."""
    def setup(_i):
        conn = Connection(AMQP_URL, transport_options={"confirm_publish": True})
        producer = Producer(conn.channel())

        def step():  # with confirm_publish, publish() returns once the broker has confirmed
            producer.publish(BODY, exchange="", routing_key=queue.name, delivery_mode=2,
                             content_type="application/json", content_encoding="utf-8")
        return step, conn.release

    return run_threads("rabbitmq publish (confirmed)", concurrency, setup, seconds=seconds)


def rabbitmq_consume_ack(consumers: int, prefetch: int, queue: Queue, expected: int) -> dict:
    """Drain the queue just filled: `consumers` connections, each acking every message on its own."""
    acked = [0] * consumers
    last_ack = [0.0]
    started = time.perf_counter()

    def consume(i: int) -> None:
        with Connection(AMQP_URL) as conn:
            channel = conn.channel()

            def on_message(_body, message):
                message.ack()
                acked[i] += 1
                last_ack[0] = time.perf_counter()

            with Consumer(channel, queues=[queue], callbacks=[on_message], accept=["json"], prefetch_count=prefetch):
                while sum(acked) < expected:
                    try:
                        conn.drain_events(timeout=2)
                    except socket.timeout:
                        break  # the queue is empty (or held by the others' prefetch): stop waiting

    threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(consumers)]
    for thread in threads:
        thread.start()
    watch("rabbitmq consume+ack", expected, lambda: sum(acked), lambda: any(t.is_alive() for t in threads))
    elapsed = (last_ack[0] or time.perf_counter()) - started  # not counting the final idle wait
    total = sum(acked)
    return {"ops": total, "expected": expected, "seconds": round(elapsed, 2),
            "ops_per_s": round(total / elapsed, 1) if elapsed > 0 else None,
            "consumers": consumers, "prefetch": prefetch, "ack": "one basic.ack per message"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--consumers", type=int, default=1,
                        help="consumers draining the queue (1: like one service instance's queue consumer)")
    parser.add_argument("--prefetch", type=int, default=100)
    args = parser.parse_args(argv)

    result = {"postgres_insert_commit": postgres_insert_commit(args.concurrency, args.seconds)}
    queue = Queue(f"bench-raw-{os.getpid()}", routing_key=f"bench-raw-{os.getpid()}", durable=True,
                  auto_delete=False)
    with Connection(AMQP_URL) as admin:
        queue(admin.channel()).declare()
        try:
            published = rabbitmq_publish_confirmed(args.concurrency, args.seconds, queue)
            result["rabbitmq_publish_confirmed"] = {**published, "message_bytes": len(BODY), "persistent": True}
            result["rabbitmq_consume_ack"] = rabbitmq_consume_ack(args.consumers, args.prefetch, queue,
                                                                  published["ops"])
        finally:
            queue(admin.channel()).delete()
    emit(result)


if __name__ == "__main__":
    main()
