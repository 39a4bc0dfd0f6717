"""HTTP for the suite: JSON in and out, clear errors, and one server per address per process.

nameko gives each service container its own WebServer; Mawaeed's embedded mode runs every service in one
process behind one port, so `SharedWebServer` is shared by all containers bound to the same address. It also
serves what every service has in common: /health, /metrics, the events feed (/api/v1/events) and, when the
suite is its own development issuer, its OpenID Connect discovery document and keys (/.well-known/).

Every route says who may call it: `@api(method, url)` is public, `@api(method, url, allow=ROLES)` needs a bearer
token with one of those roles (401 without a valid token, 403 with another role), and the service method gets
the verified caller as `request.caller` (shared/auth.py) to check the place and name the actor. Every answer
carries the security headers; CORS answers only the origins in MAWAEED_CORS_ORIGINS.
"""
import inspect
import json
import logging
import time
from collections import defaultdict
from urllib.request import Request as UrlRequest, urlopen

import eventlet
from eventlet import wsgi

from marshmallow import Schema, ValidationError
from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp, parse_address
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound as NoRoute
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from shared import metrics, openapi
from shared.auth import Caller, Unauthenticated, forbidden, unauthenticated, verifier_for
from shared.contracts.fields import CPR_PATTERN
from shared.errors import BadRequest, DomainError, InvalidInput, NotFound, PayloadTooLarge
from shared.masking import pseudonymise
from shared.ratelimits import client_address, trusted_networks
from shared.topology import SUBSCRIPTIONS

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
FEED_PAGE_LIMIT = 1000
MAX_POSITION = 2 ** 63 - 1  # a log position is a signed 64-bit integer in the database
MAX_URL_LINE = 8192  # eventlet's limit on the request line, answered 414 below
RETRY_AFTER_SECONDS = "2"  # what a 503 tells the caller to wait


class Unavailable(DomainError):
    """The service cannot serve this now (overloaded, or its database or broker does not answer): try again."""
    status, code = 503, "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, **kwargs):
        super().__init__(message, **kwargs)
        self.headers = {"Retry-After": RETRY_AFTER_SECONDS}


class RequestTimeout(DomainError):
    status, code = 408, "REQUEST_TIMEOUT"
    headers = {"Connection": "close"}


# -- JSON helpers ---------------------------------------------------------------------------------------

def json_response(body, status: int = 200, headers=None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    headers=headers, content_type="application/json; charset=utf-8")


def error_response(exc: DomainError) -> Response:
    headers = dict(exc.headers)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="mawaeed"'
    return json_response(exc.as_body(), exc.status, headers)


# Sent with every answer: nothing sniffed, no referrer leaked, nothing personal kept by a cache, and a content
# policy that lets a page load only from this suite (the pages are served from the same origin).
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "frame-ancestors 'none'; form-action 'self'"),
]
CORS_ALLOWED_HEADERS = "Authorization, Content-Type, X-CPR"


def secured(app, cors_origins):
    """Wrap a WSGI app: the security headers on every answer; CORS for the allowed origins only, including
    their preflight requests."""
    def wrapped(environ, start_response):
        origin = environ.get("HTTP_ORIGIN")
        allowed = origin if origin and origin in cors_origins() else None
        extra = list(SECURITY_HEADERS)
        if allowed:
            extra += [("Access-Control-Allow-Origin", allowed), ("Vary", "Origin"),
                      ("Access-Control-Expose-Headers", "Retry-After, RateLimit-Limit, RateLimit-Remaining, "
                                                        "RateLimit-Reset, WWW-Authenticate")]
            if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
                start_response("204 No Content", extra + [
                    ("Access-Control-Allow-Methods", "GET, POST"),
                    ("Access-Control-Allow-Headers", CORS_ALLOWED_HEADERS), ("Access-Control-Max-Age", "600")])
                return [b""]

        def start(status, headers, exc_info=None):
            names = {name.lower() for name, _ in headers}
            return start_response(status, headers + [(k, v) for k, v in extra if k.lower() not in names], exc_info)
        return app(environ, start)
    return wrapped


# A 414 in JSON like every other error (eventlet writes this constant as it is, before any app runs; the
# gateway shares it). Its headers are the security headers: no app adds them to it.
_URI_TOO_LONG = json.dumps({"error": {"code": "URI_TOO_LONG", "message": f"The URL is longer than {MAX_URL_LINE} "
                                      "characters.", "message_ar": "الرابط أطول من المسموح."}},
                           ensure_ascii=False).encode()
