"""The HTTP API as a published contract: an OpenAPI 3.1 document built from what the routes declare.

Each @api route under /api/ says, next to it, what it takes and what it answers with `@documented(...)`: the
marshmallow schemas it loads its query and body with, the schema of each answer, and the error codes it can give
beyond those every route shares. Who may call it comes from the route's own `allow`. The built-in routes of the
shared server (/health, /metrics, the events feed, /.well-known/*, this document) are described in BUILTINS.
The pages of the web service (outside /api/) are for browsers and not part of this contract.

The document (GET /api/v1/openapi.json) and its reference page (GET /api/docs, server-rendered HTML without
scripts, its stylesheet from the same server) are built-ins of every service's server, as /health is.
tests/contract/test_openapi.py fails when a route has no entry; tests/e2e/test_schemathesis.py holds the running
suite's answers to the document.
"""
import functools
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from marshmallow import INCLUDE, Schema, fields, validate
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from werkzeug.wrappers import Response

TEMPLATES = Path(__file__).resolve().parent / "templates"
DOCUMENT_PATH, PAGE_PATH, STYLE_PATH = "/api/v1/openapi.json", "/api/docs", "/api/docs/docs.css"


class OpenApiError(Exception):
    """The document cannot be built: a route without its entry, an error code nobody described."""


# -- what a route declares --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Content:
    """An answer that is not a marshmallow schema's JSON: a stream, a page, a JSON Schema of its own."""
    media_type: str
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    answers: dict                  # status -> an answer Schema (JSON), None (no body) or a Content
    query: type | None = None      # the marshmallow schema the route loads its query string with
    body: type | None = None       # ... and its JSON body with
    errors: tuple = ()             # the error codes of this route, beyond the shared ones
    cpr_header: bool = False       # whose booking it is may come in the X-CPR header
    limited: bool = False          # abuse limits apply (429)
    summary: str | None = None     # else the first line of the route's docstring
    description: str | None = None


def documented(*, answers: dict, query=None, body=None, errors=(), cpr_header=False, limited=False,
               summary=None, description=None):
    """The route's entry in the OpenAPI document; put it beside its `@api(...)`."""
    def mark(function):
        function.openapi = Operation(answers, query, body, tuple(errors), cpr_header, limited, summary, description)
        return function
    return mark


class Answer(Schema):
    """An answer: its fields are all of it (additionalProperties false), so the contract shows every field."""


# -- errors -----------------------------------------------------------------------------------------------

class ErrorDetail(Answer):
    code = fields.String(required=True, metadata={"description": "Stable and machine-readable: act on this."})
    message = fields.String(required=True, metadata={"description": "For people, in English."})
    message_ar = fields.String(metadata={"description": "For people, in Arabic."})
    fields_ = fields.Dict(data_key="fields", metadata={"description": "What is wrong with each field (422)."})


class Error(Answer):
    """An error: its code, and a message in English and Arabic."""
    error = fields.Nested(ErrorDetail, required=True)


