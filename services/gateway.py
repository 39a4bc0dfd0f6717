"""The gateway of the distributed mode: the public API at one base URL, in front of one process per service.

It only routes, by the routes the services declare with @api (each path belongs to exactly one service); the
events feed goes to the service its `service` parameter names, and /health answers for all of them. In the
embedded mode no gateway is needed: every service shares one server in one process.
"""
import http.client
import json
import logging
import os
from urllib.parse import parse_qs, urlsplit

import eventlet
from eventlet import wsgi
from eventlet.pools import Pool
from werkzeug.exceptions import MethodNotAllowed, NotFound as NoRoute
from werkzeug.routing import Map

from services.cli import SERVICES, service_classes
from shared.errors import DomainError, NotFound, PayloadTooLarge
from shared.web import MAX_BODY_BYTES, api_routes, error_response, json_response, secured

log = logging.getLogger(__name__)


def route_map(services: dict[str, type]) -> Map:
    """Every route the services' classes declare, its endpoint the name of the service that declared it."""
    rules = []
    for name, service_cls in services.items():
        for endpoint in api_routes(service_cls):
            rule = endpoint.get_url_rule()
            rule.endpoint = name
            rules.append(rule)
    return Map(rules, merge_slashes=False)  # a "//" path is nobody's (404), not a redirect to another one


class ServiceUnavailable(DomainError):
    """A service that does not answer: the caller may try again shortly."""
    status, code = 503, "SERVICE_UNAVAILABLE"


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


# What a request carries on to its service, and what of an answer is the connection's own, not the client's.
FORWARDED = [("Authorization", "HTTP_AUTHORIZATION"), ("X-CPR", "HTTP_X_CPR"), ("Origin", "HTTP_ORIGIN"),
             ("Access-Control-Request-Method", "HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
             ("Access-Control-Request-Headers", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS"), ("Accept", "HTTP_ACCEPT"),
             ("Accept-Language", "HTTP_ACCEPT_LANGUAGE"), ("Cookie", "HTTP_COOKIE")]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate",
              "proxy-authorization", "date", "server"}


class Gateway:
    def __init__(self, upstreams: dict[str, str]):
        self.routes = route_map(dict(zip(SERVICES, service_classes(SERVICES))))  # importing them connects nothing
        self.upstreams = {name: Upstream(url) for name, url in upstreams.items()}

    def route(self, environ) -> str | None:
        """The name of the service a request is for, or None when the path is nobody's."""
        if environ.get("PATH_INFO") == "/api/v1/events":
            return parse_qs(environ.get("QUERY_STRING", "")).get("service", [None])[0]
        if environ.get("PATH_INFO", "").startswith("/.well-known/"):  # the development issuer: any service has it
            return next(iter(self.upstreams), None)
        adapter = self.routes.bind_to_environ(environ)
        try:
            return adapter.match()[0]
        except MethodNotAllowed as exc:  # the path's owner answers 405 itself, as in the embedded mode
            return adapter.match(method=exc.valid_methods[0])[0]
        except NoRoute:
            return None

    def __call__(self, environ, start_response):
        try:
            if environ.get("PATH_INFO") == "/health":
                return self.health()(environ, start_response)
            return self.forward(environ, start_response)
        except DomainError as exc:
            return error_response(exc)(environ, start_response)

    def forward(self, environ, start_response):
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        service = self.route(environ)
        if service not in self.upstreams:
            raise NotFound("Nothing is here.", code="UNKNOWN_SERVICE" if path == "/api/v1/events" else "NOT_FOUND",
                           message_ar="المورد المطلوب غير موجود.")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                                  message_ar="حجم الطلب أكبر من المسموح.")
        body = environ["wsgi.input"].read(length) if length else None
        headers = {"Content-Type": environ.get("CONTENT_TYPE") or "application/json",
                   **{name: environ[key] for name, key in FORWARDED if key in environ},
                   # the services believe this only from a proxy listed in MAWAEED_TRUSTED_PROXIES
                   "X-Forwarded-For": ", ".join(filter(None, (environ.get("HTTP_X_FORWARDED_FOR"),
                                                              environ.get("REMOTE_ADDR"))))}
        target = path + (f"?{query}" if query else "")
        if environ["REQUEST_METHOD"] == "GET" and "text/event-stream" in environ.get("HTTP_ACCEPT", ""):
            return self.stream(service, target, headers, environ, start_response)
        try:
            status, reason, response_headers, payload = self.upstreams[service].request(
                environ["REQUEST_METHOD"], target, body, headers)
        except (http.client.HTTPException, OSError) as exc:
            log.warning("%s is not answering: %s", service, exc)
            raise ServiceUnavailable(f"The {service} service is not answering; try again shortly.",
                                     message_ar="الخدمة لا تستجيب حاليًا، يرجى المحاولة بعد قليل.") from None
        keep = [(k, v) for k, v in response_headers if k.lower() not in HOP_BY_HOP]
        start_response(f"{status} {reason}", keep)
        return [payload]

    def stream(self, service, target, headers, environ, start_response):
        """A Server-Sent Events stream (the display's live board): passed on as it comes, on a connection of its
        own (a pooled one would be held for hours); the service's heartbeat every 15 s keeps it under the
        timeout, so a service that died is noticed."""
        parts = urlsplit(self.upstreams[service].url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
        except (http.client.HTTPException, OSError) as exc:
            conn.close()
            log.warning("%s is not answering: %s", service, exc)
            raise ServiceUnavailable(f"The {service} service is not answering; try again shortly.",
                                     message_ar="الخدمة لا تستجيب حاليًا، يرجى المحاولة بعد قليل.") from None
        keep = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        environ["eventlet.minimum_write_chunk_size"] = 0  # each message out at once, not 4 KiB at a time
        start_response(f"{response.status} {response.reason}", keep)

        def relay():
            try:
                while True:
                    chunk = response.read1(65536)
                    if not chunk:
                        return
                    yield chunk
            except (http.client.HTTPException, OSError):  # the service went away: so does the stream
                return
            finally:
                conn.close()
        return relay()

    def health(self):
        services, healthy = {}, True
        for name, upstream in self.upstreams.items():
            try:
                status, _, _, payload = upstream.request("GET", "/health", None, {})
                services[name] = json.loads(payload)["services"].get(name, "missing") if status == 200 else "failing"
            except (http.client.HTTPException, OSError, ValueError, KeyError):
                services[name] = "not answering"
            healthy = healthy and services[name] == "ok"
        return json_response({"status": "ok" if healthy else "failing", "services": services},
                             200 if healthy else 503)


def serve(listen: str, upstreams: dict[str, str]) -> None:
    host, _, port = listen.rpartition(":")
    log.info("gateway on %s in front of %s", listen, upstreams)
    origins = {o.strip() for o in os.environ.get("MAWAEED_CORS_ORIGINS", "").split(",") if o.strip()}
    wsgi.server(eventlet.listen((host or "0.0.0.0", int(port))), secured(Gateway(upstreams), lambda: origins),
                log=logging.getLogger("mawaeed.gateway.access"), max_size=2000)
