"""The queue service: thin nameko glue over commands.py (decisions), domain.py (rules) and view.py."""
import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from nameko.dependency_providers import Config
from nameko.timer import timer
from shared import catalogue
from shared.auth import STAFF
from shared.clock import clock
from shared.contracts.fields import Day, validate_cpr
from shared.dependencies import Guard, Storage
from shared.errors import InvalidInput
from shared.messaging import apply_all_once, subscribe
from shared.schedule import local_day
from shared.openapi import documented
from services.queue import answers
from shared.web import api, parse_json, parse_query
from services.queue import audit, commands, projection, view
from services.queue.metrics import LiveMetrics

MANAGERS = ("branch_manager", "directorate_admin")

SERVICE_ID = validate.Regexp(r"[a-z0-9][a-z0-9-]{0,63}\Z")


class CheckIn(Schema):
    cpr = fields.String(required=True, validate=validate_cpr)
    reference = fields.String(load_default=None, validate=validate.Length(min=8, max=16))
    walk_in = fields.Boolean(load_default=False)
    service = fields.String(load_default=None, validate=SERVICE_ID)
    language = fields.String(load_default="ar", validate=validate.OneOf(["ar", "en"]))
    priority = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["elderly", "disabled"]))

    @validates_schema
    def one_way_in(self, data, **kwargs):
        if bool(data.get("reference")) == bool(data.get("walk_in")):
            raise ValidationError("Give either a booking reference, or walk_in: true with a service.", "reference")
        if data.get("walk_in") and not data.get("service"):
            raise ValidationError("A walk-in needs the service they came for.", "service")


class OpenCounter(Schema):
    services = fields.List(fields.String(validate=SERVICE_ID), required=True, validate=validate.Length(min=1, max=20))


class Transfer(Schema):
    service = fields.String(required=True, validate=SERVICE_ID)


class Rating(Schema):
    token = fields.String(required=True, validate=validate.Length(min=10, max=200))
    score = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class DayQuery(Schema):
    date = Day(load_default=None)


class AuditQuery(Schema):
    branch = fields.String(required=True, validate=SERVICE_ID)
    date = Day(required=True)


BATCH = 200  # booking's events waiting for this projection, applied in one transaction (shared/messaging.py)
CHECK_IN = CheckIn()  # built once: setting up a schema's fields is most of validating a small request
COUNTER_ID = re.compile(r"[A-Za-z0-9-]{1,16}")


def _counter(counter: str) -> str:
    if not COUNTER_ID.fullmatch(counter):
        raise InvalidInput("A counter is named by 1 to 16 letters, digits or dashes.", fields={"counter": ["1 to 16 letters, digits or dashes."]},
                           message_ar="اسم الشباك غير صحيح.")
    return counter


def _token(token: str) -> str:
    if not 10 <= len(token) <= 200:
        raise InvalidInput("A link's token is 10 to 200 characters.", fields={"token": ["Not a token."]},
                           message_ar="الرابط غير صحيح.")
    return token


