"""Scheduling messages from events (exactly once per key) and sending the ones that are due.

A message is scheduled in the same transaction that records the source event as processed, so a redelivered
event schedules nothing new. Sending happens afterwards: claim the message, send it, record NotificationSent.
A crash between the send and that record sends it again on restart (with the same Message-ID), which is the
one duplicate an external mail or SMS system cannot be made to avoid; everything else is exactly once.
"""
import logging
from dataclasses import dataclass, field
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parseaddr

from eventlet.greenpool import GreenPool

from shared import catalogue, metrics
from shared.schedule import local_day, with_former_services
from services.queue import feedback
from shared.errors import ConcurrencyError
from shared.events import Event, NewEvent
from shared.masking import mask_recipient
from shared.eventstore import Database, UnitOfWork
from services.notifications import messages, plan, projection
from services.notifications.channels import ChannelError

log = logging.getLogger(__name__)
CALENDAR_KINDS = ("confirmation", "reschedule", "cancellation")  # they create or change the calendar entry
BRANCH_WAIT = timedelta(seconds=5)  # before looking again for a branch the catalogue has not brought yet
CLAIM = timedelta(minutes=2)  # how long a dispatcher holds the messages it took before another may take them


def schedule(uow: UnitOfWork, event: Event, contact: dict | None, now: datetime, settings: plan.Settings) -> None:
    planned = plan.plan(event, contact, now, settings)
    known = projection.known(uow, [item.key for item in planned])
    changes = None  # how many calendar messages went before, counted once per event
    scheduled = []
    for item in planned:
        if item.key in known:
            continue
        details = item.details
        if item.kind in CALENDAR_KINDS and item.channel == "email":
            # the .ics SEQUENCE: how many times this booking's calendar entry was sent before (0, then 1, 2...),
            # so a cancellation sent within a minute of its confirmation still supersedes it (RFC 5546)
            if changes is None:
                changes = projection.calendar_changes(uow, item.reference, item.channel)
            details = {**details, "sequence": str(changes)}
        stored = uow.append(f"notification-{item.key}", 0, [NewEvent("notifications.NotificationScheduled", {
            "key": item.key, "kind": item.kind, "channel": item.channel, "due_at": item.due_at.isoformat(),
            "reference": item.reference, "ticket_id": item.ticket_id, "source_event_id": event.event_id,
            "appointment_start": item.appointment_start.isoformat() if item.appointment_start else None,
            "details": details,
        }, event.directorate, correlation_id=event.correlation_id, causation_id=event.event_id)])
        scheduled.extend(stored)
    projection.scheduled(uow, scheduled)  # as projection.project would each, in one statement


# the events that move or end a booking, and so may leave reminders that no longer apply
MOVES_OR_ENDS = {"booking.BookingRescheduled", *projection.ENDED}


def on_booking_event(uow: UnitOfWork, event: Event, now: datetime, settings: plan.Settings) -> None:
    projection.apply_booking_event(uow, event)
    # PersonErased names no booking: their pending messages find no address and are withdrawn when due
    contact = projection.contact(uow, event.payload.get("reference"))
    if event.type in MOVES_OR_ENDS:  # a new booking has no reminders yet: nothing to look up
        withdraw_reminders(uow, contact, now, settings)
    schedule(uow, event, contact, now, settings)


def withdraw_reminders(uow: UnitOfWork, contact: dict | None, now: datetime, settings: plan.Settings) -> None:
    """A cancelled or moved booking withdraws its pending reminders at once (not only when they fall due)."""
    for item in projection.scheduled_reminders(uow, contact["reference"]) if contact else []:
        reason = plan.withdrawal("reminder", item["due_at"], item["appointment_start"], contact, now, settings)
        if reason:
            _append(uow, item, "NotificationWithdrawn", {"reason": reason})


def on_queue_event(uow: UnitOfWork, event: Event, now: datetime, settings: plan.Settings) -> None:
    projection.apply_queue_event(uow, event)
    if event.type in plan.RULES:  # a check-in calls for no message: look nobody up
        ticket = projection.ticket(uow, event.payload["ticket_id"])
        contact = projection.contact(uow, ticket["reference"]) if ticket else None  # walk-ins left no contact
        schedule(uow, event, contact and {**contact, "ticket_number": ticket["number"]}, now, settings)


def _append(uow: UnitOfWork, item: dict, type_: str, payload: dict, version: int | None = None) -> None:
    """Append to the message's stream at `version`, or at the version it has now when not given."""
    stream = f"notification-{item['key']}"
    stored = uow.append(stream, uow.store.stream_version(stream) if version is None else version, [NewEvent(
        f"notifications.{type_}", {"key": item["key"], "kind": item["kind"], "channel": item["channel"], **payload})])
    projection.project(uow, stored[0])