# Every error code the API gives: its status and what it means. Routes name theirs in `errors=`.
ERRORS = {
    "BAD_REQUEST": (400, "The request cannot be read (a Content-Length that is not a number, a query string "
                         "that is not UTF-8)."),
    "MALFORMED_JSON": (400, "The body is not a JSON object, or could not be read."),
    "CPR_IN_URL": (400, "A CPR was sent in the URL; send it in the body or the X-CPR header."),
    "UNAUTHENTICATED": (401, "No valid bearer token where one is needed, or a bad one (with WWW-Authenticate)."),
    "FORBIDDEN": (403, "The token's role or place does not allow this."),
    "CHALLENGE_REQUIRED": (403, "Bookings need a solved challenge today (GET /api/v1/challenge)."),
    "NOT_FOUND": (404, "Nothing is here."),
    "UNKNOWN_DIRECTORATE": (404, "No such directorate."),
    "UNKNOWN_BRANCH": (404, "No such branch."),
    "UNKNOWN_SERVICE": (404, "The branch does not offer this service (the feed: no such service log)."),
    "BOOKING_NOT_FOUND": (404, "No booking has this reference and CPR (the two look the same)."),
    "TICKET_NOT_FOUND": (404, "No such ticket, or a link that is not genuine."),
    "FEEDBACK_TOKEN_UNKNOWN": (404, "A feedback link that is not genuine."),
    "PERSON_UNKNOWN": (404, "Nobody with this CPR is known to the suite."),
    "REQUEST_TIMEOUT": (408, "The body did not arrive in time."),
    "BODY_TOO_LARGE": (413, "The body is over 16 KiB."),
    "INVALID_INPUT": (422, "Fields missing or invalid: `fields` says what is wrong with each."),
    "RATE_LIMITED": (429, "Too many requests from this address or for this CPR (with Retry-After)."),
    "BUSY": (409, "Lost 20 races in a row to other requests changing the same thing: try again."),
    "SLOT_UNAVAILABLE": (409, "No slot of this service starts then (closed, a holiday, not a slot's start)."),
    "SLOT_FULL": (409, "The slot is fully booked."),
    "SLOT_IN_PAST": (409, "The time has passed."),
    "TOO_SOON": (409, "Closer than the branch's minimum notice."),
    "OUTSIDE_BOOKING_WINDOW": (409, "Further ahead than the branch takes bookings."),
    "ALREADY_BOOKED": (409, "The person has an active booking for this service."),
    "BOOKING_LIMIT": (409, "The person has the most active bookings allowed."),
    "BOOKING_STARTED": (409, "The appointment has started."),
    "BOOKING_CANCELLED": (409, "The booking was cancelled."),
    "DAY_CLOSED": (409, "The branch's waiting room has closed for the day."),
    "WRONG_BRANCH": (409, "The booking is for another branch."),
    "TOO_EARLY": (409, "Check-in for this appointment has not opened yet."),
    "TOO_LATE": (409, "Check-in for this appointment has closed (a walk-in is still possible)."),
    "BRANCH_CLOSED": (409, "The branch is not open now."),
    "WALK_INS_NOT_TAKEN": (409, "This service takes appointments only."),
    "WALK_IN_QUOTA_REACHED": (409, "The service's walk-ins for today are all taken."),
    "ALREADY_WAITING": (409, "The person is already waiting for this service."),
    "COUNTER_CLOSED": (409, "The counter is not open."),
    "COUNTER_BUSY": (409, "The counter still serves a ticket."),
    "TICKET_NOT_CALLED": (409, "The ticket is not called."),
    "RECALL_LIMIT": (409, "The ticket was recalled the most times allowed."),
    "RECALL_TOO_SOON": (409, "Too soon after the last call."),
    "TICKET_FINISHED": (409, "The ticket is finished."),
    "SAME_SERVICE": (409, "The ticket is already in that queue."),
    "VISIT_NOT_SERVED": (409, "Only a served visit can be rated."),
    "FEEDBACK_ALREADY_GIVEN": (409, "The visit was rated already."),
    "SERVICE_UNAVAILABLE": (503, "The service does not answer (distributed mode, from the gateway): try again."),
    "STARTING": (503, "The service is starting: try again shortly."),
    "OVERLOADED": (503, "The service is busy: try again shortly (with Retry-After)."),
    # Not of one route: a path nobody serves, a method it does not take, a request line over 8 KiB.
    "METHOD_NOT_ALLOWED": (405, "The path does not take this method (with Allow)."),
    "URI_TOO_LONG": (414, "The URL is too long."),
}
# Every service route: a bad token (even on a public route), a service that does not answer or is busy.
SHARED_ERRORS = ("UNAUTHENTICATED", "SERVICE_UNAVAILABLE", "OVERLOADED")
DOOR_ERRORS = ("BAD_REQUEST", "MALFORMED_JSON", "REQUEST_TIMEOUT", "BODY_TOO_LARGE")  # a body is read: not GET
BODY_ERRORS = ("INVALID_INPUT",)
QUERY_ERRORS = ("BAD_REQUEST", "INVALID_INPUT")
RESPONSE_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer realm=\"mawaeed\"`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds until a request is taken again.", "schema": {"type": "string"}},
          "RateLimit-Limit": {"description": "The limit that was reached.", "schema": {"type": "string"}}},
}


