"""`mawaeed dead-letters list|show|replay|discard`: what waits in the `<subscription>.dead-letter` queues.

It speaks AMQP 0-9-1 only (kombu), not the management API, so it works on any RabbitMQ the suite runs on. A
dead-letter queue has no consumer: this reads it with basic.get without acknowledging, then acknowledges what it
replayed or discarded and gives the rest back by closing its channel. RabbitMQ refuses basic.get on a queue with
a single active consumer, which is why only the dead-letter queues are read this way.

- replay publishes a message back on its subscription's queue (through the default exchange, so no other
  subscriber sees it twice), waits for the broker's confirm, and only then acknowledges the dead letter: a crash
  in between leaves a copy in both, and the consumer drops the second as a duplicate of its event_id.
- discard appends a record to MAWAEED_DATA_DIR/dead-letters/discarded.jsonl (when, by whom, why, the event's id,
  type, position and error, its body with the personal fields masked), logs a line, and only then acknowledges.
  A file rather than a table: the dead letters belong to no one service's database, and a JSON Lines file is read
  with anything. The event itself is not lost: it stays in its publisher's log (find it by id or position).
  A Prometheus counter would live in this short process that nothing scrapes; the gauge
  `mawaeed_dead_letters_waiting` (the relays') goes down instead.
"""
import getpass
import hashlib
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from shared import topology
from shared.masking import PERSONAL_FIELDS, mask_cpr, mask_email, mask_phone

log = logging.getLogger("mawaeed.dead_letters")

EMBEDDED = ("the embedded mode (AMQP_URI unset or memory://) has no dead letters another process can see: its "
            "broker lives in the memory of the `mawaeed run` process. That process logs each event it gives up on "
            "(\"gave up on an event\"), and every event stays in its publisher's log (mawaeed export, the events "
            "feed). Set AMQP_URI to the RabbitMQ of the distributed mode to use this command.")


class Refused(Exception):
    """A one-line reason the command cannot go on (exit status 2)."""


# -- parsing -----------------------------------------------------------------------------------------------