class Outbound:
    """What sending needs besides the database: channels, templates, settings and links."""

    def __init__(self, channels: dict, settings: plan.Settings, public_url: str, feedback_key: str):
        self.channels, self.settings = channels, settings
        self.public_url, self.feedback_key = public_url, feedback_key
        self.templates = messages.environment()


@dataclass
class Outcome:
    """What became of one message: an event to record (`type_` with `payload`), or a retry at `retry_at`."""
    item: dict
    type_: str | None = None  # NotificationSent, NotificationFailed or NotificationWithdrawn
    payload: dict = field(default_factory=dict)
    attempts: int = 0
    retry_at: datetime | None = None


def dispatch_due(db: Database, outbound: Outbound, now: Callable[[], datetime], concurrency: int = 10) -> int:
    """Send what is due, several at a time, so one slow server does not hold back the rest; returns how many were
    settled (sent, failed for good, withdrawn). `now` is the clock, read again for each batch: a backlog can take
    longer than a claim, and a claim ending before its batch starts would let another replica send it too."""
    settled = 0
    while True:
        claimed, count = _dispatch_batch(db, outbound, now(), concurrency)
        settled += count
        if claimed < 2 * concurrency:  # nothing more was due
            return settled


def _dispatch_batch(db: Database, outbound: Outbound, now: datetime, concurrency: int) -> tuple[int, int]:
    """(claimed, settled) of one batch. The due messages are claimed with their contacts and branches in one
    transaction, two sends' worth per concurrent sender, so a batch ends well within its claim even when a server
    times out; outcomes are recorded as sends finish, those that finished together in one transaction. At most the
    messages in flight are sent but not yet recorded, as when each had its own: the one duplicate left."""
    with db.transaction() as uow:
        items = projection.claim_due(uow, now, now + CLAIM, limit=2 * concurrency)
        if not items:
            return 0, 0
        contacts = projection.contacts_of(uow, (item["reference"] for item in items))
        branches = {b: catalogue.load_branch(uow, b) for b in {c["branch"] for c in contacts.values()}}
    finished, settled, stopped = [], 0, False

    def attempt(item: dict) -> None:
        if stopped:  # the batch broke off: not sent, it stays claimed and is taken again when its claim lapses
            return
        contact = contacts.get(item["reference"])
        try:
            outcome = send_one(outbound, item, contact, branches.get(contact["branch"]) if contact else None, now)
        except Exception as exc:  # a bug or a channel's surprise must not stop the batch (its sends unrecorded)
            outcome = _unexpected(outbound, item, contact, exc, now)
        finished.append(outcome)

    def record_finished() -> int:
        batch = finished[:]
        del finished[:len(batch)]  # sends that finish while these are recorded wait for the next round
        return record(db, batch)

    sends, ended = GreenPool(concurrency).imap(attempt, items), False
    try:
        for _ in sends:
            if finished:
                settled += record_finished()
        ended = True
    finally:
        # whatever stopped the batch, what was sent is recorded: the sends under way finish first (imap goes on
        # in its own greenthread), so none lands in `finished` after this last record
        stopped = True
        if not ended:  # (an imap read past its end waits for ever)
            for _ in sends:
                pass
        if finished:
            settled += record_finished()
    return len(items), settled


def send_one(outbound: Outbound, item: dict, contact: dict | None, branch: dict | None, now: datetime) -> Outcome:
    """Send one claimed message, or say why not: no database here, the outcome is recorded by `record`."""
    reason = plan.withdrawal(item["kind"], item["due_at"], item["appointment_start"], contact, now, outbound.settings)
    if reason is None and branch is None:  # at start the catalogue may still be catching up: look again shortly
        # (a branch that never comes is settled by the freshness rule above)
        return Outcome(item, attempts=item["attempts"], retry_at=now + BRANCH_WAIT)
    if reason is None and item["channel"] not in plan.channels_of(contact):
        reason = "no address to send it to (the person was erased)"
    if reason:
        return Outcome(item, "NotificationWithdrawn", {"reason": reason})
    message = build(outbound, item, contact, branch, now)
    masked = mask_recipient(item["channel"], message.to)
    attempts = item["attempts"] + 1
    try:
        outbound.channels[item["channel"]].send(message)
    except ChannelError as exc:
        return _failed(outbound, item, masked, str(exc), now)
    log.info("sent %s by %s to %s", item["kind"], item["channel"], masked)
    return Outcome(item, "NotificationSent", {"to": masked, "attempts": attempts})