wsgi.RESPONSE_414 = (b"HTTP/1.0 414 Request URI Too Long\r\nConnection: close\r\n"
                     b"Content-Type: application/json; charset=utf-8\r\n"
                     + b"".join(f"{k}: {v}\r\n".encode() for k, v in [
                         ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")])
                     + f"Content-Length: {len(_URI_TOO_LONG)}\r\n\r\n".encode() + _URI_TOO_LONG)


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                           message_ar="حجم الطلب أكبر من المسموح.")


def read_body(environ, limit: int = MAX_BODY_BYTES, deadline: float = 10) -> bytes:
    """The whole request body, by Content-Length or chunked, at most `limit` bytes (413 beyond), within `deadline`
    seconds (408 after): a client that sends its body a byte at a time holds its own connection, nothing else."""
    chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("Content-Length is not a number.", message_ar="طول الطلب غير صحيح.") from None
    if length > limit:
        raise too_large()
    if not chunked and length <= 0:
        return b""
    stream, data = environ["wsgi.input"], b""
    try:
        with eventlet.Timeout(deadline):
            while len(data) <= limit:
                chunk = stream.read(limit + 1 - len(data))
                if not chunk:
                    break
                data += chunk
    except eventlet.Timeout:
        raise RequestTimeout(f"The request body did not arrive within {deadline:g} seconds.",
                             message_ar="لم يصل نص الطلب في الوقت المحدد.") from None
    except (OSError, ValueError):  # the client went away, or a broken chunked encoding
        raise BadRequest("The request body could not be read.", code="MALFORMED_JSON",
                         message_ar="تعذرت قراءة نص الطلب.") from None
    if len(data) > limit:
        raise too_large()
    return data


def parse_json(request: Request, schema: Schema) -> dict:
    """The request body loaded through `schema`: 400 for malformed JSON, 422 for invalid fields."""
    raw = getattr(request, "_cached_data", None)
    if raw is None:  # not read at the door (a request that did not come through ApiEndpoint)
        raw = read_body(request.environ)
        request._cached_data = raw
    malformed = BadRequest("The request body is not valid JSON.", code="MALFORMED_JSON",
                           message_ar="نص الطلب ليس بصيغة JSON صحيحة.")
    try:
        data = json.loads(raw or b"null")
        # A lone surrogate ("\ud800") parses but can never be stored or sent as UTF-8.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):  # RecursionError: nested too deep to be a real request
        raise malformed from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.", code="MALFORMED_JSON",
                         message_ar="يجب أن يكون نص الطلب كائن JSON.")
    return load(schema, data)


def person_cpr(request: Request, given: str | None = None) -> str:
    """Whose booking a public request is about: a signed-in citizen's own CPR (from their national-eID token),
    else the CPR given in the body (`given`) or the X-CPR header. Never one from the URL: URLs end up in proxy
    and access logs."""
    if "cpr" in request.args:
        raise BadRequest("Send the CPR in the request body or the X-CPR header, never in the URL.", code="CPR_IN_URL",
                         message_ar="أرسل رقم الهوية في نص الطلب أو في الترويسة X-CPR، وليس في الرابط.")
    citizen = request.caller.principal
    if citizen.has("citizen") and citizen.cpr:
        if given and given != citizen.cpr:
            raise forbidden("A citizen acts for themselves: this CPR is not the one you signed in with.")
        return citizen.cpr
    cpr = given or request.headers.get("X-CPR")
    if not cpr or not CPR_PATTERN.match(cpr):
        raise InvalidInput("Some fields are missing or invalid.", message_ar="بعض الحقول ناقصة أو غير صحيحة.",
                           fields={"cpr": ["A CPR number is 9 digits starting with the year and month of birth "
                                           "(YYMM); send it in the body or the X-CPR header."]})
    return cpr


def parse_query(request: Request, schema: Schema) -> dict:
    args = request.args.to_dict()
    if any(not is_utf8(value) for value in args.values()):
        raise BadRequest("The query string is not valid UTF-8.", message_ar="نص الرابط غير صحيح.")
    return load(schema, args)


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeError:
        return False


def load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput("Some fields are missing or invalid.", fields=exc.messages,
                           message_ar="بعض الحقول ناقصة أو غير صحيحة.") from None


# -- the shared server ----------------------------------------------------------------------------------

