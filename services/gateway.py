"""The gateway of the distributed mode: the public API at one base URL, in front of one process per service.

It only routes, by the routes the services declare with @api (each path belongs to exactly one service); the
events feed goes to the service its `service` parameter names, and /health answers for all of them. In the
embedded mode no gateway is needed: every service shares one server in one process.
"""
import http.client
import itertools
import json
import logging
import os
import time
from urllib.parse import parse_qs, urlsplit

import eventlet
from eventlet import wsgi
from eventlet.patcher import original
from eventlet.pools import Pool
from werkzeug.exceptions import MethodNotAllowed, NotFound as NoRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.routing import Map
from werkzeug.wrappers import Response

from services.cli import SERVICES, service_classes
from shared import metrics, openapi
from shared.errors import DomainError, NotFound
from shared.web import (MAX_BODY_BYTES, Unavailable, api_routes, error_response, json_response, method_not_allowed,
                        read_body, secured)

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


class ServiceUnavailable(Unavailable):
    """A service that does not answer: the caller may try again shortly (503 with Retry-After)."""


class Refused(OSError):
    """A replica that would not take the connection: nothing was sent, so another replica may take the request."""


class Unanswered(OSError):
    """A replica that was sent the request (or may have been) and gave no answer: it may have acted on it, so the
    request goes neither to it again nor to another replica (the caller gets 503 and may try again)."""


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})  # asking twice changes nothing
# How a kept-alive connection the service had closed shows when the request is sent on it anyway.
CLOSED_MEANWHILE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
_select = original("select")  # the system's poll: a look that never waits needs no trip through the hub


def closed_while_idle(sock) -> bool:
    """Whether the service has closed an idle kept-alive connection: it reads as ready (its end, or bytes nobody
    asked for) when there is nothing it should be saying."""
    poller = _select.poll()
    poller.register(sock.fileno(), _select.POLLIN)
    return bool(poller.poll(0))


