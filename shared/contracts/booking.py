"""Contracts of the booking service. A slot's stream carries the bookings that take or free its places."""
from marshmallow import Schema, fields, validate

from shared.contracts import contract
from shared.contracts.fields import Id, Instant, Name, validate_cpr

LANGUAGES = validate.OneOf(["ar", "en"])


class Person(Schema):
    cpr = fields.String(required=True, validate=validate_cpr)
    name = Name()
    mobile = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    language = fields.String(required=True, validate=LANGUAGES)


@contract("booking.SlotBooked", 1, "A person booked a place in a slot at a branch for a service.")
class SlotBookedV1(Schema):
    reference = fields.String(required=True)
    branch = Id()
    service = Id()
    start = Instant(required=True)
    end = Instant(required=True)
    person = fields.Nested(Person, required=True)


@contract("booking.BookingCancelled", 1, "A booking was cancelled and its place returned to the slot.")
class BookingCancelledV1(Schema):
    reference = fields.String(required=True)
    branch = Id()
    service = Id()
    start = Instant(required=True)
    cancelled_by = fields.String(required=True, validate=validate.OneOf(["person", "centre", "system"]))


@contract("booking.BookingRescheduled", 1,
          "A booking moved to another slot of the same branch and service, keeping its reference. "
          "It is stored on the new slot's stream; the previous slot's place is freed.")
class BookingRescheduledV1(Schema):
    reference = fields.String(required=True)
    branch = Id()
    service = Id()
    previous_start = Instant(required=True)
    start = Instant(required=True)
    end = Instant(required=True)


@contract("booking.BookingExpired", 1,
          "The day of a booking ended without the person checking in: a no-show, and the booking is closed.")
class BookingExpiredV1(Schema):
    reference = fields.String(required=True)
    branch = Id()
    service = Id()
    start = Instant(required=True)