class SharedWebServer(WebServer):
    _by_address = {}  # bind address -> the one server of this process on it

    def bind(self, container):
        address = parse_address(container.config.get(WEB_SERVER_CONFIG_KEY, "127.0.0.1:8000"))
        server = SharedWebServer._by_address.get(address)
        if server is None:
            server = super().bind(container)
            server.address = address
            SharedWebServer._by_address[address] = server
        return server

    def __init__(self):
        super().__init__()
        self.address = None

    @property
    def bind_addr(self):
        return self.address

    def get_wsgi_app(self):
        app = SharedWsgiApp(self)
        return secured(app, lambda: app.cors_origins)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        # A client that goes quiet (mid-headers, mid-body, or idle between requests) loses its connection.
        server.socket_timeout = float(self.container.config.get("MAWAEED_SOCKET_TIMEOUT") or 60)
        return server

    def stop(self):
        # Entrypoints unregister before their container stops its shared extensions: the server closes
        # when the last container that used it stops, not the first.
        if self._providers:
            return
        SharedWebServer._by_address.pop(self.address, None)
        if self._gt is not None:
            super().stop()

    def kill(self):
        self.stop()

    def live_containers(self):
        return {p.container.service_name: p.container for p in list(self._providers)}


class SharedWsgiApp(WsgiApp):
    """Routes to the providers registered now (containers join after the server started) and built-ins."""

    def __init__(self, server):
        self.server = server
        self._map_key = None
        self._url_map = Map()
        self.readiness = Readiness(server)

    @property
    def config(self) -> dict:
        containers = self.server.live_containers()
        return next(iter(containers.values())).config if containers else {}

    @property
    def cors_origins(self) -> set:
        return {o.strip() for o in (self.config.get("MAWAEED_CORS_ORIGINS") or "").split(",") if o.strip()}

    @property
    def url_map(self):
        key = frozenset(self.server._providers)
        if key != self._map_key:
            url_map = Map()
            for provider in key:
                rule = provider.get_url_rule()
                rule.endpoint = provider
                url_map.add(rule)
            self._map_key, self._url_map = key, url_map
        return self._url_map

    def __call__(self, environ, start_response):
        started_at = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        # The built-ins, GET (and HEAD) only; /health is readiness, as it always meant.
        builtin = {"/health": self.ready, "/health/ready": self.ready, "/health/live": self.live,
                   "/metrics": self.metrics, "/api/v1/events": self.events,
                   "/.well-known/openid-configuration": self.discovery, "/.well-known/jwks.json": self.jwks,
                   # the API's OpenAPI document, its reference page and the page's stylesheet
                   openapi.DOCUMENT_PATH: openapi.document, openapi.PAGE_PATH: openapi.page,
                   openapi.STYLE_PATH: openapi.stylesheet}.get(path)
        if builtin is None:
            return self.route(environ, start_response, started_at)
        request = Request(environ)
        try:
            if request.method not in ("GET", "HEAD"):
                raise method_not_allowed(["GET", "HEAD"])
            response = builtin(request)
        except DomainError as exc:
            response = error_response(exc)
        metrics.HTTP_REQUESTS.labels("server", path, str(response.status_code)).observe(
            time.perf_counter() - started_at)
        return response(environ, start_response)

    def route(self, environ, start_response, started_at):
        """A service's route; JSON errors for a path nobody serves (404) or a method it does not take (405)."""
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except MethodNotAllowed as exc:
            owner = adapter.match(method=exc.valid_methods[0])[0]
            response = error_response(method_not_allowed(exc.valid_methods))
            service, route = owner.container.service_name, owner.url
        except NoRoute:
            response = error_response(NotFound("Nothing is here.", message_ar="المورد المطلوب غير موجود."))
            service, route = "server", metrics.UNMATCHED
        except HTTPException as exc:  # a redirect (a missing trailing slash), or another of werkzeug's answers
            return exc(environ, start_response)
        else:
            request.path_values = values
            return provider.handle_request(request)(environ, start_response)  # it counts itself
        metrics.HTTP_REQUESTS.labels(service, route, str(response.status_code)).observe(
            time.perf_counter() - started_at)
        return response(environ, start_response)

    def live(self, request):
        """Liveness: this process answers. No database call: an outage of the database must not restart it."""
        return json_response({"status": "ok"})

    def ready(self, request):
        """Readiness: every service's dependencies answer and it has finished starting (its subscribers caught up
        from the logs, availability's catalogue recorded, every copy of the catalogue at availability's head)."""
        services, healthy = {}, True
        for name, container in sorted(self.server.live_containers().items()):
            try:
                for dependency in container.dependencies:
                    if hasattr(dependency, "health_check"):
                        dependency.health_check()
                waiting = self.readiness.waiting_for(name, container)
                services[name] = f"starting: {waiting}" if waiting else "ok"
            except Exception as exc:
                services[name] = f"failing: {type(exc).__name__}"
            healthy = healthy and services[name] == "ok"
        return json_response({"status": "ok" if healthy else "failing", "services": services},
                             200 if healthy else 503)

    health = ready

    def metrics(self, request):
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    def _development_issuer(self):
        if self.config.get("MAWAEED_OIDC_ISSUER"):
            raise NotFound("This suite is not an issuer: tokens come from MAWAEED_OIDC_ISSUER.",
                           message_ar="هذا النظام لا يصدر رموز الدخول.")
        return verifier_for(self.config).keys

    def discovery(self, request):
        return json_response(self._development_issuer().discovery())

    def jwks(self, request):
        return json_response(self._development_issuer().jwks())

    def events(self, request):
        """A service's events in position order, for catch-up and replay: for analysts (personal fields
        pseudonymised) and subscribers (the services their scopes name; personal fields in clear only with
        `events:personal`)."""
        args = request.args
        containers = self.server.live_containers()
        service = args.get("service", "")
        caller = verifier_for(self.config).principal(request.headers.get("Authorization"))
        if not caller.authenticated:
            raise unauthenticated()
        if not caller.has("analyst", "subscriber"):
            raise forbidden("The events feed is for analysts and subscribing systems.")
        if service not in containers:
            raise NotFound(f"No service {service!r} answers here; known: {', '.join(sorted(containers))}.",
                           code="UNKNOWN_SERVICE", message_ar="الخدمة المطلوبة غير معروفة.")
        after = whole_number(args.get("after", "0"), 0, MAX_POSITION)
        limit = whole_number(args.get("limit", "100"), 1, FEED_PAGE_LIMIT)
        wrong = {name: [f"A whole number from {low} to {high}."] for name, value, low, high in (
            ("after", after, 0, MAX_POSITION), ("limit", limit, 1, FEED_PAGE_LIMIT)) if value is None}
        if wrong:
            raise InvalidInput(f"after must be a whole number from 0 to {MAX_POSITION} and limit from 1 to "
                               f"{FEED_PAGE_LIMIT}.", fields=wrong, message_ar="قيم after أو limit غير صحيحة.")
        storage = next((d for d in containers[service].dependencies if hasattr(d, "health_check")), None)
        if storage is None:  # a service without a log (the pages)
            raise NotFound(f"The {service} service keeps no events.", code="UNKNOWN_SERVICE",
                           message_ar="الخدمة المطلوبة غير معروفة.")
        if storage.db is None:
            error = DomainError(f"The {service} service is starting; try again shortly.", code="STARTING",
                                message_ar="الخدمة قيد التشغيل، يرجى المحاولة بعد قليل.")
            error.status = 503
            raise error
        if not caller.has("analyst") and f"events:{service}" not in caller.scopes:
            raise forbidden(f"This token does not name the {service} feed (scope events:{service}).")
        clear = "events:personal" in caller.scopes and caller.has("subscriber")
        types = [t for t in args.get("types", "").split(",") if t] or None  # e.g. booking.SlotBooked,...
        # what was committed before this request gets its position first (the relay would, a moment later):
        # a caller reads its own writes in the feed
        storage.db.sequence()
        with storage.db.transaction() as uow:
            events = uow.store.read_all(after=after, limit=limit, types=types)
            head = uow.store.head()
        key = self.config.get("MAWAEED_EXPORT_KEY") or self.config.get("MAWAEED_SUBJECT_KEY") or ""
        return json_response({"service": service, "after": after, "head": head,
                              "events": [e.to_dict() if clear else dict(e.to_dict(), payload=pseudonymise(
                                  e.payload, key)) for e in events],
                              "next_after": events[-1].position if events else after})


