#!/usr/bin/env python3
"""An example subscriber to Mawaeed's events, for another government system to copy and adapt.

It depends only on kombu and the Python standard library: copy this one file, change `handle()`, run it.

    python subscriber.py --amqp-uri amqp://user:pass@rabbit:5672/mawaeed --feed-url https://mawaeed.example \\
        --name moi-analytics --source booking --types booking.SlotBooked booking.BookingCancelled \\
        --state /var/lib/moi-analytics/booking.json

What it does, in this order (README.md explains why):
1. declares its own durable quorum queue `<name>`, bound to the topic exchange `<source>.events` with `<type>.*` for
   every wanted type (so every version arrives), and a dead-letter queue `<name>.dead-letter` behind the direct
   exchange `<name>.dlx`; from that moment on nothing published is lost, even before it consumes anything;
2. catches up from the events feed (GET /api/v1/events?service=<source>&after=<checkpoint>) page by page;
3. consumes the queue live. Every event carries its `event_id` and its `position` (the source's gap-free,
   commit-ordered sequence), so an event that arrives twice (once from the feed, once from the queue, or
   published twice) is skipped, and a live event that is not the next position is preceded by the feed's
   events in between: events are handled once each, in position order, with no gap.

The checkpoint (last position seen, and a bounded set of recently handled event ids) lives in a small JSON file,
saved after each event and before the message is acknowledged. An event `handle()` fails on is tried
`--max-attempts` times, then parked in the dead-letter queue (said on stderr) and passed over.
SIGTERM or SIGINT stop it cleanly after the event in hand.
"""
import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections import OrderedDict
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from kombu import Connection, Consumer, Exchange, Producer, Queue, binding

PAGE_SIZE = 1000  # the feed's largest page
# Quorum queues (RabbitMQ 3.10 or later) are replicated: losing a node of the cluster loses no event. The retries
# with backoff are done here, in the process; the delivery limit is the backstop for a message that kills the
# process before it could park it: after that many returns RabbitMQ parks it in the dead-letter queue itself.
DELIVERY_LIMIT = 10


# -- your code ---------------------------------------------------------------------------------------------

def handle(event: dict, origin: str) -> None:
    """Do what your system needs with one event. Replace this body with your own.

    `event` is the envelope: event_id, type ("booking.SlotBooked"), version, stream_id, stream_version,
    position, occurred_at (UTC), correlation_id, causation_id, directorate, payload. Every version of a type
    arrives here (the queue is bound to `<type>.*`), so branch on (type, version) where payloads differ.
    `origin` is "feed" (catch-up or replay) or "live" (the queue). Raise to refuse the event: it is tried
    again, then dead-lettered. It may see an event again after a crash between handling and checkpointing:
    key what you store on event_id, or keep the checkpoint in your own database in the same transaction.

    This example prints one JSON line per event: what happened and to which booking, never who it happened to
    (payloads carry personal data such as person.cpr, name, mobile and email; do not log them).
    """
    payload = event["payload"]
    line = {"event_id": event["event_id"], "type": event["type"], "version": event["version"],
            "position": event["position"], "reference": payload.get("reference"), "origin": origin}
    print(json.dumps(line, ensure_ascii=False), flush=True)


# -- the checkpoint ----------------------------------------------------------------------------------------