class Upstream:
    """Keep-alive connections to one replica of a service, and how many requests it has in flight."""

    def __init__(self, url: str, size: int = 50):
        parts = urlsplit(url)
        self.url, self.host, self.port = url, parts.hostname, parts.port
        self.in_flight = 0
        self.pool = Pool(max_size=size, create=self.connection)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def connected(self, conn: http.client.HTTPConnection) -> http.client.HTTPConnection:
        """`conn`, connected; Refused when the replica does not accept it. A kept-alive connection the service
        has closed while it was idle is replaced before anything is sent on it."""
        if conn.sock is not None and closed_while_idle(conn.sock):
            conn.close()
        if conn.sock is None:
            try:
                conn.connect()
            except OSError as exc:
                conn.close()
                raise Refused(f"{self.url}: {exc}") from exc
        return conn

    def request(self, method: str, target: str, body: bytes | None, headers: dict):
        """(status, reason, headers, body) of the replica's answer. Refused: nothing reached the replica.
        Unanswered: the request may have reached it, so it must not be sent again anywhere. One retry on a fresh
        connection is made only when the request cannot have taken effect twice: sending it failed (the service
        had closed the kept-alive connection), or the method is idempotent and a reused connection was closed
        before any answer. A POST (PUT, PATCH, DELETE) written whole is never resent, whatever follows (a timeout,
        a disconnect)."""
        self.in_flight += 1
        may_have_arrived = False
        try:
            for attempt in (1, 2):
                conn = self.pool.get()
                reused = conn.sock is not None
                try:
                    self.connected(conn)
                except Refused as exc:
                    self.pool.put(self.connection())
                    if may_have_arrived:  # the first attempt may have taken effect here: not for another replica
                        raise Unanswered(f"{self.url}: {exc}") from exc
                    raise
                try:
                    conn.request(method, target, body=body, headers=headers)
                except (http.client.HTTPException, OSError) as exc:
                    self.discard(conn)
                    # Not written whole, so not acted on; but a replica too slow to read it gets no second wait.
                    if attempt == 2 or isinstance(exc, TimeoutError):
                        raise Unanswered(f"{self.url}: {exc}") from exc
                    continue
                try:
                    response = conn.getresponse()
                    payload = response.read()
                except (http.client.HTTPException, OSError) as exc:
                    self.discard(conn)
                    may_have_arrived = True
                    if attempt == 2 or not (reused and method in IDEMPOTENT and isinstance(exc, CLOSED_MEANWHILE)):
                        raise Unanswered(f"{self.url}: {exc}") from exc
                    continue
                self.pool.put(conn)
                return response.status, response.reason, response.getheaders(), payload
        finally:
            self.in_flight -= 1

    def discard(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self.pool.put(self.connection())


class Replicas:
    """The replicas of one service. Each request goes to the one with the fewest requests in flight (ties taken
    in turn); one that refuses the connection (Refused) is passed over for the next, which is safe because
    nothing reached it. A request that did or may have reached a replica (Unanswered) is never sent to another:
    it may have taken effect."""

    def __init__(self, urls: list[str]):
        if not urls:
            raise ValueError("a service needs at least one URL")
        self.replicas = [Upstream(url) for url in urls]
        self.turns = itertools.count()

    def in_order(self) -> list[Upstream]:
        start = next(self.turns) % len(self.replicas)
        rotated = self.replicas[start:] + self.replicas[:start]
        return sorted(rotated, key=lambda replica: replica.in_flight)  # stable: ties stay in turn

    def request(self, method: str, target: str, body: bytes | None, headers: dict):
        refused = None
        for replica in self.in_order():
            try:
                return replica.request(method, target, body, headers)
            except Refused as exc:
                refused = exc
        raise refused


def replica_urls(value: str | list[str]) -> list[str]:
    """One URL, URLs separated by commas, or a list of them."""
    urls = value.split(",") if isinstance(value, str) else value
    return [url.strip() for url in urls if url.strip()]


# What a request carries on to its service, and what of an answer is the connection's own, not the client's.
FORWARDED = [("Authorization", "HTTP_AUTHORIZATION"), ("X-CPR", "HTTP_X_CPR"), ("Origin", "HTTP_ORIGIN"),
             ("Access-Control-Request-Method", "HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
             ("Access-Control-Request-Headers", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS"), ("Accept", "HTTP_ACCEPT"),
             ("Accept-Language", "HTTP_ACCEPT_LANGUAGE"), ("Cookie", "HTTP_COOKIE")]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate",
              "proxy-authorization", "date", "server"}


class Gateway:
    body_timeout = 10.0  # seconds a request body may take to arrive (MAWAEED_BODY_TIMEOUT)

    def __init__(self, upstreams: dict[str, str | list[str]]):
        self.routes = route_map(dict(zip(SERVICES, service_classes(SERVICES))))  # importing them connects nothing
        self.upstreams = {name: Replicas(replica_urls(urls)) for name, urls in upstreams.items()}

    def route(self, environ) -> tuple[str | None, str]:
        """(the name of the service a request is for, or None when the path is nobody's; its route label)."""
        path = environ.get("PATH_INFO", "")
        if path == "/api/v1/events":
            return parse_qs(environ.get("QUERY_STRING", "")).get("service", [None])[0], path
        if path.startswith("/.well-known/"):  # the development issuer: any service has it
            return next(iter(self.upstreams), None), path
        if path in (openapi.DOCUMENT_PATH, openapi.PAGE_PATH, openapi.STYLE_PATH):  # any has it
            return next(iter(self.upstreams), None), path
        adapter = self.routes.bind_to_environ(environ)
        try:
            rule, _ = adapter.match(return_rule=True)
        except MethodNotAllowed as exc:  # the path's owner answers 405 itself, as in the embedded mode
            rule, _ = adapter.match(method=exc.valid_methods[0], return_rule=True)
        except NoRoute:
            return None, metrics.UNMATCHED
        return rule.endpoint, rule.rule

    def __call__(self, environ, start_response):
        started_at, path = time.perf_counter(), environ.get("PATH_INFO", "")
        answered = {}

        def start(status, headers, exc_info=None):
            answered["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)
        own = {"/health": self.ready, "/health/ready": self.ready, "/health/live": self.live,
               "/metrics": self.metrics}.get(path)
        upstream, route = (None, path) if own else self.route(environ)
        try:
            if own is not None:
                if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                    raise method_not_allowed(["GET", "HEAD"])
                result = own()(environ, start)
            else:
                result = self.forward(environ, start, upstream)
        except DomainError as exc:
            result = error_response(exc)(environ, start)
        metrics.GATEWAY_REQUESTS.labels(upstream or "gateway", route, answered.get("status", "0")).observe(
            time.perf_counter() - started_at)  # (a stream: the time to its first byte)
        return result

    def live(self):
        """Liveness: the gateway answers (its upstreams may not: that is readiness)."""
        return json_response({"status": "ok"})

    def metrics(self):
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    def forward(self, environ, start_response, service):
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if service not in self.upstreams:
            raise NotFound("Nothing is here.", code="UNKNOWN_SERVICE" if path == "/api/v1/events" else "NOT_FOUND",
                           message_ar="المورد المطلوب غير موجود.")
        # Read whole (Content-Length or chunked) and bounded in size and time before it is passed on.
        body = read_body(environ, MAX_BODY_BYTES, self.body_timeout) or None
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
        response = None
        for replica in self.upstreams[service].in_order():
            conn = http.client.HTTPConnection(replica.host, replica.port, timeout=60)
            try:
                replica.connected(conn).request("GET", target, headers=headers)
                response = conn.getresponse()
                break
            except Refused:
                continue  # nothing sent: the next replica
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                log.warning("%s is not answering: %s", service, exc)
                break
        if response is None:
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

    @staticmethod
    def replica_state(name: str, replica: Upstream) -> str:
        try:
            status, _, _, payload = replica.request("GET", "/health/ready", None, {})
            return json.loads(payload)["services"].get(name, "missing") if status == 200 else "failing"
        except (http.client.HTTPException, OSError, ValueError, KeyError):
            return "not answering"

    def ready(self):
        """Readiness of the suite: every upstream's /health/ready (the gateway serves nothing by itself)."""
        services, healthy = {}, True
        for name, upstreams in self.upstreams.items():
            states = [self.replica_state(name, replica) for replica in upstreams.replicas]
            services[name] = next((state for state in states if state != "ok"), "ok")  # every replica must be
            healthy = healthy and services[name] == "ok"
        return json_response({"status": "ok" if healthy else "failing", "services": services},
                             200 if healthy else 503)


def serve(listen: str, upstreams: dict[str, list[str]], announce=None) -> None:
    """Serve until stopped; `announce(listen)`, if given, is printed once the whole suite is ready."""
    host, _, port = listen.rpartition(":")
    log.info("gateway on %s in front of %s", listen, upstreams)
    origins = {o.strip() for o in os.environ.get("MAWAEED_CORS_ORIGINS", "").split(",") if o.strip()}
    gateway = Gateway(upstreams)
    gateway.body_timeout = float(os.environ.get("MAWAEED_BODY_TIMEOUT") or 10)
    if announce is not None:
        eventlet.spawn(_announce_when_ready, gateway, announce(listen))
    wsgi.server(eventlet.listen((host or "127.0.0.1", int(port))), secured(gateway, lambda: origins),
                log=logging.getLogger("mawaeed.gateway.access"), max_size=2000,
                socket_timeout=float(os.environ.get("MAWAEED_SOCKET_TIMEOUT") or 60))


def _announce_when_ready(gateway: Gateway, line: str) -> None:
    while gateway.ready().status_code != 200:
        eventlet.sleep(0.5)
    print(line, flush=True)
