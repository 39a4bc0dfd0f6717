"""Contracts of the notifications service. Each message has a stream `notification-<key>`, its key naming what
it is for (kind, channel and the booking, ticket or event it answers), so a message is scheduled once."""
from marshmallow import Schema, fields, validate

from shared.contracts import contract
from shared.contracts.fields import Instant

KINDS = validate.OneOf(["confirmation", "reminder", "cancellation", "reschedule", "called", "survey"])
CHANNELS = validate.OneOf(["email", "sms"])


class _Message(Schema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=180))
    kind = fields.String(required=True, validate=KINDS)
    channel = fields.String(required=True, validate=CHANNELS)


@contract("notifications.NotificationScheduled", 1,
          "A message was decided on, to be sent at due_at (a reminder before the appointment, others at once).")
class NotificationScheduledV1(_Message):
    due_at = Instant(required=True)
    reference = fields.String(required=True, allow_none=True)
    ticket_id = fields.String(required=True, allow_none=True)
    source_event_id = fields.String(required=True)
    appointment_start = Instant(required=True, allow_none=True)  # the time a reminder is for
    details = fields.Dict(keys=fields.String(), values=fields.String(), required=True)  # ticket number, counter


@contract("notifications.NotificationSent", 1, "A message was accepted by the mail server or the SMS gateway.")
class NotificationSentV1(_Message):
    to = fields.String(required=True)  # masked: never a full address or number
    attempts = fields.Integer(required=True, validate=validate.Range(min=1))


@contract("notifications.NotificationFailed", 1, "A message could not be sent after its retries; the reason says why.")
class NotificationFailedV1(_Message):
    reason = fields.String(required=True, validate=validate.Length(max=500))
    attempts = fields.Integer(required=True, validate=validate.Range(min=1))


@contract("notifications.NotificationWithdrawn", 1,
          "A scheduled message was not sent because it no longer applied (a reminder for a cancelled or moved "
          "booking, or a message that became too old while the service was down).")
class NotificationWithdrawnV1(_Message):
    reason = fields.String(required=True, validate=validate.Length(max=200))