def method_not_allowed(allowed) -> DomainError:
    error = DomainError(f"This path answers {', '.join(sorted(allowed))} only.", code="METHOD_NOT_ALLOWED",
                        message_ar="طريقة الطلب غير مسموحة لهذا المسار.")
    error.status, error.headers = 405, {"Allow": ", ".join(sorted(allowed))}
    return error


def whole_number(text: str, low: int, high: int) -> int | None:
    """`text` as an int in [low, high], else None (ASCII digits only: int() also takes "٣" and " 3_0")."""
    if not text or len(text) > 20 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


# -- readiness ------------------------------------------------------------------------------------------

_started: dict[str, set] = defaultdict(set)  # service -> the start-up steps it finished in this process


def started(service: str, step: str) -> None:
    """Record that `service` finished one of its `startup_steps` (a class attribute; e.g. availability's
    "catalogue": the catalogue file is in its log)."""
    _started[service].add(step)


class Readiness:
    """Whether each service of this server has finished starting. A service that keeps a copy of the catalogue
    (a subscription to availability's events, which takes every type of them) is ready once it processed
    availability's log up to its head: read in this process when availability runs here (embedded), else from
    availability's events feed with the service's own credentials, cached briefly (distributed)."""
    HEAD_TTL = 1.5

    def __init__(self, server):
        self.server = server
        self._head = (0.0, None)  # (monotonic time read, availability's head)

    def waiting_for(self, name: str, container) -> str | None:
        pending = set(getattr(container.service_cls, "startup_steps", ())) - _started[name]
        if pending:
            return ", ".join(sorted(pending))
        subscribers = [e for e in container.entrypoints if hasattr(e, "caught_up")]
        behind = sorted(e.subscription_name for e in subscribers if not e.caught_up)
        if behind:
            return f"catching up ({', '.join(behind)})"
        copies = [e.subscription_name for e in subscribers
                  if e.subscription.source == "availability" and not e.subscription.live_only]
        if copies:
            head = self.catalogue_head(container.config)
            storage = next(d for d in container.dependencies if hasattr(d, "health_check"))
            # head 0: availability has not recorded the catalogue yet, so no copy can be complete
            if not head or any(storage.db.last_processed_position(c) < head for c in copies):
                return "the catalogue"
        return None

    def catalogue_head(self, config: dict) -> int | None:
        local = self.server.live_containers().get("availability")
        if local is not None:
            storage = next(d for d in local.dependencies if hasattr(d, "health_check"))
            with storage.db.transaction() as uow:
                return uow.store.head()
        read_at, head = self._head
        if head is None or time.monotonic() - read_at > self.HEAD_TTL:
            head = self._feed_head(config)
            self._head = (time.monotonic(), head)
        return head

    @staticmethod
    def _feed_head(config: dict) -> int | None:
        from shared.auth import service_credentials
        feed = (config.get("MAWAEED_FEED_URL") or "").rstrip("/")
        try:
            authorization = service_credentials(config).authorization()
            request = UrlRequest(f"{feed}/api/v1/events?service=availability&limit=1",
                                 headers={"Authorization": authorization})
            with urlopen(request, timeout=3) as response:
                return int(json.load(response)["head"])
        except Exception as exc:  # not answering yet, or not this feed: not ready, say why in the log
            log.debug("availability's head is not readable at %s: %s", feed, exc)
            return None


