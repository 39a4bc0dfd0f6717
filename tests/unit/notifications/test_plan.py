"""Which messages an event calls for, when, and when one no longer applies (services/notifications/plan.py)."""
import uuid
from datetime import datetime, timedelta

import pytest

from shared.clock import UTC
from shared import topology
from shared.events import Event
from shared.masking import ERASED, mask_cpr, mask_email, mask_phone
from services.notifications.plan import RULES, Settings, channels_of, plan, withdrawal

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)        # Sunday 09:00 in Bahrain
START = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)      # Tuesday 07:00
CONTACT = {"reference": "AC3D-9FGH", "email": "f@example.com", "mobile": "+97333001122", "language": "ar",
           "start": START, "status": "active"}


def event(type_: str, payload: dict | None = None, at: datetime = NOW) -> Event:
    return Event(str(uuid.uuid4()), type_, 1, "s", 1, 1, at, "c", None, "npra", payload or {})


def kinds(planned) -> list[tuple[str, str]]:
    return sorted((p.kind, p.channel) for p in planned)


def test_a_booking_plans_a_confirmation_now_and_a_reminder_a_day_before_on_each_channel():
    planned = plan(event("booking.SlotBooked"), CONTACT, NOW)
    assert kinds(planned) == [("confirmation", "email"), ("confirmation", "sms"), ("reminder", "email"),
                              ("reminder", "sms")]
    reminder = next(p for p in planned if p.kind == "reminder")
    assert reminder.due_at == START - timedelta(hours=24) and reminder.appointment_start == START
    assert all(p.due_at == NOW for p in planned if p.kind == "confirmation")


def test_keys_are_the_same_when_the_same_event_is_planned_again():
    booked = event("booking.SlotBooked")
    assert [p.key for p in plan(booked, CONTACT, NOW)] == [p.key for p in plan(booked, CONTACT, NOW)]
    assert {p.key for p in plan(booked, CONTACT, NOW)} == {
        "confirmation:email:AC3D-9FGH", "confirmation:sms:AC3D-9FGH",
        f"reminder:email:AC3D-9FGH@{START.isoformat()}", f"reminder:sms:AC3D-9FGH@{START.isoformat()}"}


def test_only_the_channels_the_person_gave():
    assert kinds(plan(event("booking.SlotBooked"), {**CONTACT, "email": None}, NOW)) == [
        ("confirmation", "sms"), ("reminder", "sms")]
    assert plan(event("booking.SlotBooked"), {**CONTACT, "email": None, "mobile": None}, NOW) == []


def test_no_reminder_for_a_booking_made_inside_the_reminder_period():
    soon = {**CONTACT, "start": NOW + timedelta(hours=5)}
    assert kinds(plan(event("booking.SlotBooked"), soon, NOW)) == [("confirmation", "email"), ("confirmation", "sms")]


def test_a_reminder_that_fell_due_while_the_service_was_down_is_due_at_once():
    booked = event("booking.SlotBooked", at=NOW)
    later = START - timedelta(hours=3)  # the reminder was due 21 hours ago
    reminders = [p for p in plan(booked, CONTACT, later) if p.kind == "reminder"]
    assert reminders and all(p.due_at == later for p in reminders)


def test_nothing_for_events_too_old_to_matter():
    old = event("booking.SlotBooked", at=NOW - timedelta(days=2))
    assert [p.kind for p in plan(old, {**CONTACT, "start": NOW + timedelta(days=3)}, NOW)] == ["reminder", "reminder"]
    called = event("queue.TicketCalled", {"ticket_id": "t", "number": "P-001", "counter": "5"},
                   at=NOW - timedelta(minutes=20))
    assert plan(called, CONTACT, NOW) == []


def test_a_reschedule_plans_a_notice_and_a_reminder_for_the_new_time():
    new_start = START + timedelta(days=1)
    moved = event("booking.BookingRescheduled", {"previous_start": START.isoformat(), "start": new_start.isoformat()})
    planned = plan(moved, {**CONTACT, "start": new_start}, NOW)
    assert kinds(planned) == [("reminder", "email"), ("reminder", "sms"), ("reschedule", "email"), ("reschedule", "sms")]
    assert all(p.key.endswith(f"@{new_start.isoformat()}") for p in planned if p.kind == "reminder")


