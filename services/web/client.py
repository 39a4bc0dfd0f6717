"""The pages' way into the suite: its public HTTP API, called as any client calls it, with the person's token
(or the device's) and the person's address, so every rule, limit and refusal of the API applies to the pages."""
import json
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen


class ApiError(Exception):
    """The API refused (4xx) or could not be reached (5xx): the error body, in both languages."""

    def __init__(self, status: int, error: dict):
        super().__init__(error.get("message", ""))
        self.status, self.error = status, error

    @property
    def code(self) -> str:
        return self.error.get("code", "")

    @property
    def fields(self) -> dict:
        return self.error.get("fields") or {}

    def message(self, language: str) -> str:
        return self.error.get("message_ar" if language == "ar" else "message") or self.error.get("message", "")


class Api:
    def __init__(self, base_url: str, authorization: str | None = None, forwarded_for: str | None = None,
                 timeout: float = 15):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.headers = {"Accept": "application/json"}
        if authorization:
            self.headers["Authorization"] = authorization
        if forwarded_for:
            self.headers["X-Forwarded-For"] = forwarded_for

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        """The answer's JSON (None for 204); ApiError for a refusal."""
        data = json.dumps(body).encode() if body is not None else None
        request = Request(f"{self.base_url}{path}", data=data, method=method,
                          headers={**self.headers, **({"Content-Type": "application/json"} if data else {}),
                                   **(headers or {})})
        try:
            with urlopen(request, timeout=self.timeout) as answer:
                raw = answer.read()
                return json.loads(raw) if raw else None
        except HTTPError as refused:
            try:
                error = json.loads(refused.read())["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "UNAVAILABLE", "message": "The service is not answering; try again shortly.",
                         "message_ar": "الخدمة لا تستجيب حاليًا، يرجى المحاولة بعد قليل."}
            raise ApiError(refused.code, error) from None
        except (URLError, OSError):
            raise ApiError(503, {"code": "UNAVAILABLE", "message": "The service is not answering; try again shortly.",
                                 "message_ar": "الخدمة لا تستجيب حاليًا، يرجى المحاولة بعد قليل."}) from None

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: dict | None = None, **kwargs):
        return self.call("POST", path, body if body is not None else {}, **kwargs)
