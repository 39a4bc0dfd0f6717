"""The notifications service: thin nameko glue over commands.py (scheduling, sending) and plan.py (rules)."""
from datetime import timedelta

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from marshmallow import Schema, fields, validate

from shared import catalogue
from shared.clock import clock
from shared.errors import NotFound
from services.booking.references import normalise_reference
from shared.messaging import subscribe
from shared.projection import apply_once
from shared.dependencies import Guard, Storage
from shared.openapi import documented
from services.notifications import answers
from shared.web import api, parse_query, person_cpr
from services.notifications import channels, commands, plan, projection


class Sending(DependencyProvider):
    """Channels (SMTP, SMS gateway or the file outbox), templates and settings, made once at start."""

    def setup(self):
        config = self.container.config
        self.outbound = commands.Outbound(
            channels.from_config(config),
            plan.Settings(reminder_before=timedelta(hours=float(config.get("NOTIFY_REMINDER_HOURS", 24))),
                          max_attempts=int(config.get("NOTIFY_MAX_ATTEMPTS", 5)),
                          retry_after_seconds=float(config.get("NOTIFY_RETRY_SECONDS", 30))),
            config["MAWAEED_PUBLIC_URL"], config["MAWAEED_FEEDBACK_KEY"])

    def get_dependency(self, worker_ctx):
        return self.outbound


class AboutBooking(Schema):
    reference = fields.String(required=True, validate=validate.Length(max=16))


class NotificationsService:
    name = "notifications"
    db = Storage(projection.metadata)
    sending = Sending()
    guard = Guard()
    config = Config()

    @subscribe(projection.BOOKINGS_CONSUMER)
    def on_booking_event(self, event):
        apply_once(self.db, projection.BOOKINGS_CONSUMER, event,
                   lambda uow, e: commands.on_booking_event(uow, e, clock.now(), self.sending.settings))

    @subscribe(projection.QUEUE_CONSUMER)
    def on_queue_event(self, event):
        apply_once(self.db, projection.QUEUE_CONSUMER, event,
                   lambda uow, e: commands.on_queue_event(uow, e, clock.now(), self.sending.settings))

    on_catalogue_event = catalogue.keep_copy(projection.CATALOGUE_CONSUMER)

    @timer(interval=1)
    def dispatch(self):
        """Send what is due: new messages at once, reminders at their time, retries after their backoff."""
        commands.dispatch_due(self.db, self.sending, clock.now)

    @api("GET", "/api/v1/notifications")
    @documented(query=AboutBooking, answers={200: answers.Sent}, cpr_header=True, limited=True,
                errors=("CPR_IN_URL", "FORBIDDEN", "BOOKING_NOT_FOUND"))
    def about_booking(self, request):
        """What was sent about a booking, for the person (with their CPR) or a help desk: no addresses shown."""
        cpr = person_cpr(request)  # the CPR in the X-CPR header (or a citizen's token), never in the URL
        reference = normalise_reference(parse_query(request, AboutBooking())["reference"])
        with self.guard.limits.guessing("read", request.caller, cpr), self.db.transaction() as uow:
            person = projection.contact(uow, reference)
            if person is None or person["cpr"] != cpr:
                raise NotFound("No booking has this reference and CPR.", code="BOOKING_NOT_FOUND",
                               message_ar="لا يوجد حجز بهذا الرقم المرجعي ورقم الهوية.")
            return {"reference": reference, "messages": projection.messages_about(uow, reference)}