class Checkpoint:
    """The last position seen of one source, and the ids of recently handled events, in a JSON file."""

    def __init__(self, path: str, source: str, keep: int = 1000):
        self.path, self.source, self.keep = path, source, keep
        self.position = 0
        self.seen: OrderedDict[str, int] = OrderedDict()  # event_id -> position, oldest first
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            if state.get("source") != source:
                raise SystemExit(f"{path} holds the checkpoint of {state.get('source')!r}, not of {source!r}")
            self.position = int(state["position"])
            self.seen.update((event_id, int(position)) for event_id, position in state.get("seen", []))

    def duplicate(self, event: dict) -> bool:
        """Handled already: its id was seen, or the checkpoint is at or beyond its position (everything up
        to the checkpoint was read in full, from the feed or the queue, in position order)."""
        return event["event_id"] in self.seen or event["position"] <= self.position

    def passed(self, event_id: str | None, position: int) -> None:
        """Record that everything up to `position` is done (handled, dead-lettered or not wanted)."""
        self.position = max(self.position, position)
        if event_id is not None:
            self.seen[event_id] = position
            self.seen.move_to_end(event_id)
            while len(self.seen) > self.keep:
                self.seen.popitem(last=False)

    def rewind(self, position: int) -> None:
        """Replay: start again after `position`, forgetting the ids handled beyond it."""
        self.position = position
        for event_id in [i for i, p in self.seen.items() if p > position]:
            del self.seen[event_id]

    def save(self) -> None:
        """Write a new file and rename it over the old one: a crash leaves the old or the new, never half."""
        state = {"source": self.source, "position": self.position, "seen": [[i, p] for i, p in self.seen.items()]}
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


# -- the subscriber ----------------------------------------------------------------------------------------

class FeedUnavailable(Exception):
    pass


class Stopping(Exception):
    pass


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} subscriber: {message}", file=sys.stderr, flush=True)


