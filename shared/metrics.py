"""Prometheus metrics of the event plumbing (one registry per process: /metrics serves them all)."""
from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPENDED = Counter("mawaeed_events_appended_total", "Events appended to a service's log",
                          ["service", "type"])
EVENTS_PUBLISHED = Counter("mawaeed_events_published_total", "Events confirmed by the broker", ["service"])
EVENTS_UNROUTABLE = Counter("mawaeed_events_unroutable_total",
                            "Confirmed events that no queue was bound for (returned as mandatory)",
                            ["service", "type"])
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
