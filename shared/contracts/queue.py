"""Contracts of the queue service. Every event of one branch's day is on the stream `queue-<branch>-<YYYYMMDD>`."""
from marshmallow import Schema, fields, validate

from shared.contracts import contract
from shared.contracts.fields import Id, Instant, validate_cpr_or_erased

COUNTER = validate.Regexp(r"[A-Za-z0-9-]{1,16}\Z")
KINDS = validate.OneOf(["appointment", "walk_in"])
PRIORITIES = validate.OneOf(["elderly", "disabled"])
LANES = validate.OneOf(["priority", "appointment", "walk_in", "early"])


class _OnTicket(Schema):
    ticket_id = fields.String(required=True)
    branch = Id()
    day = fields.Date(required=True)


@contract("queue.CustomerCheckedIn", 1,
          "A person checked in at a branch, with a booking or as a walk-in, and got a numbered ticket.")
class CustomerCheckedInV1(_OnTicket):
    number = fields.String(required=True, validate=validate.Regexp(r"[A-Z]-[0-9]{3,4}\Z"))
    service = Id()
    kind = fields.String(required=True, validate=KINDS)
    priority = fields.String(required=True, allow_none=True, validate=PRIORITIES)
    reference = fields.String(required=True, allow_none=True)
    appointment_start = Instant(required=True, allow_none=True)
    on_time = fields.Boolean(required=True)  # an appointment checked in on time keeps its priority
    cpr = fields.String(required=True, validate=validate_cpr_or_erased)
    language = fields.String(required=True, validate=validate.OneOf(["ar", "en"]))


@contract("queue.TicketCalled", 1, "A counter called a ticket (the lane says which ordering rule chose it).")
class TicketCalledV1(_OnTicket):
    counter = fields.String(required=True, validate=COUNTER)
    number = fields.String(required=True)
    service = Id()
    lane = fields.String(required=True, validate=LANES)


@contract("queue.TicketRecalled", 1, "A called ticket was called again because nobody came to the counter.")
class TicketRecalledV1(_OnTicket):
    counter = fields.String(required=True, validate=COUNTER)
    recall = fields.Integer(required=True, validate=validate.Range(min=1))


@contract("queue.TicketServed", 1, "A ticket was served, with its measured waiting and service times.")
class TicketServedV1(_OnTicket):
    counter = fields.String(required=True, validate=COUNTER)
    service = Id()
    wait_seconds = fields.Integer(required=True, validate=validate.Range(min=0))
    service_seconds = fields.Integer(required=True, validate=validate.Range(min=0))


@contract("queue.TicketNoShow", 1, "A called ticket's person did not come to the counter.")
class TicketNoShowV1(_OnTicket):
    counter = fields.String(required=True, validate=COUNTER)
    reason = fields.String(required=True, validate=validate.OneOf(["clerk", "no_answer_after_recalls"]))


@contract("queue.TicketTransferred", 1,
          "A ticket moved to another service's queue, keeping its number and its original check-in time.")
class TicketTransferredV1(_OnTicket):
    from_service = Id()
    to_service = Id()
    counter = fields.String(required=True, allow_none=True, validate=COUNTER)


@contract("queue.CounterOpened", 1, "A counter opened for a set of services.")
class CounterOpenedV1(Schema):
    branch = Id()
    day = fields.Date(required=True)
    counter = fields.String(required=True, validate=COUNTER)
    services = fields.List(Id(), required=True, validate=validate.Length(min=1))


@contract("queue.CounterClosed", 1, "A counter closed and calls no more tickets until it opens again.")
class CounterClosedV1(Schema):
    branch = Id()
    day = fields.Date(required=True)
    counter = fields.String(required=True, validate=COUNTER)


@contract("queue.SatisfactionRated", 1,
          "The person rated a visit (1-5, with an optional comment), beside its waiting and service times.")
class SatisfactionRatedV1(_OnTicket):
    service = Id()
    score = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(required=True, allow_none=True, validate=validate.Length(max=1000))
    wait_seconds = fields.Integer(required=True)
    service_seconds = fields.Integer(required=True)


@contract("queue.TicketClosedOut", 1, "The day closed while the ticket was still waiting or called.")
class TicketClosedOutV1(_OnTicket):
    status = fields.String(required=True, validate=validate.OneOf(["waiting", "called"]))


@contract("queue.AppointmentMissed", 1, "The day closed and the person with this booking never checked in.")
class AppointmentMissedV1(Schema):
    branch = Id()
    day = fields.Date(required=True)
    reference = fields.String(required=True)
    service = Id()
    start = Instant(required=True)


@contract("queue.DayClosed", 1, "A branch's day in the waiting room ended; its open counters closed with it.")
class DayClosedV1(Schema):
    branch = Id()
    day = fields.Date(required=True)