def register(sub) -> None:
    """Add `dead-letters` and its four commands to the `mawaeed` parser."""
    p = sub.add_parser("dead-letters", help="list, show, replay or discard the events consumers gave up on (RabbitMQ)")
    actions = p.add_subparsers(dest="dead_letters_command", required=True)
    names = ", ".join(s.name for s in topology.durable_subscriptions())
    for name, text in (("list", "count and list every dead letter (all queues, or --queue)"),
                       ("show", "one dead letter in full, personal fields masked unless --clear"),
                       ("replay", "put dead letters back on their subscription's queue, once the cause is fixed"),
                       ("discard", "drop dead letters for good, recording why (--reason)")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--queue", help=f"a subscription ({names}) or its `.dead-letter` queue")
        a.add_argument("--id", dest="event_id", help="only the dead letter of this event id")
        if name == "show":
            a.add_argument("--clear", action="store_true", help="show CPR, names and contacts as they are")
        if name == "discard":
            a.add_argument("--reason", required=True, help="why it is dropped (kept in the discard record)")
        a.set_defaults(func=main)


def subscriptions_of(queue: str | None) -> list:
    """The subscriptions `--queue` names (all durable ones without it); Refused for an unknown name."""
    durable = topology.durable_subscriptions()
    if queue is None:
        return durable
    name = queue.removesuffix(".dead-letter")
    chosen = [s for s in durable if s.name == name]
    if not chosen:
        raise Refused(f"no dead-letter queue for {queue!r}; choose from {', '.join(s.name for s in durable)}")
    return chosen


def check(args) -> None:
    if args.dead_letters_command in ("show", "replay", "discard") and not (args.queue or args.event_id):
        raise Refused("say which: --queue Q (every dead letter of Q) and/or --id EVENT_ID")
    if args.dead_letters_command == "show" and not args.event_id:
        raise Refused("show wants --id EVENT_ID (list gives the ids)")
    if args.dead_letters_command == "discard" and not args.reason.strip():
        raise Refused("--reason must say why")


# -- what a dead letter says ---------------------------------------------------------------------------------

def mask_personal(value, key: str | None = None):
    """The body with every personal field (CPR, name, contacts, a notification's recipient) masked."""
    if isinstance(value, dict):
        return {k: mask_personal(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_personal(v, key) for v in value]
    if not isinstance(value, str) or key not in (*PERSONAL_FIELDS, "to"):
        return value
    if key == "cpr":
        return mask_cpr(value)
    if key == "email" or (key == "to" and "@" in value):
        return mask_email(value)
    if key in ("mobile", "to"):
        return mask_phone(value)
    return f"{value[:1]}***"  # a name


def decode(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def summary(message, queue: str) -> dict:
    """What `list` says of one dead letter: from its headers, else from its envelope."""
    headers = message.headers or {}
    body = decode(message.body)
    envelope = body if isinstance(body, dict) else {}
    deaths = headers.get("x-death") or [{}]
    error = headers.get("x-error")
    if error is None and headers.get("x-first-death-reason") == "delivery_limit":
        error = ("delivery limit reached: the consumer stopped (crashed, was killed or restarted) while holding it "
                 f"{topology.DELIVERY_LIMIT} times")
    elif error is None:
        error = headers.get("x-first-death-reason") or "(no error recorded)"
    dead_at = headers.get("x-dead-lettered-at") or deaths[0].get("time")
    wire_type = headers.get("type") or (f"{envelope['type']}.v{envelope.get('version')}" if "type" in envelope
                                        else None)
    return {
        "queue": queue,
        "event_id": headers.get("event_id") or message.properties.get("message_id") or envelope.get("event_id"),
        "type": wire_type,
        "position": headers.get("position", envelope.get("position")),
        "occurred_at": envelope.get("occurred_at"),
        "dead_lettered_at": dead_at.isoformat() if hasattr(dead_at, "isoformat") else dead_at,
        "consumer": headers.get("x-consumer") or headers.get("x-first-death-queue") or queue.removesuffix(".dead-letter"),
        "error": error,
    }


def in_full(message, queue: str, clear: bool) -> dict:
    body = decode(message.body)
    return {
        **summary(message, queue),
        "properties": {k: v for k, v in message.properties.items() if k != "application_headers"},
        "headers": json.loads(json.dumps(message.headers or {}, default=str)),
        "body": (body if clear else mask_personal(body)) if body is not None
        else f"(not JSON, {len(message.body)} bytes)",
    }


# -- the broker ----------------------------------------------------------------------------------------------

def connect(amqp_uri: str, transport_options: dict | None = None):
    from kombu import Connection
    if amqp_uri.startswith("memory"):
        raise Refused(EMBEDDED)
    conn = Connection(amqp_uri, connect_timeout=5, transport_options=transport_options or {})
    try:
        conn.connect()
    except Exception as exc:  # refused, unknown host, wrong credentials or vhost: all end here, in one line
        conn.release()
        raise Refused(f"cannot reach the broker at {conn.as_uri()}: {type(exc).__name__}: {exc}".splitlines()[0])
    return conn


def browse(conn, queue: str):
    """(channel, messages): every message in `queue` when we looked, held unacknowledged on `channel`; closing
    the channel gives back whatever was not acknowledged. None for a queue nobody declared yet."""
    from kombu import Queue
    channel = conn.channel()
    try:
        waiting = channel.queue_declare(queue, passive=True).message_count  # classic or quorum: any arguments
    except conn.channel_errors as exc:
        if getattr(exc, "code", None) != 404:
            raise
        return None, None
    messages = []
    # Only as many as were there: a message given back (or arriving) meanwhile is left for the next run.
    for _ in range(waiting):
        message = Queue(queue, no_declare=True)(channel).get(no_ack=False)
        if message is None:
            break
        messages.append(message)
    return channel, messages


def close(channel) -> None:
    if channel is not None:
        channel.close()  # the broker gives back every message not acknowledged on it


def discard_log(config: dict) -> Path:
    return Path(config.get("MAWAEED_DATA_DIR") or "./var") / "dead-letters" / "discarded.jsonl"


def record_discard(path: Path, message, queue: str, reason: str) -> dict:
    body = decode(message.body)
    record = {
        "discarded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "by": getpass.getuser(),
        "reason": reason,
        **summary(message, queue),
        "body": mask_personal(body) if body is not None else None,
        "body_sha256": hashlib.sha256(message.body if isinstance(message.body, bytes)
                                      else str(message.body).encode("utf-8")).hexdigest(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())  # the record is on disk before the dead letter is gone
    return record


def replay_one(producer, message, subscription) -> None:
    headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
    headers["x-replayed-at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    properties = {k: message.properties[k] for k in ("message_id",) if message.properties.get(k)}
    producer.publish(message.body, exchange="", routing_key=subscription.name, headers=headers, delivery_mode=2,
                     content_type=message.content_type or "application/json",
                     content_encoding=message.content_encoding or "utf-8", **properties)


# -- the commands --------------------------------------------------------------------------------------------

def main(args, config: dict | None = None) -> int:
    from shared.config import nameko_config
    config = config or nameko_config()
    try:
        check(args)
        subscriptions = subscriptions_of(args.queue)
        conn = connect(config["AMQP_URI"])
    except Refused as exc:
        print(f"mawaeed dead-letters: {exc}", file=sys.stderr)
        return 2
    with conn:
        return COMMANDS[args.dead_letters_command](args, conn, subscriptions, config)


def _matching(messages, queue: str, event_id: str | None) -> list:
    return [m for m in messages if event_id is None or summary(m, queue)["event_id"] == event_id]


def list_(args, conn, subscriptions, config) -> int:
    total = 0
    for subscription in subscriptions:
        queue = subscription.dead_letter_name
        channel, messages = browse(conn, queue)
        try:
            if messages is None:
                print(f"{queue}: not declared yet (its publisher has not started)")
                continue
            shown = _matching(messages, queue, args.event_id)
            total += len(shown)
            print(f"{queue}: {len(messages)} waiting")
            for message in shown:
                s = summary(message, queue)
                print(f"  {s['event_id']}  {s['type']}  position {s['position']}  occurred {s['occurred_at']}  "
                      f"dead-lettered {s['dead_lettered_at']}  by {s['consumer']}: {s['error']}")
        finally:
            close(channel)
    print(f"{total} dead letters" + (f" of event {args.event_id}" if args.event_id else ""))
    return 0


def show(args, conn, subscriptions, config) -> int:
    found = 0
    for subscription in subscriptions:
        queue = subscription.dead_letter_name
        channel, messages = browse(conn, queue)
        try:
            for message in _matching(messages or [], queue, args.event_id):
                print(json.dumps(in_full(message, queue, args.clear), ensure_ascii=False, indent=2, default=str))
                found += 1
        finally:
            close(channel)
    if not found:
        print(f"no dead letter of event {args.event_id}", file=sys.stderr)
    return 0 if found else 1


def replay(args, conn, subscriptions, config) -> int:
    from kombu import Connection, Producer
    replayed = 0
    # Its own connection: kombu's confirm_publish makes each publish wait for the broker's ack (or raise on nack).
    with Connection(conn.as_uri(include_password=True), connect_timeout=5,
                    transport_options={"confirm_publish": True}) as confirmed:
        producer = Producer(confirmed.channel())
        for subscription in subscriptions:
            queue = subscription.dead_letter_name
            channel, messages = browse(conn, queue)
            try:
                chosen = _matching(messages or [], queue, args.event_id)
                if chosen and browse_exists(conn, subscription.name) is False:
                    print(f"{subscription.name} does not exist: start its consumer first; nothing replayed from "
                          f"{queue}", file=sys.stderr)
                    continue
                for message in chosen:
                    replay_one(producer, message, subscription)
                    message.ack()  # only once the broker confirmed the copy
                    replayed += 1
                    log.info("replayed %s from %s to %s", summary(message, queue)["event_id"], queue,
                             subscription.name)
            finally:
                close(channel)
    print(f"replayed {replayed} dead letters" + (" (the consumer drops any it already applied)" if replayed else ""))
    return 0 if replayed else 1


def browse_exists(conn, queue: str) -> bool:
    channel = conn.channel()
    try:
        channel.queue_declare(queue, passive=True)
        return True
    except conn.channel_errors as exc:
        if getattr(exc, "code", None) != 404:
            raise
        return False
    finally:
        if channel.is_open:
            channel.close()


def discard(args, conn, subscriptions, config) -> int:
    path = discard_log(config)
    discarded = 0
    for subscription in subscriptions:
        queue = subscription.dead_letter_name
        channel, messages = browse(conn, queue)
        try:
            for message in _matching(messages or [], queue, args.event_id):
                record = record_discard(path, message, queue, args.reason)
                message.ack()  # after the record is on disk
                discarded += 1
                log.warning("discarded dead letter %s (%s) of %s: %s", record["event_id"], record["type"],
                            queue, args.reason)
        finally:
            close(channel)
    print(f"discarded {discarded} dead letters; recorded in {path}")
    return 0 if discarded else 1


COMMANDS = {"list": list_, "show": show, "replay": replay, "discard": discard}
