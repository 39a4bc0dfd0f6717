"""What the insights service answers over HTTP, as marshmallow schemas for the OpenAPI document."""
from marshmallow import fields

from shared.openapi import Answer

Rate = lambda description: fields.Float(required=True, allow_none=True,  # noqa: E731
                                        metadata={"description": description + " (null: nothing to divide by)"})


class CheckIns(Answer):
    appointment_on_time = fields.Integer(required=True)
    appointment_late = fields.Integer(required=True)
    walk_in = fields.Integer(required=True)
    priority = fields.Integer(required=True)


class ByKind(Answer):
    appointment = Rate("appointment visits")
    walk_in = Rate("walk-in visits")
    all = Rate("all visits")


class Spread(Answer):
    mean = fields.Float(required=True, allow_none=True)
    median = fields.Float(required=True, allow_none=True)
    p90 = fields.Float(required=True, allow_none=True, metadata={"description": "nearest rank"})


class WaitMinutes(Answer):
    appointment = fields.Nested(Spread, required=True)
    walk_in = fields.Nested(Spread, required=True)
    all = fields.Nested(Spread, required=True)


class ServiceMinutes(Answer):
    mean = fields.Float(required=True, allow_none=True)
    median = fields.Float(required=True, allow_none=True)


class Satisfaction(Answer):
    mean = fields.Float(required=True, allow_none=True)
    distribution = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                               metadata={"description": 'ratings per score, "1" to "5"'})
    response_rate = Rate("rated ÷ served")
    comments = fields.Integer(required=True)


class WaitBand(Answer):
    band = fields.String(required=True, metadata={"example": "10-20"})
    rated = fields.Integer(required=True)
    mean = fields.Float(required=True, allow_none=True)


class Figures(Answer):
    """Every figure; README.md ("Insights") gives each formula."""
    bookings_made = fields.Integer(required=True)
    bookings_cancelled = fields.Integer(required=True)
    bookings_moved = fields.Integer(required=True)
    bookings_expired = fields.Integer(required=True)
    bookings_by_channel = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    places_offered = fields.Integer(required=True)
    slot_utilisation = Rate("(made − cancelled) ÷ places offered")
    lead_time_hours_mean = fields.Float(required=True, allow_none=True)
    check_ins = fields.Nested(CheckIns, required=True)
    arrivals_on_time_share = Rate("on-time appointment check-ins ÷ appointment check-ins")
    service_level = fields.Nested(ByKind, required=True)
    wait_minutes = fields.Nested(WaitMinutes, required=True)
    service_minutes = fields.Nested(ServiceMinutes, required=True)
    served = fields.Integer(required=True)
    no_show_rate = Rate("no-shows ÷ called")
    abandonment_rate = Rate("closed out never called ÷ checked in")
    recall_rate = Rate("recalled at least once ÷ called")
    transfers = fields.Integer(required=True)
    served_per_counter_hour = Rate("served ÷ open counter-hours")
    satisfaction = fields.Nested(Satisfaction, required=True)
    satisfaction_by_wait_band = fields.List(fields.Nested(WaitBand), required=True)


class InsightsPeriod(Answer):
    period = fields.String(required=True, metadata={"example": "2026-W50"})
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    figures = fields.Nested(Figures, required=True)


class Total(Answer):
    figures = fields.Nested(Figures, required=True)


class Scope(Answer):
    branch = fields.String()
    directorate = fields.String()
    all = fields.Boolean()


class Insights(Answer):
    """Figures per period of a scope, and for the whole range."""
    scope = fields.Nested(Scope, required=True)
    service = fields.String(required=True, allow_none=True)
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    by = fields.String(required=True)
    periods = fields.List(fields.Nested(InsightsPeriod), required=True)
    total = fields.Nested(Total, required=True)
