"""What the availability service answers over HTTP, as marshmallow schemas for the OpenAPI document."""
from marshmallow import fields, validate

from shared.openapi import Answer

WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


class Directorate(Answer):
    """A directorate (answered as a list, by id)."""
    id = fields.String(required=True)
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)


class OfferedService(Answer):
    id = fields.String(required=True)
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)
    duration_minutes = fields.Integer(required=True)


class Period(Answer):
    opens = fields.String(required=True, metadata={"example": "07:00"})
    closes = fields.String(required=True, metadata={"example": "14:00"})


class OpeningDay(Answer):
    day = fields.String(required=True, validate=validate.OneOf(WEEKDAYS))
    day_name_en = fields.String(required=True)
    day_name_ar = fields.String(required=True)
    periods = fields.List(fields.Nested(Period), required=True, metadata={"description": "None: closed that day."})


class BookingWindow(Answer):
    min_notice_minutes = fields.Integer(required=True, allow_none=True)
    max_days_ahead = fields.Integer(required=True, allow_none=True)


class Branch(Answer):
    """A branch with its address, services, week and booking window (answered as a list, by id)."""
    id = fields.String(required=True)
    directorate = fields.String(required=True)
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)
    address_en = fields.String(required=True, metadata={"description": "Empty until the catalogue gives one."})
    address_ar = fields.String(required=True)
    services = fields.List(fields.Nested(OfferedService), required=True)
    opening_hours = fields.List(fields.Nested(OpeningDay), required=True, metadata={"description": "Sunday first."})
    booking_window = fields.Nested(BookingWindow, required=True)


class Slot(Answer):
    start = fields.DateTime(required=True, metadata={"description": "Local time (+03:00)."})
    end = fields.DateTime(required=True)
    capacity = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    bookable = fields.Boolean(required=True, metadata={"description": "Within the branch's booking window now."})


class ClosedReason(Answer):
    code = fields.String(required=True, validate=validate.OneOf(["HOLIDAY", "CLOSED"]))
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)


class Availability(Answer):
    """A day's slots of a service at a branch; a closed day has none and says why in `closed`."""
    branch = fields.String(required=True)
    service = fields.String(required=True)
    date = fields.Date(required=True)
    slots = fields.List(fields.Nested(Slot), required=True)
    closed = fields.Nested(ClosedReason)