def _failed(outbound: Outbound, item: dict, masked: str, reason: str, now: datetime) -> Outcome:
    """One more failed attempt: a retry after a backoff, or failed for good after the last one."""
    attempts = item["attempts"] + 1
    if attempts >= outbound.settings.max_attempts:
        log.error("%s %s to %s failed for good after %d attempts: %s", item["kind"], item["channel"], masked,
                  attempts, reason)
        metrics.NOTIFICATIONS_FAILED.labels(item["channel"]).inc()
        return Outcome(item, "NotificationFailed", {"reason": reason[:500], "attempts": attempts})
    log.warning("%s %s to %s failed (attempt %d of %d), retrying: %s", item["kind"], item["channel"], masked,
                attempts, outbound.settings.max_attempts, reason)
    return Outcome(item, attempts=attempts, retry_at=now + outbound.settings.retry_delay(attempts))


def _unexpected(outbound: Outbound, item: dict, contact: dict | None, exc: Exception, now: datetime) -> Outcome:
    """An error that is no refusal (a bug in building the message, a channel's surprise) counts as a failed
    attempt, so a message that always fails ends failed instead of being sent again and again. Its text may hold
    personal data (it is not a ChannelError), so only its type and where it was raised are logged and recorded."""
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    reason = f"unexpected {type(exc).__name__}" + (f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}"
                                                   if where else "")
    masked = mask_recipient(item["channel"], _address(contact, item["channel"])) if contact else "***"
    return _failed(outbound, item, masked, reason, now)


def _address(contact: dict, channel: str) -> str | None:
    return contact.get("email") if channel == "email" else contact.get("mobile")


# A message still scheduled has its one event, NotificationScheduled: every other event of its stream settles it.
SCHEDULED_VERSION = 1


def record(db: Database, outcomes: list[Outcome]) -> int:
    """Record outcomes in one transaction; how many were settled. Should a message's stream have moved since it
    was claimed (a reminder withdrawn as it was sent), each is recorded on its own after its stream as it stands,
    so the others are not lost with it."""
    def settle(uow: UnitOfWork, outcome: Outcome, version: int | None) -> None:
        if outcome.type_:
            _append(uow, outcome.item, outcome.type_, outcome.payload, version)
        else:
            projection.retry_later(uow, outcome.item["key"], outcome.attempts, outcome.retry_at)

    try:
        with db.transaction() as uow:
            for outcome in outcomes:
                settle(uow, outcome, SCHEDULED_VERSION)  # claimed as scheduled: no need to read its version
    except ConcurrencyError:
        settled = 0
        for outcome in outcomes:
            try:
                with db.transaction() as uow:
                    settle(uow, outcome, None)
            except Exception as exc:  # its stream moved again, or the database failed: the others still count
                # Left as claimed: when its claim lapses it is due again, and sent again at most once if still
                # scheduled (the duplicate of a crash after sending); a stream settled meanwhile is not taken.
                log.error("could not record %s of %s %s %s (%s): it is taken again when its claim lapses",
                          outcome.type_ or "a retry", outcome.item["kind"], outcome.item["channel"],
                          outcome.item["key"], type(exc).__name__)
                continue
            settled += 1 if outcome.type_ else 0
        return settled
    return sum(1 for outcome in outcomes if outcome.type_)


def build(outbound: Outbound, item: dict, contact: dict, branch: dict, now: datetime) -> messages.Message:
    kind, channel, language = item["kind"], item["channel"], contact["language"]
    details = dict(item["details"])
    if kind == "survey":
        details["feedback_url"] = feedback.link(item["ticket_id"], outbound.feedback_key, outbound.public_url)["url"]
    start = item["appointment_start"] or contact["start"]
    branch = with_former_services(branch)  # a notice about a withdrawn service still names it
    values = messages.context(kind, language, branch, contact["service"], contact["name"], contact["reference"],
                              start, details, outbound.public_url)
    if kind == "cancellation" and details.get("reason"):  # not asked for: the notice says why
        holiday = branch.get("holidays", {}).get(local_day(start).isoformat(), {})
        values.update(reason=details["reason"], holiday_name=holiday.get(f"name_{language}", ""))
    to = _address(contact, channel)
    message = messages.render(outbound.templates, kind, channel, language, to, values, item["key"])
    message.date = now
    if channel == "email" and kind in CALENDAR_KINDS:
        # scheduled before the sequence was recorded: the confirmation created the entry, anything later changed it
        sequence = int(details.get("sequence", 0 if kind == "confirmation" else 1))
        sender = getattr(outbound.channels.get("email"), "sender", None) or messages.ORGANIZER
        message.attachments.append(("appointment.ics", "text/calendar", messages.calendar_file(
            contact["reference"], branch, contact["service"], start, language, stamp=now, sequence=sequence,
            cancelled=kind == "cancellation", organizer=parseaddr(sender)[1] or messages.ORGANIZER)))
    return message
