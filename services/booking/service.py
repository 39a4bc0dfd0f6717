"""The booking service: thin nameko glue over commands.py (decisions) and rules.py (the rules)."""
from marshmallow import Schema, fields, validate
from nameko.dependency_providers import Config

from shared import catalogue
from shared.clock import clock
from shared.contracts.booking import CHANNELS
from shared.contracts.fields import validate_cpr
from shared.messaging import subscribe
from shared.dependencies import Storage
from shared.web import api, parse_json, parse_query
from services.booking import commands, projection


class Cpr(Schema):
    cpr = fields.String(required=True, validate=validate_cpr)


class BookingRequest(Cpr):
    branch = fields.String(required=True, validate=validate.Length(min=1, max=64))
    service = fields.String(required=True, validate=validate.Length(min=1, max=64))
    start = fields.AwareDateTime(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    mobile = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"\+?[0-9]{8,15}\Z"))
    email = fields.Email(load_default=None, allow_none=True)
    language = fields.String(required=True, validate=validate.OneOf(["ar", "en"]))
    channel = fields.String(load_default="web", validate=CHANNELS)  # how the booking is made


class RescheduleRequest(Cpr):
    start = fields.AwareDateTime(required=True)


# Built once: a schema's fields are set up when it is made, and that is most of a small request's validation.
BOOKING_REQUEST, CPR_ONLY, RESCHEDULE_REQUEST = BookingRequest(), Cpr(), RescheduleRequest()


class BookingService:
    name = "booking"
    db = Storage(projection.metadata)
    config = Config()

    on_catalogue_event = catalogue.keep_copy(projection.CATALOGUE_CONSUMER)

    @subscribe("booking.missed")
    def on_appointment_missed(self, event):
        commands.expire(self.db, "booking.missed", event)

    @api("POST", "/api/v1/bookings")
    def book(self, request):
        booking = parse_json(request, BOOKING_REQUEST)
        return 201, commands.book(self.db, booking, clock.now(), self.config["MAWAEED_MAX_ACTIVE_BOOKINGS"])

    @api("GET", "/api/v1/bookings/<reference>")
    def get(self, request, reference):
        return commands.get(self.db, reference, parse_query(request, CPR_ONLY)["cpr"])

    @api("POST", "/api/v1/bookings/<reference>/cancel")
    def cancel(self, request, reference):
        return commands.cancel(self.db, reference, parse_json(request, CPR_ONLY)["cpr"], clock.now())

    @api("POST", "/api/v1/bookings/<reference>/reschedule")
    def reschedule(self, request, reference):
        body = parse_json(request, RESCHEDULE_REQUEST)
        return commands.reschedule(self.db, reference, body["cpr"], body["start"], clock.now())
