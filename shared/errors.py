"""Errors a caller can act on. Each carries its HTTP status and a stable machine-readable code."""


class DomainError(Exception):
    status = 409
    code = "RULE_REFUSED"
    headers: dict = {}  # extra answer headers (Retry-After, WWW-Authenticate, ...)

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None,
                 message_ar: str | None = None):
        super().__init__(message)
        self.message = message
        self.message_ar = message_ar
        if code:
            self.code = code
        self.fields = fields or {}

    def as_body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.message_ar:
            error["message_ar"] = self.message_ar
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


class InvalidInput(DomainError):
    status, code = 422, "INVALID_INPUT"


class BadRequest(DomainError):
    status, code = 400, "BAD_REQUEST"


class PayloadTooLarge(DomainError):
    status, code = 413, "BODY_TOO_LARGE"


class NotFound(DomainError):
    status, code = 404, "NOT_FOUND"


class Conflict(DomainError):
    """A rule refused the request (slot full, limit reached, ...)."""
    status = 409


class ConcurrencyError(Exception):
    """A stream was appended to at a stale version: reload and decide again."""


class ContractError(Exception):
    """An event does not match its contract."""
