"""Running a command against the event store: decide, append at the expected version, retry on conflict."""
from shared import metrics
from shared.errors import ConcurrencyError, Conflict

MAX_ATTEMPTS = 20


def retrying(service: str, command: str, decide):
    """Run `decide()` (one transaction) again after each concurrency conflict, a bounded number of times."""
    for _attempt in range(MAX_ATTEMPTS):
        try:
            return decide()
        except ConcurrencyError:
            metrics.COMMAND_RETRIES.labels(service, command).inc()
    raise Conflict("Too many requests are changing the same thing at once; please try again.", code="BUSY",
                   message_ar="هناك طلبات كثيرة على نفس الموعد في اللحظة ذاتها، يرجى المحاولة مرة أخرى.")