def test_a_cancellation_plans_one_notice_per_channel():
    assert kinds(plan(event("booking.BookingCancelled"), {**CONTACT, "status": "cancelled"}, NOW)) == [
        ("cancellation", "email"), ("cancellation", "sms")]


def test_called_is_an_sms_and_the_survey_one_invitation():
    called = event("queue.TicketCalled", {"ticket_id": "t1", "number": "P-014", "counter": "5"})
    [sms] = plan(called, CONTACT, NOW)
    assert (sms.kind, sms.channel, sms.details) == ("called", "sms", {"ticket_number": "P-014", "counter": "5"})
    assert plan(called, {**CONTACT, "mobile": None}, NOW) == []
    served = event("queue.TicketServed", {"ticket_id": "t1"})
    assert kinds(plan(served, {**CONTACT, "ticket_number": "P-014"}, NOW)) == [("survey", "sms")]
    assert kinds(plan(served, {**CONTACT, "mobile": None, "ticket_number": "P-014"}, NOW)) == [("survey", "email")]
    assert plan(served, None, NOW) == []  # a walk-in who left no contact gets the link at the counter


def test_events_without_a_rule_call_for_nothing():
    for type_ in ("booking.BookingExpired", "booking.PersonErased", "queue.CustomerCheckedIn"):
        assert type_ not in RULES and plan(event(type_), CONTACT, NOW) == []
    assert plan(event("booking.BookingCancelled"), None, NOW) == []  # a booking never heard of


def test_every_rule_is_for_an_event_notifications_subscribes_to():
    subscribed = {t for name in ("notifications.bookings", "notifications.queue")
                  for t in topology.SUBSCRIPTIONS[name].types}
    assert set(RULES) < subscribed


def test_an_erased_address_is_no_channel():
    assert channels_of({**CONTACT, "email": ERASED, "mobile": ERASED}) == channels_of(None) == []
    assert channels_of({**CONTACT, "email": ERASED}) == ["sms"]
    assert plan(event("booking.SlotBooked"), {**CONTACT, "email": ERASED, "mobile": ERASED}, NOW) == []


@pytest.mark.parametrize("contact, reason", [
    ({**CONTACT, "status": "cancelled"}, "the booking is no longer active"),
    ({**CONTACT, "start": START + timedelta(days=1)}, "the booking moved to another time"),
    (None, "the booking is no longer active"),
])
def test_a_reminder_is_withdrawn_when_the_booking_changed(contact, reason):
    assert withdrawal("reminder", START - timedelta(hours=24), START, contact, NOW) == reason


def test_a_reminder_is_withdrawn_once_the_appointment_has_passed_and_kept_before():
    assert withdrawal("reminder", START - timedelta(hours=24), START, CONTACT, START - timedelta(minutes=1)) is None
    assert withdrawal("reminder", START - timedelta(hours=24), START, CONTACT, START) == \
        "the appointment time has passed"


def test_other_messages_are_withdrawn_when_too_old_to_send():
    assert withdrawal("called", NOW, None, CONTACT, NOW + timedelta(minutes=10)) is None
    assert withdrawal("called", NOW, None, CONTACT, NOW + timedelta(minutes=16)) is not None
    assert withdrawal("confirmation", NOW, START, CONTACT, NOW + timedelta(hours=25)) is not None


def test_retries_back_off_and_are_capped():
    settings = Settings(retry_after_seconds=30)
    assert [settings.retry_delay(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert settings.retry_delay(20) == timedelta(hours=1)


def test_masks_never_show_the_whole_identifier():
    assert mask_cpr("900112345") == "90*****45"
    assert mask_phone("+97333001122") == "+973****22"
    assert mask_email("fatima.ali@example.com") == "f***@example.com"
    assert mask_email("nonsense") == mask_phone("12") == mask_cpr(None) == "***"


@pytest.mark.parametrize("reason, explained", [("service_withdrawn", True), ("branch_retired", True),
                                               ("holiday", True), ("requested", False), (None, False)])
def test_a_cancellation_the_person_did_not_ask_for_carries_its_reason(reason, explained):
    payload = {"reason": reason} if reason else {}
    notices = plan(event("booking.BookingCancelled", payload), {**CONTACT, "status": "cancelled"}, NOW)
    assert [n.key for n in notices] == ["cancellation:email:AC3D-9FGH", "cancellation:sms:AC3D-9FGH"]
    assert all(n.details == ({"reason": reason} if explained else {}) for n in notices)
