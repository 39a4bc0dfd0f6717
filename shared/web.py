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

from marshmallow import Schema, ValidationError
from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp, parse_address
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from shared import metrics
from shared.auth import Caller, Unauthenticated, forbidden, unauthenticated, verifier_for
from shared.contracts.fields import CPR_PATTERN
from shared.errors import BadRequest, DomainError, InvalidInput, NotFound, PayloadTooLarge
from shared.masking import pseudonymise
from shared.ratelimits import client_address, trusted_networks

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
FEED_PAGE_LIMIT = 1000


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


def parse_json(request: Request, schema: Schema) -> dict:
    """The request body loaded through `schema`: 400 for malformed JSON, 422 for invalid fields."""
    try:
        raw = request.get_data(cache=True)
    except HTTPException:  # werkzeug's 413 for a body over max_content_length
        raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                              message_ar="حجم الطلب أكبر من المسموح.") from None
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.", code="MALFORMED_JSON",
                         message_ar="نص الطلب ليس بصيغة JSON صحيحة.") from None
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
    return load(schema, request.args.to_dict())


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
        address = parse_address(container.config.get(WEB_SERVER_CONFIG_KEY, "0.0.0.0:8000"))
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
        path = environ.get("PATH_INFO", "")
        builtin = {"/health": self.health, "/metrics": self.metrics, "/api/v1/events": self.events,
                   "/.well-known/openid-configuration": self.discovery, "/.well-known/jwks.json": self.jwks}.get(path)
        if builtin is None:
            return super().__call__(environ, start_response)
        request = Request(environ)
        try:
            response = builtin(request)
        except DomainError as exc:
            response = error_response(exc)
        return response(environ, start_response)

    def health(self, request):
        services, healthy = {}, True
        for name, container in sorted(self.server.live_containers().items()):
            try:
                for dependency in container.dependencies:
                    if hasattr(dependency, "health_check"):
                        dependency.health_check()
                services[name] = "ok"
            except Exception as exc:
                healthy = False
                services[name] = f"failing: {type(exc).__name__}"
        return json_response({"status": "ok" if healthy else "failing", "services": services},
                             200 if healthy else 503)

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
        try:
            after = int(args.get("after", "0"))
            limit = int(args.get("limit", "100"))
            if after < 0 or not 1 <= limit <= FEED_PAGE_LIMIT:
                raise ValueError
        except ValueError:
            raise InvalidInput(f"after must be a whole number >= 0 and limit between 1 and {FEED_PAGE_LIMIT}.",
                               fields={"after": args.get("after"), "limit": args.get("limit")},
                               message_ar="قيم after أو limit غير صحيحة.") from None
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
        with storage.db.transaction() as uow:
            events = uow.store.read_all(after=after, limit=limit, types=types)
            head = uow.store.head()
        key = self.config.get("MAWAEED_EXPORT_KEY") or self.config.get("MAWAEED_SUBJECT_KEY") or ""
        return json_response({"service": service, "after": after, "head": head,
                              "events": [e.to_dict() if clear else dict(e.to_dict(), payload=pseudonymise(
                                  e.payload, key)) for e in events],
                              "next_after": events[-1].position if events else after})


# -- the entrypoint ------------------------------------------------------------------------------------

class ApiEndpoint(HttpRequestHandler):
    """A JSON endpoint: returns (status, body), a body (200) or None (204); DomainErrors become 4xx.
    `allow`: the roles that may call it (None: everyone, the public included)."""
    server = SharedWebServer()

    def __init__(self, method, url, allow: tuple | None = None, **kwargs):
        super().__init__(method, url, expected_exceptions=(DomainError,), **kwargs)
        self.allow = tuple(allow) if allow else None

    def setup(self):
        super().setup()
        config = self.container.config
        self.verifier = verifier_for(config)
        self.trusted = trusted_networks(config.get("MAWAEED_TRUSTED_PROXIES"))

    def handle_request(self, request):
        started = time.perf_counter()
        request.max_content_length = MAX_BODY_BYTES
        try:
            request.caller = self.caller(request)
        except DomainError as refused:  # refused at the door: the service method never runs
            response = error_response(refused)
        else:
            response = super().handle_request(request)
        metrics.HTTP_REQUESTS.labels(self.container.service_name, self.url, str(response.status_code)) \
            .observe(time.perf_counter() - started)
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
        log.error("unexpected error in %s %s", self.method, self.url, exc_info=exc)
        return json_response({"error": {"code": "INTERNAL", "message": "Something went wrong on our side.",
                                        "message_ar": "حدث خطأ من جهتنا."}}, 500)


api = ApiEndpoint.decorator


def api_routes(service_cls) -> list[ApiEndpoint]:
    """The @api endpoints a service class declares (`.method`, `.url`, `.get_url_rule()`), found as nameko finds
    them when it hosts the class: the one record of a service's routes, which the gateway routes by."""
    declared = (entrypoint for _, function in inspect.getmembers(service_cls, inspect.isfunction)
                for entrypoint in getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ())
                if isinstance(entrypoint, ApiEndpoint))
    return sorted(declared, key=lambda endpoint: (endpoint.url, endpoint.method))