class Subscriber:
    def __init__(self, args):
        self.args = args
        self._token, self._token_expires = None, 0.0
        self.types = set(args.types)
        self.source_exchange = Exchange(f"{args.source}.events", type="topic", durable=True, auto_delete=False)
        self.dlx = Exchange(f"{args.name}.dlx", type="direct", durable=True, auto_delete=False)
        self.dead_letter_key = f"{args.name}.dead-letter"
        self.dead_letter_queue = Queue(self.dead_letter_key, exchange=self.dlx, routing_key=self.dead_letter_key,
                                       durable=True, auto_delete=False, queue_arguments={
                                           "x-queue-type": "quorum",
                                           # Nothing dead-letters a dead letter: a limit that looking never reaches
                                           # (RabbitMQ 4 would otherwise drop one after 20 looks).
                                           "x-delivery-limit": 1_000_000})
        self.queue = Queue(
            args.name, bindings=[binding(self.source_exchange, routing_key=f"{t}.*") for t in sorted(self.types)],
            durable=True, auto_delete=False,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self.dlx.name,
                "x-dead-letter-routing-key": self.dead_letter_key,
                # Parked only once the dead-letter queue has it (needs reject-publish; there is no length limit).
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
                "x-delivery-limit": DELIVERY_LIMIT,
                # A second copy started by mistake waits as a standby instead of splitting the stream.
                "x-single-active-consumer": True,
            })
        self.checkpoint = Checkpoint(args.state, args.source)
        self.stopping = False
        self.counts = {"handled": 0, "duplicates": 0, "dead_lettered": 0}
        self.connection = None
        self.channel = None
        self.dead_letter_connection = None  # its own: waiting for a confirm on the consuming one would deliver
        self.in_hand = False                # the next message in the middle of this one

    # -- running -------------------------------------------------------------------------------------------
    def stop(self, signum=None, frame=None) -> None:
        self.stopping = True

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))

    def run(self) -> int:
        if self.args.from_position is not None:
            self.checkpoint.rewind(self.args.from_position)
            self.checkpoint.save()
            log(f"replaying {self.args.source} from position {self.args.from_position}")
        failures = 0
        while not self.stopping:
            try:
                self.connect()
                self.catch_up()
                log(f"caught up to position {self.checkpoint.position}; consuming {self.args.name} live")
                failures = 0
                self.consume()
            except Stopping:
                break
            except (OSError, FeedUnavailable, *self._connection_errors()) as exc:
                failures += 1
                wait = min(30.0, 0.5 * 2 ** min(failures, 6))
                log(f"{type(exc).__name__}: {exc}; trying again in {wait:.1f} s")
            finally:
                self.disconnect()  # messages not acknowledged go back to the queue, in their order
            if failures:
                self.sleep(wait)
        log(f"stopped at position {self.checkpoint.position}: handled {self.counts['handled']}, "
            f"skipped {self.counts['duplicates']} duplicates, dead-lettered {self.counts['dead_lettered']}")
        return 0

    def _connection_errors(self) -> tuple:
        probe = Connection(self.args.amqp_uri)
        return tuple(probe.connection_errors) + tuple(probe.recoverable_connection_errors)

    def connect(self) -> None:
        """Connect and declare: the queue exists and is bound before anything is read, so nothing is lost."""
        self.connection = Connection(self.args.amqp_uri, heartbeat=30, connect_timeout=10)
        self.connection.ensure_connection(max_retries=1)
        self.channel = self.connection.channel()
        try:  # only check that the source's exchange is there: that needs no permission on it
            self.source_exchange(self.channel).declare(passive=True)
        except tuple(self.connection.channel_errors) as exc:
            if getattr(exc, "code", None) != 404:
                raise
            # Nothing was ever published there yet: create it as its publisher does (this alone needs the
            # configure permission on it), so that the binding holds from now on.
            log(f"exchange {self.source_exchange.name} does not exist yet; declaring it")
            self.channel = self.connection.channel()
            self.source_exchange(self.channel).declare()
        self.dlx(self.channel).declare()
        self.dead_letter_queue(self.channel).declare()
        self.queue(self.channel).declare()

    def disconnect(self) -> None:
        connections = (self.connection, self.dead_letter_connection)
        self.connection = self.channel = self.dead_letter_connection = None
        self.in_hand = False
        for connection in connections:
            if connection is not None:
                try:
                    connection.release()
                except Exception:
                    pass

    # -- the feed -----------------------------------------------------------------------------------------
    def authorization(self) -> str:
        """The feed wants a bearer token of a subscriber whose scopes name the source (`events:booking`): this
        system's own, from the identity provider's token endpoint by the client-credentials grant, renewed a
        minute before it expires (or a fixed --token, for a trial)."""
        if self.args.token:
            return f"Bearer {self.args.token}"
        if self._token is None or time.time() > self._token_expires - 60:
            form = urlencode({"grant_type": "client_credentials", "client_id": self.args.client_id,
                              "client_secret": self.args.client_secret}).encode()
            with urlopen(Request(self.args.token_url, data=form, method="POST"), timeout=30) as response:
                granted = json.load(response)
            self._token, self._token_expires = granted["access_token"], time.time() + granted.get("expires_in", 300)
        return f"Bearer {self._token}"

    def read_feed(self, after: int, limit: int) -> list[dict]:
        query = urlencode({"service": self.args.source, "after": after, "limit": limit})
        url = f"{self.args.feed_url.rstrip('/')}/api/v1/events?{query}"
        for attempt in range(1, 6):
            try:
                with urlopen(Request(url, headers={"Authorization": self.authorization()}), timeout=30) as response:
                    return json.load(response)["events"]
            except HTTPError as exc:
                if exc.code < 500:  # our mistake (unknown service, bad parameter): retrying will not help
                    raise SystemExit(f"the events feed refused {url}: {exc.code} {exc.read()[:300]!r}")
                problem = f"{exc.code}"
            except (URLError, OSError, ValueError) as exc:
                problem = repr(exc)
            if self.stopping:
                raise Stopping
            log(f"events feed {url} answered {problem}; trying again (attempt {attempt})")
            self.sleep(min(10.0, 0.5 * 2 ** attempt))
        raise FeedUnavailable(f"the events feed at {self.args.feed_url} does not answer")

    def catch_up(self, until: int | None = None) -> None:
        """Handle the wanted events after the checkpoint from the feed, up to `until` (None: to its end)."""
        while True:
            if self.stopping:
                raise Stopping
            limit = PAGE_SIZE if until is None else min(PAGE_SIZE, until - self.checkpoint.position)
            if limit <= 0:
                return
            events = self.read_feed(self.checkpoint.position, limit)
            for event in events:
                if self.stopping:
                    raise Stopping
                if until is not None and event["position"] > until:
                    return
                if event["type"] not in self.types:
                    self.checkpoint.passed(None, event["position"])
                    continue
                if self.checkpoint.duplicate(event):
                    self.counts["duplicates"] += 1
                    continue
                if not self.attempt(event, "feed"):
                    self.dead_letter_copy(event)
                self.checkpoint.passed(event["event_id"], event["position"])
                self.checkpoint.save()
            self.checkpoint.save()  # also past the events of types nobody here wants
            if self.connection is not None:
                self.connection.heartbeat_check()
            if len(events) < limit:
                return

    # -- live ---------------------------------------------------------------------------------------------
    def consume(self) -> None:
        consumer = Consumer(self.channel, queues=[self.queue], on_message=self.on_message, no_ack=False)
        consumer.qos(prefetch_count=100)
        with consumer:
            while not self.stopping:
                try:
                    self.connection.drain_events(timeout=1)
                except socket.timeout:
                    pass
                self.connection.heartbeat_check()

    def on_message(self, message) -> None:
        assert not self.in_hand, "a message was delivered while another was in hand"
        self.in_hand = True
        try:
            self.on_event(message)
        finally:
            self.in_hand = False

    def on_event(self, message) -> None:
        try:
            event = json.loads(message.body)
            if not (isinstance(event, dict) and isinstance(event.get("event_id"), str)
                    and isinstance(event.get("type"), str) and isinstance(event.get("position"), int)):
                raise ValueError("not an event envelope")
        except ValueError as exc:
            log(f"dead-lettered a message nobody can read ({exc}): {message.body[:200]!r}")
            self.counts["dead_lettered"] += 1
            message.reject(requeue=False)
            return
        if event["type"] not in self.types:  # a binding left from an earlier --types: not ours any more
            message.ack()
            return
        if self.checkpoint.duplicate(event):
            self.counts["duplicates"] += 1
            message.ack()
            return
        if event["position"] > self.checkpoint.position + 1:
            # Positions in between are events of other types, or events whose messages are still on their
            # way: read them from the feed first, so that events are handled in position order, with no gap.
            self.catch_up(until=event["position"] - 1)
            if self.checkpoint.position < event["position"] - 1:
                raise FeedUnavailable(f"the feed does not reach position {event['position'] - 1} yet")
        handled = self.attempt(event, "live")
        self.checkpoint.passed(event["event_id"], event["position"])
        self.checkpoint.save()
        if handled:
            message.ack()
        else:
            message.reject(requeue=False)  # the queue's dead-letter exchange parks it in <name>.dead-letter

    # -- failures -----------------------------------------------------------------------------------------
    def attempt(self, event: dict, origin: str) -> bool:
        """Call handle() up to --max-attempts times; False when it never succeeded (the event is then parked)."""
        for attempt in range(1, self.args.max_attempts + 1):
            try:
                handle(event, origin)
                self.counts["handled"] += 1
                return True
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log(f"handling {event['type']} {event['event_id']} (position {event['position']}) failed, "
                    f"attempt {attempt} of {self.args.max_attempts}: {error}")
            if attempt < self.args.max_attempts:
                self.sleep(min(5.0, 0.5 * 2 ** (attempt - 1)))
            if self.stopping:
                raise Stopping  # neither handled nor parked: it comes again at the next start
        self.counts["dead_lettered"] += 1
        log(f"dead-lettered {event['type']} v{event['version']} {event['event_id']} (position "
            f"{event['position']}) into {self.dead_letter_key} after {self.args.max_attempts} attempts: {error}")
        return False

    def dead_letter_copy(self, event: dict) -> None:
        """An event read from the feed has no message to reject: publish a copy to the dead-letter queue."""
        if self.dead_letter_connection is None:
            self.dead_letter_connection = Connection(self.args.amqp_uri, connect_timeout=10,
                                                     transport_options={"confirm_publish": True})
        producer = Producer(self.dead_letter_connection.default_channel)
        producer.publish(event, exchange=self.dlx, routing_key=self.dead_letter_key, serializer="json",
                         delivery_mode=2, message_id=event["event_id"],
                         headers={"event_id": event["event_id"], "position": event["position"],
                                  "type": f"{event['type']}.v{event['version']}", "x-subscriber-origin": "feed"})


