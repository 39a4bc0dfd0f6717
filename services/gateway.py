"""The gateway of the distributed mode: the public API at one base URL, in front of one process per service.

It only routes: each path belongs to exactly one service (the events feed to the one its `service` parameter
names); /health answers for all of them. In the embedded mode no gateway is needed: every service shares
one server in one process.
"""
import http.client
import json
import logging
import re
from urllib.parse import parse_qs, urlsplit

import eventlet
from eventlet import wsgi
from eventlet.pools import Pool

from shared.web import MAX_BODY_BYTES

log = logging.getLogger(__name__)

ROUTES = [
    (re.compile(r"^/api/v1/(directorates|branches|availability)/?$"), "availability"),
    (re.compile(r"^/api/v1/bookings(/[^/]+(/(cancel|reschedule))?)?/?$"), "booking"),
    (re.compile(r"^/api/v1/branches/[^/]+/(check-ins|queue|close-day|counters/[^/]+/(open|close|call-next))$"),
     "queue"),
    (re.compile(r"^/api/v1/tickets/[^/]+/(recall|served|no-show|transfer)$"), "queue"),
    (re.compile(r"^/api/v1/feedback$|^/feedback/[^/]+$"), "queue"),
    (re.compile(r"^/api/v1/notifications$"), "notifications"),
]


def route(path: str, query: str) -> str | None:
    if path == "/api/v1/events":
        return parse_qs(query).get("service", [None])[0]
    return next((service for pattern, service in ROUTES if pattern.match(path)), None)


def _json(start_response, status: str, body: dict):
    data = json.dumps(body, ensure_ascii=False).encode()
    start_response(status, [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


class Upstream:
    """Keep-alive connections to one service."""

    def __init__(self, url: str, size: int = 50):
        parts = urlsplit(url)
        self.url = url
        self.pool = Pool(max_size=size, create=lambda: http.client.HTTPConnection(parts.hostname, parts.port,
                                                                                     timeout=30))

    def request(self, method: str, target: str, body: bytes | None, headers: dict):
        for attempt in (1, 2):  # a kept-alive connection the service closed meanwhile gets one fresh retry
            conn = self.pool.get()
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self.pool.put(conn)
                return response.status, response.reason, response.getheaders(), payload
            except (http.client.HTTPException, OSError):
                conn.close()
                self.pool.put(http.client.HTTPConnection(conn.host, conn.port, timeout=30))
                if attempt == 2:
                    raise


class Gateway:
    def __init__(self, upstreams: dict[str, str]):
        self.upstreams = {name: Upstream(url) for name, url in upstreams.items()}

    def __call__(self, environ, start_response):
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if path == "/health":
            return self.health(start_response)
        service = route(path, query)
        if service not in self.upstreams:
            code = "UNKNOWN_SERVICE" if path == "/api/v1/events" else "NOT_FOUND"
            return _json(start_response, "404 Not Found", {"error": {
                "code": code, "message": "Nothing is here.", "message_ar": "المورد المطلوب غير موجود."}})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            return _json(start_response, "413 Request Entity Too Large", {"error": {
                "code": "BODY_TOO_LARGE", "message": f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                "message_ar": "حجم الطلب أكبر من المسموح."}})
        body = environ["wsgi.input"].read(length) if length else None
        headers = {"Content-Type": environ.get("CONTENT_TYPE") or "application/json"}
        target = path + (f"?{query}" if query else "")
        try:
            status, reason, response_headers, payload = self.upstreams[service].request(
                environ["REQUEST_METHOD"], target, body, headers)
        except (http.client.HTTPException, OSError) as exc:
            log.warning("%s is not answering: %s", service, exc)
            return _json(start_response, "503 Service Unavailable", {"error": {
                "code": "SERVICE_UNAVAILABLE", "message": f"The {service} service is not answering; try again shortly.",
                "message_ar": "الخدمة لا تستجيب حاليًا، يرجى المحاولة بعد قليل."}})
        keep = [(k, v) for k, v in response_headers if k.lower() in ("content-type", "content-length")]
        start_response(f"{status} {reason}", keep)
        return [payload]

    def health(self, start_response):
        services, healthy = {}, True
        for name, upstream in self.upstreams.items():
            try:
                status, _, _, payload = upstream.request("GET", "/health", None, {})
                services[name] = json.loads(payload)["services"].get(name, "missing") if status == 200 else "failing"
            except (http.client.HTTPException, OSError, ValueError, KeyError):
                services[name] = "not answering"
            healthy = healthy and services[name] == "ok"
        return _json(start_response, "200 OK" if healthy else "503 Service Unavailable",
                     {"status": "ok" if healthy else "failing", "services": services})


def serve(listen: str, upstreams: dict[str, str]) -> None:
    host, _, port = listen.rpartition(":")
    log.info("gateway on %s in front of %s", listen, upstreams)
    wsgi.server(eventlet.listen((host or "0.0.0.0", int(port))), Gateway(upstreams),
                log=logging.getLogger("mawaeed.gateway.access"), max_size=2000)
