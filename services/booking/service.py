"""The booking service: thin nameko glue, requests and messages in, commands.py (which decides with rules.py) out."""
from marshmallow import Schema, fields, validate
from nameko.dependency_providers import Config

from shared.clock import clock
from shared.contracts.booking import CHANNELS
from shared.contracts.fields import Moment, validate_cpr
from shared.messaging import subscribe
from shared.dependencies import Guard, Storage
from shared.auth import forbidden
from shared.errors import InvalidInput
from shared.openapi import documented
from services.booking import answers
from shared.web import api, parse_json, person_cpr
from services.booking import commands, projection, withdrawals


class Cpr(Schema):
    # the person's CPR: required, unless a signed-in citizen's token gives it (shared.web.person_cpr)
    cpr = fields.String(load_default=None, validate=validate_cpr)


class BookingRequest(Cpr):
    branch = fields.String(required=True, validate=validate.Length(min=1, max=64))
    service = fields.String(required=True, validate=validate.Length(min=1, max=64))
    start = Moment(required=True)
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=200))  # a citizen's: their token's
    mobile = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"\+?[0-9]{8,15}\Z"))
    email = fields.Email(load_default=None, allow_none=True)
    language = fields.String(required=True, validate=validate.OneOf(["ar", "en"]))
    channel = fields.String(load_default="web", validate=CHANNELS)  # how the booking is made
    altcha = fields.String(load_default=None, validate=validate.Length(max=4000))  # a solved release-day challenge


class RescheduleRequest(Cpr):
    start = Moment(required=True)


class Erasure(Schema):
    cpr = fields.String(required=True, validate=validate_cpr)
    reason = fields.String(required=True, validate=validate.Length(min=5, max=500))


# Built once: a schema's fields are set up when it is made, and that is most of a small request's validation.
BOOKING_REQUEST, CPR_ONLY, RESCHEDULE_REQUEST = BookingRequest(), Cpr(), RescheduleRequest()
NAME_REQUIRED = InvalidInput("Some fields are missing or invalid.", message_ar="بعض الحقول ناقصة أو غير صحيحة.",
                             fields={"name": ["The person's full name is required."]})


class BookingService:
    name = "booking"
    db = Storage(projection.metadata)
    guard = Guard()
    config = Config()

    @subscribe(projection.CATALOGUE_CONSUMER)
    def on_catalogue_event(self, event):
        """Keep the copy of the catalogue; cancel the bookings a shrinking catalogue leaves without a place."""
        withdrawals.on_catalogue_event(self.db, projection.CATALOGUE_CONSUMER, event, clock.now())

    @subscribe("booking.missed")
    def on_appointment_missed(self, event):
        commands.expire(self.db, "booking.missed", event)

    @api("POST", "/api/v1/bookings")
    @documented(body=BookingRequest, answers={201: answers.Booking}, limited=True, summary="Book a slot",
                description="A citizen's token gives `cpr` and `name`; `altcha`: a solved challenge, required when "
                            "MAWAEED_BOOKING_CHALLENGE is on.",
                errors=("CPR_IN_URL", "FORBIDDEN", "CHALLENGE_REQUIRED", "UNKNOWN_BRANCH", "UNKNOWN_SERVICE",
                        "SLOT_UNAVAILABLE", "SLOT_FULL", "SLOT_IN_PAST", "TOO_SOON", "OUTSIDE_BOOKING_WINDOW",
                        "ALREADY_BOOKED", "BOOKING_LIMIT", "BUSY"))
    def book(self, request):
        limits = self.guard.limits
        limits.count("booking", request.caller)  # by address first: even a malformed request counts
        booking = parse_json(request, BOOKING_REQUEST)
        booking["cpr"] = person_cpr(request, booking["cpr"])
        booking["name"] = booking["name"] or request.caller.principal.name
        if not booking["name"]:
            raise NAME_REQUIRED
        limits.hit("booking", cpr=booking["cpr"])
        self.guard.challenge.check(booking.pop("altcha"))
        return 201, commands.book(self.db, booking, clock.now(), self.config["MAWAEED_MAX_ACTIVE_BOOKINGS"])

    @api("GET", "/api/v1/challenge")
    @documented(answers={200: answers.Challenge})
    def challenge(self, request):
        """A fresh release-day challenge (ALTCHA) to solve before booking, when MAWAEED_BOOKING_CHALLENGE is on."""
        return {**self.guard.challenge.new(), "required": self.guard.challenge.on}

    @api("GET", "/api/v1/bookings/<reference>")
    @documented(answers={200: answers.Booking}, cpr_header=True, limited=True, summary="A booking",
                description="To its person only: a reference and CPR that do not match look like an unknown reference.",
                errors=("CPR_IN_URL", "INVALID_INPUT", "FORBIDDEN", "BOOKING_NOT_FOUND"))
    def get(self, request, reference):
        cpr = person_cpr(request)
        with self.guard.limits.guessing("read", request.caller, cpr):
            return commands.get(self.db, reference, cpr)

    @api("POST", "/api/v1/bookings/<reference>/cancel")
    @documented(body=Cpr, answers={200: answers.Booking}, limited=True, summary="Cancel a booking",
                description="Cancelling twice is not an error.",
                errors=("CPR_IN_URL", "FORBIDDEN", "BOOKING_NOT_FOUND", "BOOKING_STARTED", "BUSY"))
    def cancel(self, request, reference):
        cpr = person_cpr(request, parse_json(request, CPR_ONLY)["cpr"])
        with self.guard.limits.guessing("change", request.caller, cpr):
            return commands.cancel(self.db, reference, cpr, clock.now())

    @api("POST", "/api/v1/bookings/<reference>/reschedule")
    @documented(body=RescheduleRequest, answers={200: answers.Booking}, limited=True,
                summary="Move a booking to another time (same reference)",
                errors=("CPR_IN_URL", "FORBIDDEN", "BOOKING_NOT_FOUND", "BOOKING_CANCELLED", "BOOKING_STARTED",
                        "UNKNOWN_BRANCH", "UNKNOWN_SERVICE", "SLOT_UNAVAILABLE", "SLOT_FULL", "SLOT_IN_PAST",
                        "TOO_SOON", "OUTSIDE_BOOKING_WINDOW", "ALREADY_BOOKED", "BUSY"))
    def reschedule(self, request, reference):
        body = parse_json(request, RESCHEDULE_REQUEST)
        cpr = person_cpr(request, body["cpr"])
        with self.guard.limits.guessing("change", request.caller, cpr):
            return commands.reschedule(self.db, reference, cpr, body["start"], clock.now())

    @api("GET", "/api/v1/me/bookings", allow=("citizen",))
    @documented(answers={200: answers.MyBookings})
    def my_bookings(self, request):
        """A signed-in citizen's bookings, at every branch of every directorate."""
        if not request.caller.principal.cpr:
            raise forbidden("This token names no person (its national-eID claim is missing).")
        return {"bookings": commands.bookings_of(self.db, request.caller.principal.cpr)}

    @api("POST", "/api/v1/people/erase", allow=("system_admin",))
    @documented(body=Erasure, answers={200: answers.Erased}, errors=("PERSON_UNKNOWN",))
    def erase(self, request):
        """Forget a person (crypto-shredding), over HTTP: the CPR in the body, never in the URL, and a reason."""
        body = parse_json(request, Erasure())
        return commands.erase(self.db, body["cpr"], {**request.caller.actor, "reason": body["reason"]})
