"""What the queue service answers over HTTP, as marshmallow schemas for the OpenAPI document."""
from marshmallow import fields, validate

from shared.openapi import Answer
from services.queue.domain import LANES

STATUSES = ["waiting", "called", "served", "no_show", "closed_out"]
KINDS = ["appointment", "walk_in"]
PRIORITIES = ["elderly", "disabled"]


def _local(**kwargs):
    return fields.DateTime(metadata={"description": "Local time (+03:00)."}, **kwargs)


class Ticket(Answer):
    id = fields.String(required=True)
    number = fields.String(required=True, metadata={"example": "P-014"})
    branch = fields.String(required=True)
    service = fields.String(required=True)
    service_name_en = fields.String(required=True)
    service_name_ar = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    priority = fields.String(required=True, allow_none=True, validate=validate.OneOf(PRIORITIES))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    counter = fields.String(required=True, allow_none=True)
    recalls = fields.Integer(required=True)
    position = fields.Integer(required=True, allow_none=True, metadata={"description": "While waiting."})
    estimated_wait_minutes = fields.Integer(required=True, allow_none=True)


class Link(Answer):
    token = fields.String(required=True)
    url = fields.String(required=True)


class CheckedIn(Answer):
    """The ticket, and the link of its live page (`/t/<token>`, for the printed ticket's QR code)."""
    ticket = fields.Nested(Ticket, required=True)
    link = fields.Nested(Link, required=True)


class CounterState(Answer):
    """The counter now: open or not, and the services it serves."""
    counter = fields.String(required=True)
    open = fields.Boolean(required=True)
    services = fields.List(fields.String(), required=True)


class Called(Answer):
    """The ticket called to the counter, and the lane that chose it."""
    ticket = fields.Nested(Ticket, required=True)
    lane = fields.String(required=True, validate=validate.OneOf(LANES))


class TicketStep(Answer):
    """The ticket after this step: its status, counter and recalls so far."""
    ticket = fields.Nested(Ticket, required=True)


class Served(Answer):
    """The ticket, the visit's measured times and its single-use feedback link."""
    ticket = fields.Nested(Ticket, required=True)
    wait_minutes = fields.Float(required=True)
    service_minutes = fields.Float(required=True)
    feedback = fields.Nested(Link, required=True)


class TodaysPeriod(Answer):
    opens = fields.String(required=True)
    closes = fields.String(required=True)


class WaitingTicket(Answer):
    id = fields.String(required=True)
    number = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    priority = fields.String(required=True, allow_none=True, validate=validate.OneOf(PRIORITIES))
    lane = fields.String(required=True, validate=validate.OneOf(LANES))
    position = fields.Integer(required=True)
    checked_in_at = _local(required=True, allow_none=True)
    estimated_wait_minutes = fields.Integer(required=True)


class Line(Answer):
    service = fields.String(required=True)
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)
    count = fields.Integer(required=True)
    estimated_wait_minutes = fields.Integer(required=True, metadata={"description": "For someone joining now."})
    tickets = fields.List(fields.Nested(WaitingTicket), required=True, metadata={"description": "In call order."})


class BoardLine(Answer):
    service = fields.String(required=True)
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)
    count = fields.Integer(required=True)
    estimated_wait_minutes = fields.Integer(required=True)


class NowServing(Answer):
    counter = fields.String(required=True)
    number = fields.String(required=True)
    service = fields.String(required=True)