# -- parameters -------------------------------------------------------------------------------------------

PATH_PARAMETERS = {
    "branch": {"description": "A branch's id (GET /api/v1/branches).",
               "schema": {"type": "string", "minLength": 1, "maxLength": 64}, "example": "npra-isa-town"},
    "reference": {"description": "A booking reference: any case, with or without the dash.",
                  "schema": {"type": "string", "minLength": 1, "maxLength": 16}, "example": "K7MX-9QRD"},
    "counter": {"description": "A counter's name: 1 to 16 letters, digits or dashes.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 16}, "example": "5"},
    "ticket": {"description": "A ticket's id (from a check-in, call-next or the waiting room).",
               "schema": {"type": "string", "minLength": 1, "maxLength": 64},
               "example": "25fda69b-ff07-47cb-b1f1-29ee0a2867b1"},
    "token": {"description": "The token of a ticket or feedback link (10 to 200 characters).",
              "schema": {"type": "string", "minLength": 1, "maxLength": 200},
              "example": "25fda69b-ff07-47cb-b1f1-29ee0a2867b1.zUQjYXttuOM3LkPvla1J"},
}
CPR_HEADER = {"name": "X-CPR", "in": "header", "required": False, "schema": {"type": "string", "pattern": r"^\d{9}$"},
              "description": "Whose booking it is, when no citizen's token says it (never a CPR in a URL)."}


def openapi_path(url: str) -> str:
    """A werkzeug rule as an OpenAPI path: `/tickets/<ticket>/recall` -> `/tickets/{ticket}/recall`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", url)


# -- the built-in routes ----------------------------------------------------------------------------------

class Health(Answer):
    """Every service and its database answer (200), or not (503)."""
    status = fields.String(required=True, validate=validate.OneOf(["ok", "failing"]))
    services = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                           metadata={"description": "Each service: `ok`, `starting: <what>`, `failing: <reason>` "
                                                    "or `not answering`."})


class Live(Answer):
    """The process answers (no database is asked)."""
    status = fields.String(required=True, validate=validate.Equal("ok"))


class EventsQuery(Schema):
    service = fields.String(required=True, validate=validate.OneOf(["availability", "booking", "notifications",
                                                                   "queue"]),
                            metadata={"description": "Whose log."})
    after = fields.Integer(load_default=0, validate=validate.Range(min=0),
                           metadata={"description": "The position to read after (0: from the start)."})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    types = fields.String(metadata={"description": "Only these event types, comma-separated "
                                                   "(`booking.SlotBooked,booking.BookingCancelled`)."})


class FeedPage(Answer):
    """A page of a service's events in position order; personal fields pseudonymised unless the subscriber's
    token has `events:personal`."""
    service = fields.String(required=True)
    after = fields.Integer(required=True)
    head = fields.Integer(required=True, metadata={"description": "The log's last position now."})
    events = fields.List(fields.Dict(), required=True)  # EventEnvelope: see build()
    next_after = fields.Integer(required=True, metadata={"description": "`after` of the next page."})


class Discovery(Schema):
    """The development issuer's OpenID Connect discovery document (only while the suite is its own issuer)."""
    class Meta:
        unknown = INCLUDE  # and the other fields OpenID Connect Discovery defines

    issuer = fields.String(required=True)
    jwks_uri = fields.String(required=True)


class KeySet(Schema):
    """The development issuer's public signing keys (JWKS)."""
    keys = fields.List(fields.Dict(), required=True, metadata={"description": "JSON Web Keys (RFC 7517)."})


BUILTINS = [  # (method, path, allow, Operation): served by every service's server (shared/web.py)
    ("GET", "/health", None, Operation(
        {200: Health, 503: Health}, summary="Readiness (as /health/ready)")),
    ("GET", "/health/ready", None, Operation(
        {200: Health, 503: Health}, summary="Readiness: every service and its database answer, and have started")),
    ("GET", "/health/live", None, Operation({200: Live}, summary="Liveness: the process answers")),
    ("GET", "/metrics", None, Operation(
        {200: Content("text/plain", "Prometheus text format.")}, summary="Prometheus metrics",
        description="HTTP latency by route and status, events appended, published and handled, outbox depth, "
                    "retries, dead letters (Prometheus text format).")),
    ("GET", "/api/v1/events", ("analyst", "subscriber"), Operation(
        {200: Content("application/json", inspect.getdoc(FeedPage), {"$ref": "#/components/schemas/FeedPage"})},
        query=EventsQuery, errors=("UNAUTHENTICATED", "INVALID_INPUT", "UNKNOWN_SERVICE", "STARTING",
                                   "SERVICE_UNAVAILABLE"),
        summary="A service's events in position order",
        description="For catch-up and replay. Analysts read every feed, pseudonymised; a subscriber reads the "
                    "feeds its `events:<service>` scopes name, personal fields in clear only with "
                    "`events:personal`.")),
    ("GET", "/.well-known/openid-configuration", None, Operation(
        {200: Discovery}, errors=("NOT_FOUND",), summary="The development issuer's discovery document",
        description="Only when the suite is its own issuer (MAWAEED_OIDC_ISSUER unset); else 404.")),
    ("GET", "/.well-known/jwks.json", None, Operation(
        {200: KeySet}, errors=("NOT_FOUND",), summary="The development issuer's signing keys",
        description="Only when the suite is its own issuer (MAWAEED_OIDC_ISSUER unset); else 404.")),
    ("GET", DOCUMENT_PATH, None, Operation(
        {200: Content("application/json", "This document.", {"type": "object"})},
        summary="This document (OpenAPI 3.1)")),
    ("GET", PAGE_PATH, None, Operation(
        {200: Content("text/html", "The reference page (HTML, no scripts).")},
        summary="This document as a page for people")),
    ("GET", STYLE_PATH, None, Operation(
        {200: Content("text/css", "The stylesheet.")}, summary="The page's stylesheet")),
]


# -- the document -----------------------------------------------------------------------------------------

def published(url: str) -> bool:
    """Whether a service route belongs to the API contract (the pages, outside /api/, do not)."""
    return url.startswith("/api/")


def declared(service_cls) -> list:
    """(function, endpoint) of every @api route of a service class, as shared.web.api_routes finds them."""
    from shared.web import ApiEndpoint
    return [(function, entrypoint) for _, function in inspect.getmembers(service_cls, inspect.isfunction)
            for entrypoint in getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ())
            if isinstance(entrypoint, ApiEndpoint)]