def parse_args(argv=None):
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Subscribe to one Mawaeed service's events: catch up, then live.")
    parser.add_argument("--amqp-uri", default=env("AMQP_URI"), help="the broker (env AMQP_URI)")
    parser.add_argument("--feed-url", default=env("FEED_URL"),
                        help="base URL serving /api/v1/events, e.g. https://mawaeed.example (env FEED_URL)")
    parser.add_argument("--name", default=env("SUBSCRIBER_NAME"),
                        help="this subscriber's name, also its queue's, e.g. moi-analytics (env SUBSCRIBER_NAME)")
    parser.add_argument("--source", default=env("SUBSCRIBER_SOURCE"),
                        help="the publishing service: availability, booking, queue or notifications "
                             "(env SUBSCRIBER_SOURCE)")
    parser.add_argument("--types", nargs="+", default=(env("SUBSCRIBER_TYPES") or "").split() or None,
                        help="event types without version, e.g. booking.SlotBooked booking.BookingCancelled "
                             "(env SUBSCRIBER_TYPES, space separated)")
    parser.add_argument("--state", default=env("SUBSCRIBER_STATE"),
                        help="the JSON file keeping the checkpoint (env SUBSCRIBER_STATE)")
    parser.add_argument("--from-position", type=int, default=None, metavar="N",
                        help="replay: handle again every event after position N (0: everything)")
    parser.add_argument("--token-url", default=env("OIDC_TOKEN_URL"),
                        help="the identity provider's token endpoint (env OIDC_TOKEN_URL)")
    parser.add_argument("--client-id", default=env("OIDC_CLIENT_ID"), help="this system's client (env OIDC_CLIENT_ID)")
    parser.add_argument("--client-secret", default=env("OIDC_CLIENT_SECRET"),
                        help="its secret (env OIDC_CLIENT_SECRET; never on a shared command line)")
    parser.add_argument("--token", default=env("FEED_TOKEN"),
                        help="a fixed bearer token instead of the client credentials, for a trial (env FEED_TOKEN)")
    parser.add_argument("--max-attempts", type=int, default=int(env("SUBSCRIBER_MAX_ATTEMPTS") or 3),
                        help="tries of handle() before an event is dead-lettered (default 3)")
    args = parser.parse_args(argv)
    missing = [n for n in ("amqp_uri", "feed_url", "name", "source", "types", "state") if not getattr(args, n)]
    if not args.token:
        missing += [n for n in ("token_url", "client_id", "client_secret") if not getattr(args, n)]
    if missing:
        parser.error("missing " + ", ".join("--" + n.replace("_", "-") for n in missing))
    wrong = [t for t in args.types if not t.startswith(f"{args.source}.") or t.count(".") != 1]
    if wrong:
        parser.error(f"types must be like {args.source}.SlotBooked, without version: {', '.join(wrong)}")
    if args.from_position is not None and args.from_position < 0:
        parser.error("--from-position must be 0 or more")
    if args.max_attempts < 1:
        parser.error("--max-attempts must be 1 or more")
    return args


def main(argv=None) -> int:
    subscriber = Subscriber(parse_args(argv))
    signal.signal(signal.SIGTERM, subscriber.stop)
    signal.signal(signal.SIGINT, subscriber.stop)
    return subscriber.run()


if __name__ == "__main__":
    sys.exit(main())
