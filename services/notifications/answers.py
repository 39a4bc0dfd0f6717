"""What the notifications service answers over HTTP, as marshmallow schemas for the OpenAPI document."""
from marshmallow import fields, validate

from shared.openapi import Answer


class Message(Answer):
    kind = fields.String(required=True, metadata={"example": "confirmation"})
    channel = fields.String(required=True, validate=validate.OneOf(["email", "sms"]))
    status = fields.String(required=True, validate=validate.OneOf(["scheduled", "sent", "failed", "withdrawn"]))
    attempts = fields.Integer(required=True)
    due_at = fields.DateTime(required=True)


class Sent(Answer):
    """What was sent about a booking, never to which address."""
    reference = fields.String(required=True)
    messages = fields.List(fields.Nested(Message), required=True)
