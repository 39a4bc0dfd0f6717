"""HTTP for the suite: JSON in and out, clear errors, and one server per address per process.

nameko gives each service container its own WebServer; Mawaeed's embedded mode runs every service in one
process behind one port, so `SharedWebServer` is shared by all containers bound to the same address. It also
serves what every service has in common: /health, /metrics and the events feed (/api/v1/events).
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
from shared.errors import BadRequest, DomainError, InvalidInput, NotFound, PayloadTooLarge

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
FEED_PAGE_LIMIT = 1000


# -- JSON helpers ---------------------------------------------------------------------------------------

def json_response(body, status: int = 200, headers=None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    headers=headers, content_type="application/json; charset=utf-8")


def error_response(exc: DomainError) -> Response:
    return json_response(exc.as_body(), exc.status)


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
        return SharedWsgiApp(self)

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
        builtin = {"/health": self.health, "/metrics": self.metrics, "/api/v1/events": self.events}.get(path)
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

    def events(self, request):
        """A service's events in position order, for catch-up and replay."""
        args = request.args
        containers = self.server.live_containers()
        service = args.get("service", "")
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
        storage = next(d for d in containers[service].dependencies if hasattr(d, "health_check"))
        if storage.db is None:
            error = DomainError(f"The {service} service is starting; try again shortly.", code="STARTING",
                                message_ar="الخدمة قيد التشغيل، يرجى المحاولة بعد قليل.")
            error.status = 503
            raise error
        types = [t for t in args.get("types", "").split(",") if t] or None  # e.g. booking.SlotBooked,...
        with storage.db.transaction() as uow:
            events = uow.store.read_all(after=after, limit=limit, types=types)
            head = uow.store.head()
        return json_response({"service": service, "after": after, "head": head,
                              "events": [e.to_dict() for e in events],
                              "next_after": events[-1].position if events else after})


# -- the entrypoint ------------------------------------------------------------------------------------

class ApiEndpoint(HttpRequestHandler):
    """A JSON endpoint: returns (status, body), a body (200) or None (204); DomainErrors become 4xx."""
    server = SharedWebServer()

    def __init__(self, method, url, **kwargs):
        super().__init__(method, url, expected_exceptions=(DomainError,), **kwargs)

    def handle_request(self, request):
        started = time.perf_counter()
        request.max_content_length = MAX_BODY_BYTES
        response = super().handle_request(request)
        metrics.HTTP_REQUESTS.labels(self.container.service_name, self.url, str(response.status_code)) \
            .observe(time.perf_counter() - started)
        return response

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
