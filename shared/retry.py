"""The one retry of the suite's commands: decide, append at the expected version, and decide again on a conflict."""
from shared import metrics
from shared.errors import ConcurrencyError, Conflict

MAX_ATTEMPTS = 20


def retrying(service: str, command: str, decide, attempts: int = MAX_ATTEMPTS):
    """Run `decide()` (one transaction) again after each concurrency conflict, a bounded number of times; then
    409 BUSY."""
    for _attempt in range(attempts):
        try:
            return decide()
        except ConcurrencyError:
            metrics.COMMAND_RETRIES.labels(service, command).inc()
    raise Conflict("Too many requests are changing the same thing at once; please try again.", code="BUSY",
                   message_ar="هناك طلبات كثيرة على نفس الموعد في اللحظة ذاتها، يرجى المحاولة مرة أخرى.")