# -- the entrypoint ------------------------------------------------------------------------------------

class ApiEndpoint(HttpRequestHandler):
    """A JSON endpoint: returns (status, body), a body (200) or None (204); DomainErrors become 4xx.
    `allow`: the roles that may call it (None: everyone, the public included)."""
    server = SharedWebServer()
    _in_flight: dict = defaultdict(int)  # service -> its HTTP requests running now (shared by its endpoints)

    def __init__(self, method, url, allow: tuple | None = None, **kwargs):
        super().__init__(method, url, expected_exceptions=(DomainError,), **kwargs)
        self.allow = tuple(allow) if allow else None
        self._fitting_calls = set()  # (positional count, keyword names) that check_signature has passed

    def check_signature(self, args, kwargs):
        """nameko's check (inspect.getcallargs, a few per cent of a request's CPU), once per shape of call: a
        route always calls its method with the request and the same variables of its URL."""
        shape = (len(args), frozenset(kwargs))
        if shape not in self._fitting_calls:
            super().check_signature(args, kwargs)
            self._fitting_calls.add(shape)

    def setup(self):
        super().setup()
        config = self.container.config
        self.verifier = verifier_for(config)
        self.trusted = trusted_networks(config.get("MAWAEED_TRUSTED_PROXIES"))
        self.max_in_flight = int(config.get("MAWAEED_MAX_IN_FLIGHT") or config.get("max_workers") or 10)
        self.body_timeout = float(config.get("MAWAEED_BODY_TIMEOUT") or 10)
        service = self.container.service_name
        metrics.initialise(service, [name for name in SUBSCRIPTIONS if name.startswith(f"{service}.")])

    def handle_request(self, request):
        started_at = time.perf_counter()
        service = self.container.service_name
        request.max_content_length = MAX_BODY_BYTES
        try:
            request.caller = self.caller(request)
            # The body is read here, on the connection's own green thread and within a deadline, before a worker
            # is taken: a slow client holds its connection, never one of the service's workers.
            if self.method != "GET":
                request._cached_data = read_body(request.environ, MAX_BODY_BYTES, self.body_timeout)
            if ApiEndpoint._in_flight[service] >= self.max_in_flight:  # answered now, not queued for a worker
                metrics.SHED.labels(service).inc()
                raise Unavailable(f"The {service} service is busy; try again shortly.", code="OVERLOADED",
                                  message_ar="الخدمة مشغولة حاليًا، يرجى المحاولة بعد قليل.")
        except DomainError as refused:  # refused at the door: the service method never runs
            response = error_response(refused)
        else:
            ApiEndpoint._in_flight[service] += 1
            try:
                response = super().handle_request(request)
            finally:
                ApiEndpoint._in_flight[service] -= 1
        metrics.HTTP_REQUESTS.labels(service, self.url, str(response.status_code)) \
            .observe(time.perf_counter() - started_at)
        return response

    def caller(self, request) -> Caller:
        """Who calls, from where, and whether this route lets them in (401 / 403 before any work)."""
        principal = self.verifier.principal(request.headers.get("Authorization"))
        if self.allow:
            if not principal.authenticated:
                raise unauthenticated()
            if not principal.has(*self.allow):
                raise forbidden(f"This needs one of the roles {', '.join(self.allow)}.")
        address = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), self.trusted)
        return Caller(principal, self.allow, address)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status=204)
        status, body = result if isinstance(result, tuple) else (200, result)
        return json_response(body, status)

    def response_from_exception(self, exc):
        if isinstance(exc, DomainError):
            return error_response(exc)
        if infrastructure_failure(exc):
            log.warning("%s %s: a dependency is not answering: %s", self.method, self.url, type(exc).__name__)
            return error_response(Unavailable("The service cannot reach its database or broker just now; try "
                                              "again shortly.", message_ar="الخدمة غير متاحة حاليًا، يرجى "
                                                                            "المحاولة بعد قليل."))
        log.error("unexpected error in %s %s", self.method, self.url, exc_info=exc)
        return json_response({"error": {"code": "INTERNAL", "message": "Something went wrong on our side.",
                                        "message_ar": "حدث خطأ من جهتنا."}}, 500)


