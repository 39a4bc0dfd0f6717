"""What the booking service answers over HTTP, as marshmallow schemas for the OpenAPI document."""
from marshmallow import fields, validate

from shared.openapi import Answer


class Booking(Answer):
    """A booking, as its person sees it (no CPR, no contacts)."""
    reference = fields.String(required=True, metadata={"example": "K7MX-9QRD"})
    status = fields.String(required=True, validate=validate.OneOf(["active", "cancelled", "expired"]))
    branch = fields.String(required=True)
    service = fields.String(required=True)
    branch_name_en = fields.String(required=True, allow_none=True)
    branch_name_ar = fields.String(required=True, allow_none=True)
    service_name_en = fields.String(required=True, allow_none=True)
    service_name_ar = fields.String(required=True, allow_none=True)
    start = fields.DateTime(required=True, metadata={"description": "Local time (+03:00)."})
    end = fields.DateTime(required=True)
    name = fields.String(required=True, allow_none=True, metadata={"description": "`[erased]` once forgotten."})
    language = fields.String(required=True, validate=validate.OneOf(["ar", "en"]))
    channel = fields.String(required=True)


class MyBookings(Answer):
    """Every booking of the signed-in citizen, soonest first."""
    bookings = fields.List(fields.Nested(Booking), required=True)


class Challenge(Answer):
    """A fresh ALTCHA proof-of-work challenge, and whether bookings need one today."""
    algorithm = fields.String(required=True)
    challenge = fields.String(required=True)
    maxnumber = fields.Integer(required=True)
    salt = fields.String(required=True)
    signature = fields.String(required=True)
    required = fields.Boolean(required=True)


class Erased(Answer):
    """The person is forgotten: their subject (pseudonym) and how many bookings were scrubbed."""
    subject = fields.String(required=True)
    bookings = fields.Integer(required=True)
