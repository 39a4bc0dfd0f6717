"""Contracts of the booking service. A slot's stream carries the bookings that take or free its places."""
from marshmallow import Schema, fields, validate

from shared.contracts import contract, upcaster
from shared.contracts.fields import Id, Instant, Name, validate_cpr_or_erased

LANGUAGES = validate.OneOf(["ar", "en"])
CHANNELS = validate.OneOf(["web", "app", "call_centre", "counter"])


class Person(Schema):
    cpr = fields.String(required=True, validate=validate_cpr_or_erased)
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


@contract("booking.SlotBooked", 2,
          "A person booked a place in a slot at a branch for a service. New in v2: `channel`, how the booking "
          "was made (web, app, call_centre or counter); v1 events were all made on the web.")
class SlotBookedV2(SlotBookedV1):
    channel = fields.String(required=True, validate=CHANNELS)


@upcaster("booking.SlotBooked", 1)
def slot_booked_v1_to_v2(payload: dict) -> dict:
    """Before v2 the web was the only channel."""
    return {**payload, "channel": "web"}


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


@contract("booking.PersonErased", 1,
          "A person asked to be forgotten: their key was deleted, so their CPR, name and contacts read as "
          "erased in every event; each service forgets its own copies. The subject is a keyed hash, not the CPR.")
class PersonErasedV1(Schema):
    subject = fields.String(required=True, validate=validate.Regexp(r"[0-9a-f]{24}\Z"))


# Why a booking was cancelled. The person's own cancellation is `requested`; the others are the booking service's
# answer to the catalogue shrinking (services/booking/withdrawals.py); `unspecified`: a v1 cancellation by the
# centre or the system, which did not say why.
CANCEL_REASONS = ("requested", "service_withdrawn", "branch_retired", "holiday", "unspecified")


@contract("booking.BookingCancelled", 2,
          "A booking was cancelled and its place returned to the slot. New in v2: `reason`, why (requested: the "
          "person asked; service_withdrawn, branch_retired, holiday: the catalogue no longer has the appointment's "
          "service, branch or day); `requested` when not given.")
class BookingCancelledV2(BookingCancelledV1):
    reason = fields.String(load_default="requested", validate=validate.OneOf(CANCEL_REASONS))


@upcaster("booking.BookingCancelled", 1)
def booking_cancelled_v1_to_v2(payload: dict) -> dict:
    """Before v2 only the person cancelled (the contract allowed the centre and the system, who never said why).
    A replay may read only some fields of the log (a projection's own); without `cancelled_by` the reason is
    unknown, and no projection that reads so little asks for it."""
    return {**payload, "reason": "requested" if payload.get("cancelled_by") == "person" else "unspecified"}
