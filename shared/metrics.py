"""Prometheus metrics of the event plumbing (one registry per process: /metrics serves them all)."""
from prometheus_client import Counter, Gauge, Histogram

from shared.clock import clock, parse_instant

EVENTS_APPENDED = Counter("mawaeed_events_appended_total", "Events appended to a service's log",
                          ["service", "type"])
EVENTS_PUBLISHED = Counter("mawaeed_events_published_total", "Events confirmed by the broker", ["service"])
EVENTS_UNROUTABLE = Counter("mawaeed_events_unroutable_total",
                            "Confirmed events that no queue was bound for (returned as mandatory)",
                            ["service", "type"])
# The outbox depth: events committed but not yet confirmed by the broker (also counted when the broker is down).
OUTBOX_PENDING = Gauge("mawaeed_outbox_pending", "Events in the outbox at the relay's last look", ["service"])
RELAY_ERRORS = Counter("mawaeed_relay_errors_total", "Relay batches that failed and will be retried",
                       ["service"])
EVENTS_HANDLED = Counter("mawaeed_events_handled_total", "Events a consumer applied or skipped as duplicates",
                         ["consumer", "outcome"])
HANDLER_FAILURES = Counter("mawaeed_handler_failures_total", "Failed attempts to handle an event",
                           ["consumer"])
DEAD_LETTERS = Counter("mawaeed_dead_letters_total", "Events given up on and moved to a dead-letter queue",
                       ["consumer"])
# Also what the broker moved there by itself (the delivery limit), and what waited from before a restart: looked
# at by the relay of the queue's source service (which declares that queue), once a minute at most.
DEAD_LETTERS_WAITING = Gauge("mawaeed_dead_letters_waiting",
                             "Messages in a subscription's dead-letter queue at the publisher's last look",
                             ["consumer"])
HTTP_REQUESTS = Histogram("mawaeed_http_request_seconds", "HTTP requests by route and status",
                          ["service", "route", "status"])
COMMAND_RETRIES = Counter("mawaeed_command_retries_total",
                          "Commands retried after a concurrency conflict", ["service", "command"])
GATEWAY_REQUESTS = Histogram("mawaeed_gateway_request_seconds", "HTTP requests at the gateway by upstream, route "
                             "and status", ["upstream", "route", "status"])
SHED = Counter("mawaeed_http_overloaded_total", "Requests answered 503 OVERLOADED (too many in flight)",
               ["service"])
# A subscription's lag, from what its process knows (shared/messaging.py, Lag): the source positions between the
# newest event that reached it and the last it finished with, and the age of the oldest it holds unfinished.
CONSUMER_LAG_EVENTS = Gauge("mawaeed_consumer_lag_events", "Source log positions between the newest event that "
                            "reached a subscription and the last it finished", ["consumer"])
CONSUMER_LAG_SECONDS = Gauge("mawaeed_consumer_lag_seconds", "Age of the oldest event a subscription received "
                             "and has not finished (0 when none)", ["consumer"])
NOTIFICATIONS_FAILED = Counter("mawaeed_notifications_failed", "Notifications given up on after their last "
                               "attempt", ["channel"])
NOTIFICATION_CHANNELS = ("email", "sms")

# Routes that are not a service's own: the built-ins keep their path; anything else is one bounded label.
UNMATCHED = "unmatched"


def initialise(service: str, consumers=()) -> None:
    """Give the failure counters of a service and its consumers a series at zero, so a rate or an alert on them
    works before the first failure."""
    RELAY_ERRORS.labels(service)
    SHED.labels(service)
    for consumer in consumers:
        HANDLER_FAILURES.labels(consumer)
        DEAD_LETTERS.labels(consumer)
    if service == "notifications":
        for channel in NOTIFICATION_CHANNELS:
            NOTIFICATIONS_FAILED.labels(channel)


class ConsumerLag:
    """How far a subscription is behind, from what its own process knows (in both modes, so no call to the source
    at a scrape): `head`, the highest source position that reached it (a live message or the catch-up), against
    `done`, the highest it finished (applied, skipped as a duplicate or dead-lettered). Positions count the
    source's other event types too, so the events behind are an upper bound; and what still waits in the broker
    beyond the prefetch shows only through the age of the oldest event held unfinished."""

    def __init__(self, consumer: str, done: int = 0):
        self.head = self.done = done
        self.held = {}  # position -> occurred_at of the events received and not finished
        CONSUMER_LAG_EVENTS.labels(consumer).set_function(lambda: max(0, self.head - self.done))
        CONSUMER_LAG_SECONDS.labels(consumer).set_function(self.seconds)

    def received(self, body) -> None:
        try:
            position, occurred_at = int(body["position"]), parse_instant(body["occurred_at"])
        except Exception:  # a poison message: dead-lettered without a position
            return
        self.head = max(self.head, position)
        self.held.setdefault(position, occurred_at)

    def finished(self, body) -> None:
        position = body.get("position") if isinstance(body, dict) else None
        if isinstance(position, int):
            self.held.pop(position, None)
            self.done = max(self.done, position)

    def seconds(self) -> float:
        oldest = min(self.held.values(), default=None)
        return max(0.0, (clock.now() - oldest).total_seconds()) if oldest else 0.0