class QueueService:
    name = "queue"
    db = Storage(projection.metadata)
    guard = Guard()
    config = Config()
    live_metrics = LiveMetrics()  # the waiting rooms' figures on /metrics, read when scraped

    # -- what the queue learns from the other services -------------------------------------------------
    @subscribe(projection.BOOKINGS_CONSUMER, batch=BATCH)
    def on_booking_event(self, events):
        apply_all_once(self.db, projection.BOOKINGS_CONSUMER, events, projection.apply_booking_event)
        if any(event.type == "booking.PersonErased" for event in events):
            commands.DAYS.forget(self.db)

    @subscribe("queue.erasures")
    def on_erasure(self, event):
        """In every replica: once the erasure is applied to the tables (by whichever replica consumes
        queue.bookings), forget the days kept in memory, which may still name the person."""
        commands.forget_days_after(self.db, projection.BOOKINGS_CONSUMER, event)

    on_catalogue_event = catalogue.keep_copy(projection.CATALOGUE_CONSUMER)

    @timer(interval=10)
    def housekeeping(self):
        """Unanswered recalls become no-shows; a branch's day closes after its closing time."""
        commands.housekeeping(self.db, clock.now())

    # -- the waiting room ------------------------------------------------------------------------------
    @api("POST", "/api/v1/branches/<branch>/check-ins", allow=("kiosk", *STAFF))
    @documented(body=CheckIn, answers={200: answers.CheckedIn, 201: answers.CheckedIn}, limited=True,
                summary="Check a person in: a booking, or a walk-in",
                description="`{reference, cpr}` or `{walk_in: true, cpr, service}`; the same booking again answers 200 "
                            "with the same ticket and link.",
                errors=("UNKNOWN_BRANCH", "UNKNOWN_SERVICE", "BOOKING_NOT_FOUND", "DAY_CLOSED", "WRONG_BRANCH",
                        "BOOKING_CANCELLED", "TOO_EARLY", "TOO_LATE", "BRANCH_CLOSED", "WALK_INS_NOT_TAKEN",
                        "WALK_IN_QUOTA_REACHED", "ALREADY_WAITING", "BUSY"))
    def check_in(self, request, branch):
        body = parse_json(request, CHECK_IN)
        limits = self.guard.limits
        if body["reference"]:  # a reference and a CPR that do not match count as a guess
            with limits.guessing("check_in", request.caller, body["cpr"]):
                return commands.check_in(self.db, branch, body, clock.now(), request.caller, *self._links())
        limits.count("check_in", request.caller, body["cpr"])
        return commands.check_in(self.db, branch, body, clock.now(), request.caller, *self._links())

    def _links(self) -> tuple[str, str]:
        """The key that signs a visit's links (ticket and feedback) and the base URL people open them at."""
        return self.config["MAWAEED_FEEDBACK_KEY"], self.config["MAWAEED_PUBLIC_URL"]

    @api("GET", "/api/v1/tickets/by-token/<token>")
    @documented(answers={200: answers.PublicTicket}, errors=("INVALID_INPUT", "TICKET_NOT_FOUND"))
    def ticket_by_token(self, request, token):
        """The live ticket behind the link on a printed ticket: public, nothing personal."""
        return commands.public_ticket(self.db, _token(token), self.config["MAWAEED_FEEDBACK_KEY"], clock.now())

    @api("POST", "/api/v1/branches/<branch>/counters/<counter>/open", allow=STAFF)
    @documented(body=OpenCounter, answers={200: answers.CounterState}, summary="Open a counter for some services",
                errors=("UNKNOWN_BRANCH", "UNKNOWN_SERVICE", "DAY_CLOSED", "BUSY"))
    def open_counter(self, request, branch, counter):
        services = parse_json(request, OpenCounter())["services"]
        return commands.open_counter(self.db, branch, _counter(counter), services, clock.now(), request.caller)

    @api("POST", "/api/v1/branches/<branch>/counters/<counter>/close", allow=STAFF)
    @documented(answers={200: answers.CounterState}, summary="Close a counter",
                errors=("INVALID_INPUT", "UNKNOWN_BRANCH", "COUNTER_BUSY", "BUSY"))
    def close_counter(self, request, branch, counter):
        return commands.close_counter(self.db, branch, _counter(counter), clock.now(), request.caller)

    @api("POST", "/api/v1/branches/<branch>/counters/<counter>/call-next", allow=STAFF)
    @documented(answers={200: answers.Called, 204: None}, summary="Call the next ticket to a counter",
                description="204 when nobody the counter serves waits.",
                errors=("INVALID_INPUT", "UNKNOWN_BRANCH", "DAY_CLOSED", "COUNTER_CLOSED", "COUNTER_BUSY", "BUSY"))
    def call_next(self, request, branch, counter):
        return commands.call_next(self.db, branch, _counter(counter), clock.now(), request.caller)

    @api("POST", "/api/v1/tickets/<ticket>/recall", allow=STAFF)
    @documented(answers={200: answers.TicketStep}, summary="Call a ticket again",
                errors=("TICKET_NOT_FOUND", "TICKET_NOT_CALLED", "RECALL_LIMIT", "RECALL_TOO_SOON", "BUSY"))
    def recall(self, request, ticket):
        return commands.recall(self.db, ticket, clock.now(), request.caller)

    @api("POST", "/api/v1/tickets/<ticket>/served", allow=STAFF)
    @documented(answers={200: answers.Served}, summary="The ticket's visit is done",
                errors=("TICKET_NOT_FOUND", "TICKET_NOT_CALLED", "BUSY"))
    def served(self, request, ticket):
        return commands.served(self.db, ticket, clock.now(), self.config["MAWAEED_FEEDBACK_KEY"],
                               self.config["MAWAEED_PUBLIC_URL"], request.caller)

    @api("POST", "/api/v1/tickets/<ticket>/no-show", allow=STAFF)
    @documented(answers={200: answers.TicketStep}, summary="The ticket's person did not come",
                errors=("TICKET_NOT_FOUND", "TICKET_NOT_CALLED", "BUSY"))
    def no_show(self, request, ticket):
        return commands.no_show(self.db, ticket, clock.now(), request.caller)

    @api("POST", "/api/v1/tickets/<ticket>/transfer", allow=STAFF)
    @documented(body=Transfer, answers={200: answers.TicketStep}, summary="Send a ticket to another service's queue",
                errors=("TICKET_NOT_FOUND", "UNKNOWN_SERVICE", "TICKET_FINISHED", "SAME_SERVICE", "BUSY"))
    def transfer(self, request, ticket):
        return commands.transfer(self.db, ticket, parse_json(request, Transfer())["service"], clock.now(),
                                 request.caller)

    @api("GET", "/api/v1/branches/<branch>/queue", allow=STAFF)
    @documented(query=DayQuery, answers={200: answers.WaitingRoom}, errors=("UNKNOWN_BRANCH",))
    def waiting_room(self, request, branch):
        """The full waiting room, for the branch's staff."""
        now = clock.now()
        day = parse_query(request, DayQuery())["date"] or local_day(now)
        return commands.waiting_room(self.db, branch, day, now, request.caller)

    @api("GET", "/api/v1/branches/<branch>/board")
    @documented(answers={200: answers.Board}, errors=("UNKNOWN_BRANCH",))
    def board(self, request, branch):
        """The public board of the hall: ticket numbers and counters only."""
        now = clock.now()
        return commands.waiting_room(self.db, branch, local_day(now), now, shown=view.board)

    @api("POST", "/api/v1/branches/<branch>/close-day", allow=MANAGERS)
    @documented(query=DayQuery, answers={200: answers.DayClosed}, summary="Close the branch's day now",
                errors=("UNKNOWN_BRANCH", "BUSY"))
    def close_day(self, request, branch):
        day = parse_query(request, DayQuery())["date"] or local_day(clock.now())
        return commands.close_day(self.db, branch, day, request.caller)

    @api("GET", "/api/v1/audit", allow=("auditor", *MANAGERS))
    @documented(query=AuditQuery, answers={200: answers.AuditTrail}, errors=("UNKNOWN_BRANCH",))
    def audit(self, request):
        """Who did what at a branch on a day: auditors anywhere, managers at their places."""
        query = parse_query(request, AuditQuery())
        if not request.caller.principal.has("auditor"):
            commands.require_place(self.db, query["branch"], request.caller)
        return {"branch": query["branch"], "date": query["date"].isoformat(),
                "entries": audit.trail(self.db, query["branch"], query["date"])}

    # -- satisfaction ----------------------------------------------------------------------------------
    @api("POST", "/api/v1/feedback")
    @documented(body=Rating, answers={201: answers.Rated}, limited=True, summary="Rate a visit (once per link)",
                errors=("FEEDBACK_TOKEN_UNKNOWN", "TICKET_NOT_FOUND", "VISIT_NOT_SERVED", "FEEDBACK_ALREADY_GIVEN",
                        "BUSY"))
    def feedback(self, request):
        self.guard.limits.count("feedback", request.caller)
        body = parse_json(request, Rating())
        return 201, commands.rate(self.db, body["token"], body["score"], body["comment"],
                                  self.config["MAWAEED_FEEDBACK_KEY"])

    @api("GET", "/api/v1/feedback/<token>")
    @documented(answers={200: answers.FeedbackLink}, errors=("INVALID_INPUT", "FEEDBACK_TOKEN_UNKNOWN"))
    def feedback_status(self, request, token):
        """What a feedback link is about, and whether it was used (the feedback page asks before its form)."""
        return commands.feedback_status(self.db, _token(token), self.config["MAWAEED_FEEDBACK_KEY"])