def _error_responses(codes) -> dict:
    by_status = {}
    for code in codes:
        if code not in ERRORS:
            raise OpenApiError(f"the error code {code} is not described in shared/openapi.py ERRORS")
        by_status.setdefault(ERRORS[code][0], []).append(code)
    responses = {}
    for status, listed in sorted(by_status.items()):
        listed = sorted(set(listed))
        responses[str(status)] = {
            "description": " ".join(f"`{c}`: {ERRORS[c][1]}" for c in listed),
            "x-error-codes": listed,
            "content": {"application/json": {"schema": {
                "allOf": [{"$ref": "#/components/schemas/Error"}],
                "properties": {"error": {"properties": {"code": {"enum": listed}}}}}}},
            **({"headers": RESPONSE_HEADERS[status]} if status in RESPONSE_HEADERS else {}),
        }
    return responses


def _answer(status: int, answer) -> dict:
    if answer is None:
        return {"description": "No content."}
    if isinstance(answer, Content):
        return {"description": answer.description, "content": {answer.media_type: {"schema": answer.schema}}}
    doc = inspect.getdoc(answer) or "OK."
    return {"description": doc, "content": {"application/json": {"schema": answer}}}


def _operation(service: str, name: str, doc: str | None, method: str, url: str, allow, op: Operation,
               builtin: bool = False) -> dict:
    lines = (doc or "").strip().splitlines()
    summary = op.summary or (lines[0] if lines else name.replace("_", " "))
    description = op.description or " ".join(line.strip() for line in lines[1:]).strip()
    if allow:
        description = f"{description}\n\nRoles: {', '.join(allow)}.".strip()
    parameters = [{"name": arg, "in": "path", "required": True, **PATH_PARAMETERS[arg]}
                  for arg in re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", url)]
    if op.query:
        parameters.append({"in": "query", "schema": op.query})
    if op.cpr_header:
        parameters.append(dict(CPR_HEADER))
    # the shared ones step aside for an answer of the same status (/health's own 503)
    codes = list(op.errors)
    if not builtin:  # the built-ins say all theirs
        codes += [c for c in SHARED_ERRORS if ERRORS[c][0] not in op.answers]
        codes += DOOR_ERRORS if method != "GET" else ()
        codes += QUERY_ERRORS if op.query else ()
    codes += BODY_ERRORS if op.body else ()
    if allow:
        codes.append("FORBIDDEN")
    if op.limited:
        codes.append("RATE_LIMITED")
    responses = {str(status): _answer(status, answer) for status, answer in sorted(op.answers.items())}
    for status, error in _error_responses(codes).items():
        if status in responses:
            raise OpenApiError(f"{name}: {status} is both an answer and an error")
        responses[status] = error
    operation = {"operationId": f"{service}.{name}", "tags": [service], "summary": summary,
                 "parameters": parameters, "responses": responses,
                 # public routes take a token too (a citizen's); the others need one with a role in x-roles
                 "security": [{"bearer": []}] if allow else [{}, {"bearer": []}]}
    if description:
        operation["description"] = description
    if allow:
        operation["x-roles"] = list(allow)
    if op.body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    return operation


def build(services: dict | None = None) -> dict:
    """The OpenAPI 3.1 document of `services` (name -> class; default: the suite's) and the built-ins."""
    from services.cli import SERVICES, service_classes
    from services.cli.event_catalogue import ENVELOPE_SCHEMA, _dict_keys, _ecma_patterns

    if services is None:
        services = dict(zip(SERVICES, service_classes(SERVICES)))
    plugin = MarshmallowPlugin()
    spec = APISpec(title="Mawaeed API (مواعيد)", version="1", openapi_version="3.1.0", plugins=[plugin], info={
        "description": "Appointments and queues for government service centres: the catalogue, slot search, "
                       "booking and the waiting room. JSON in and out; errors are `{\"error\": {code, message, "
                       "message_ar, fields?}}`. Roles are checked per route (`x-roles`) and per place (a clerk at "
                       "its branches)."})
    for func in (_ecma_patterns, _validators, _dict_keys):
        plugin.converter.add_attribute_function(func)
    spec.components.security_scheme("bearer", {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An OpenID Connect token of the suite's issuer (RS256/ES256); its roles, branches, "
                       "directorates and scopes say what it may do."})
    spec.components.schema("Error", schema=Error)
    feed = plugin.converter.schema2jsonschema(FeedPage)
    feed["properties"]["events"]["items"] = {"$ref": "#/components/schemas/EventEnvelope"}
    spec.components.schema("FeedPage", component=feed)
    spec.components.schema("EventEnvelope", component={k: v for k, v in ENVELOPE_SCHEMA.items()
                                                       if k not in ("$schema", "title")})
    paths: dict[str, dict] = {}
    for method, url, allow, op in BUILTINS:
        paths.setdefault(url, {})[method.lower()] = _operation("suite", _builtin_name(url), None, method, url, allow, op,
                                                                    builtin=True)
    for service, service_cls in services.items():
        for function, endpoint in declared(service_cls):
            if not published(endpoint.url):
                continue
            op = getattr(function, "openapi", None)
            if op is None:
                raise OpenApiError(f"{endpoint.method} {endpoint.url} ({service}.{function.__name__}) has no "
                                   "@documented(...) entry (shared/openapi.py)")
            paths.setdefault(openapi_path(endpoint.url), {})[endpoint.method.lower()] = _operation(
                service, function.__name__, inspect.getdoc(function), endpoint.method, endpoint.url, endpoint.allow,
                op)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _validators(self, field, **kwargs) -> dict:
    """What apispec cannot read of a field's validators, as the event catalogue describes them; an email's
    format apispec gives already."""
    from services.cli.event_catalogue import DESCRIBED_VALIDATORS, FUNCTION_VALIDATORS
    extra = {}
    for validator in field.validators:
        if isinstance(validator, (*DESCRIBED_VALIDATORS, validate.Email)):
            continue
        if validator not in FUNCTION_VALIDATORS:
            raise OpenApiError(f"cannot describe the validator {validator!r} of {field!r}: add it to "
                               "FUNCTION_VALIDATORS in services/cli/event_catalogue.py")
        extra.update(FUNCTION_VALIDATORS[validator])
    return extra


def _builtin_name(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", url.lower()).strip("_")


@functools.cache
def document_json() -> str:
    return json.dumps(build(), ensure_ascii=False, indent=1)


# -- the built-in routes that serve it --------------------------------------------------------------------

def document(request) -> Response:
    return Response(document_json(), content_type="application/json; charset=utf-8")


@functools.cache
def _page() -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    spec = json.loads(document_json())
    return env.get_template("api_docs.html").render(spec=spec, schemas=spec["components"]["schemas"],
                                                    style=STYLE_PATH, document=DOCUMENT_PATH, fmt=_fmt,
                                                    schema_link=_schema_link)


def _schema_link(schema: dict | None) -> Markup:
    """A schema in a few words, its named schemas linked to their tables further down the page."""
    if not schema:
        return Markup("")
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return Markup('<a href="#schema-{0}">{0}</a>').format(name)
    for key, joint in (("allOf", " & "), ("anyOf", " | "), ("oneOf", " | ")):
        if key in schema:
            return Markup(joint).join(_schema_link(s) for s in schema[key])
    if schema.get("type") == "array" or "items" in schema:
        return Markup("[{}]").format(_schema_link(schema.get("items")))
    return Markup("{}").format(_fmt(schema))


def _fmt(schema: dict | None) -> str:
    """A JSON Schema in a few words, for the page's tables."""
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for key, joint in (("allOf", " & "), ("anyOf", " | "), ("oneOf", " | ")):
        if key in schema:
            return joint.join(_fmt(s) for s in schema[key])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    if kind == "array" or "items" in schema:
        return f"[{_fmt(schema.get('items'))}]"
    extra = [f"{k} {schema[k]}" for k in ("format", "pattern", "minLength", "maxLength", "minimum", "maximum")
             if k in schema]
    if "enum" in schema:
        extra.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    return kind + (f" ({'; '.join(extra)})" if extra else "")


def page(request) -> Response:
    return Response(_page(), content_type="text/html; charset=utf-8")


def stylesheet(request) -> Response:
    return Response((TEMPLATES / "api_docs.css").read_bytes(), content_type="text/css; charset=utf-8")