api = ApiEndpoint.decorator


# Failures of what a service stands on, not of the request: the database (SQLAlchemy's OperationalError,
# InterfaceError, a pool timeout, a DBAPIError that invalidated its connection), the broker (kombu's and amqp's
# connection errors) and Redis. Matched by name so none of those libraries has to be imported here.
_INFRASTRUCTURE = {("sqlalchemy.exc", "OperationalError"), ("sqlalchemy.exc", "InterfaceError"),
                   ("sqlalchemy.exc", "TimeoutError"), ("sqlalchemy.exc", "DisconnectionError"),
                   ("kombu.exceptions", "OperationalError"), ("amqp.exceptions", "ConnectionError"),
                   ("amqp.exceptions", "RecoverableConnectionError"), ("redis.exceptions", "ConnectionError"),
                   ("redis.exceptions", "TimeoutError")}


def infrastructure_failure(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):  # a socket refused, reset or timed out
        return True
    if getattr(exc, "connection_invalidated", False):  # a DBAPIError on a connection that died
        return True
    return any((cls.__module__, cls.__name__) in _INFRASTRUCTURE for cls in type(exc).__mro__)


def api_routes(service_cls) -> list[ApiEndpoint]:
    """The @api endpoints a service class declares (`.method`, `.url`, `.get_url_rule()`), found as nameko finds
    them when it hosts the class: the one record of a service's routes, which the gateway routes by."""
    declared = (entrypoint for _, function in inspect.getmembers(service_cls, inspect.isfunction)
                for entrypoint in getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ())
                if isinstance(entrypoint, ApiEndpoint))
    return sorted(declared, key=lambda endpoint: (endpoint.url, endpoint.method))