class LastCall(Answer):
    number = fields.String(required=True)
    counter = fields.String(required=True, allow_none=True)
    service = fields.String(required=True)
    called_at = _local(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class BoardCall(Answer):
    number = fields.String(required=True)
    counter = fields.String(required=True, allow_none=True)
    service = fields.String(required=True)
    called_at = _local(required=True, allow_none=True)


class Counter(Answer):
    counter = fields.String(required=True)
    services = fields.List(fields.String(), required=True)
    open = fields.Boolean(required=True)
    serving = fields.String(required=True, allow_none=True, metadata={"description": "The ticket number."})


class AtCounter(Answer):
    counter = fields.String(required=True)
    id = fields.String(required=True)
    number = fields.String(required=True)
    service = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    priority = fields.String(required=True, allow_none=True, validate=validate.OneOf(PRIORITIES))
    recalls = fields.Integer(required=True)
    called_at = _local(required=True, allow_none=True)


class ServedInHour(Answer):
    hour = fields.String(required=True, metadata={"example": "09:00"})
    served = fields.Integer(required=True)


class Averages(Answer):
    served = fields.Integer(required=True)
    no_shows = fields.Integer(required=True)
    wait_minutes = fields.Float(required=True, allow_none=True)
    longest_wait_minutes = fields.Float(required=True, allow_none=True)
    service_minutes = fields.Float(required=True, allow_none=True)
    satisfaction = fields.Float(required=True, allow_none=True)
    ratings = fields.Integer(required=True)
    served_by_hour = fields.List(fields.Nested(ServedInHour), required=True)


class BranchDay(Answer):
    """What the staff's waiting room and the public board both begin with: which branch, which day, its hours."""
    branch = fields.String(required=True)
    name_en = fields.String(required=True)
    name_ar = fields.String(required=True)
    date = fields.Date(required=True)
    closed = fields.Boolean(required=True)
    hours = fields.List(fields.Nested(TodaysPeriod), required=True)
    open_now = fields.Boolean(required=True)


class WaitingRoom(BranchDay):
    """The branch's day: hours, who waits for what, who is called, the counters and the day's averages."""
    waiting = fields.List(fields.Nested(Line), required=True)
    now_serving = fields.List(fields.Nested(NowServing), required=True)
    last_called = fields.List(fields.Nested(LastCall), required=True)
    counters = fields.List(fields.Nested(Counter), required=True)
    at_counters = fields.List(fields.Nested(AtCounter), required=True)
    averages = fields.Nested(Averages, required=True)


class Board(BranchDay):
    """The public board of the hall: ticket numbers and counters; no ids, names or CPRs."""
    now_serving = fields.List(fields.Nested(NowServing), required=True)
    last_called = fields.List(fields.Nested(BoardCall), required=True)
    waiting = fields.List(fields.Nested(BoardLine), required=True)


class PublicTicket(Answer):
    """The live ticket behind a ticket link: nothing personal, no ids or references."""
    number = fields.String(required=True)
    branch = fields.String(required=True)
    branch_name_en = fields.String(required=True)
    branch_name_ar = fields.String(required=True)
    date = fields.Date(required=True)
    service = fields.String(required=True)
    service_name_en = fields.String(required=True)
    service_name_ar = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    position = fields.Integer(required=True, allow_none=True)
    estimated_wait_minutes = fields.Integer(required=True, allow_none=True)
    counter = fields.String(required=True, allow_none=True)
    called_at = _local(required=True, allow_none=True)
    recalls = fields.Integer(required=True)


class DayClosed(Answer):
    """The day is closed; `events`: how many this close recorded (0 when it was closed already)."""
    branch = fields.String(required=True)
    date = fields.Date(required=True)
    closed = fields.Boolean(required=True)
    events = fields.Integer(required=True)


class Actor(Answer):
    subject = fields.String(required=True)
    role = fields.String(required=True)
    branch = fields.String()
    counter = fields.String()


class AuditEntry(Answer):
    at = _local(required=True)
    position = fields.Integer(required=True)
    event = fields.String(required=True, metadata={"example": "TicketCalled"})
    actor = fields.Nested(Actor, required=True, allow_none=True, metadata={"description": "None: the public or "
                                                                                           "the suite itself."})
    details = fields.Dict(required=True)


class AuditTrail(Answer):
    """Every event of the branch's day in order: when, what, who."""
    branch = fields.String(required=True)
    date = fields.Date(required=True)
    entries = fields.List(fields.Nested(AuditEntry), required=True)


class Rated(Answer):
    """Thanks, in both languages, and the score recorded."""
    thanks_en = fields.String(required=True)
    thanks_ar = fields.String(required=True)
    score = fields.Integer(required=True)


class FeedbackLink(Answer):
    """What a feedback link is about, and whether it can still be used."""
    number = fields.String(required=True)
    branch = fields.String(required=True)
    branch_name_en = fields.String(required=True)
    branch_name_ar = fields.String(required=True)
    service = fields.String(required=True)
    service_name_en = fields.String(required=True)
    service_name_ar = fields.String(required=True)
    date = fields.Date(required=True)
    served = fields.Boolean(required=True)
    rated = fields.Boolean(required=True)
