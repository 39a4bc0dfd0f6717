"""The booking rules, as pure functions over plain data: no database, no clock of their own."""
from dataclasses import dataclass
from datetime import datetime

from shared import schedule
from shared.errors import Conflict, NotFound


MAX_ACTIVE_BOOKINGS = 3

WINDOW_MESSAGES = {
    "SLOT_IN_PAST": ("This time has already passed.", "هذا الموعد قد مضى."),
    "TOO_SOON": ("This time is too close to book; choose a later one.", "هذا الموعد قريب جدًا، يرجى اختيار موعد لاحق."),
    "OUTSIDE_BOOKING_WINDOW": ("Bookings for this date are not open yet.", "لم يُفتح الحجز لهذا التاريخ بعد."),
}


@dataclass(frozen=True)
class ActiveBooking:
    reference: str
    service: str
    start: datetime


def bookable_slot(branch: dict | None, branch_id: str, service_id: str, start: datetime,
                  now: datetime) -> schedule.Slot:
    """The slot a person asks for, or the error that says why it cannot be booked."""
    schedule.require_service(branch, branch_id, service_id)
    slot = schedule.slot_at(branch, service_id, start)  # first: is it a slot at all, then: can it be booked now
    if slot is None:
        raise Conflict("The branch has no slot for this service at this time (closed, a holiday, "
                       "or not the start of a slot).", code="SLOT_UNAVAILABLE",
                       message_ar="لا يوجد موعد متاح لهذه الخدمة في هذا الوقت.")
    problem = schedule.window_problem(branch, start, now)
    if problem:
        english, arabic = WINDOW_MESSAGES[problem]
        raise Conflict(english, code=problem, message_ar=arabic)
    return slot


def check_room(slot: schedule.Slot, taken: int) -> None:
    if taken >= slot.capacity:
        raise Conflict("This slot is fully booked; choose another time.", code="SLOT_FULL",
                       message_ar="هذا الموعد محجوز بالكامل، يرجى اختيار وقت آخر.")


def check_person(active: list[ActiveBooking], service_id: str, limit: int = MAX_ACTIVE_BOOKINGS) -> None:
    """One active booking per person per service, and at most `limit` active bookings in all."""
    same = [b for b in active if b.service == service_id]
    if same:
        raise Conflict(f"You already have an active booking for this service ({same[0].reference}); "
                       "reschedule or cancel it instead.", code="ALREADY_BOOKED",
                       message_ar=f"لديك حجز قائم لهذه الخدمة ({same[0].reference})، يمكنك تغيير موعده أو إلغاؤه.")
    if len(active) >= limit:
        raise Conflict(f"You already have {len(active)} active bookings, the most allowed.", code="BOOKING_LIMIT",
                       message_ar=f"لديك {len(active)} حجوزات قائمة، وهو الحد الأقصى المسموح.")


def check_owner(booking, cpr: str) -> None:
    """A booking (a row, or None) is shown and changed only for the person it belongs to: to anyone else it looks
    exactly like an unknown reference, so a reference cannot be used to learn whose it is."""
    if booking is None or booking.cpr != cpr:
        raise NotFound("No booking has this reference and CPR.", code="BOOKING_NOT_FOUND",
                       message_ar="لا يوجد حجز بهذا الرقم المرجعي ورقم الهوية.")


def check_cancel(status: str, start: datetime, now: datetime) -> bool:
    """Whether cancelling changes anything: cancelling twice is not an error. A started appointment stays."""
    if status == "cancelled":
        return False
    if start <= now:
        raise Conflict("This appointment has already started and can no longer be cancelled.",
                       code="BOOKING_STARTED", message_ar="بدأ هذا الموعد ولا يمكن إلغاؤه الآن.")
    return True


def check_reschedule(status: str, start: datetime, new_start: datetime, now: datetime) -> bool:
    """Whether moving to `new_start` changes anything (already there: nothing to do). Only an active booking that
    has not started moves; whether `new_start` can be booked is bookable_slot's to say."""
    if status != "active":
        raise Conflict("A cancelled booking cannot be rescheduled; make a new booking.",
                       code="BOOKING_CANCELLED", message_ar="لا يمكن تغيير موعد حجز ملغى، يرجى إنشاء حجز جديد.")
    if start <= now:
        raise Conflict("This appointment has already started and can no longer be moved.",
                       code="BOOKING_STARTED", message_ar="بدأ هذا الموعد ولا يمكن تغييره الآن.")
    return new_start != start


def expires(status: str) -> bool:
    """Whether a booking nobody came for is recorded as expired: only an active one (the queue may say it twice)."""
    return status == "active"


def records_erasure(forgot_something: bool, recorded_before: bool) -> bool:
    """Whether erasing a person records PersonErased: once for a person never erased (other services may know
    them), again only when there was something left to forget. Erasing twice records nothing new."""
    return forgot_something or not recorded_before


# Why the booking service cancels bookings when the catalogue shrinks (the reason their BookingCancelled gives and
# their cancellation notice explains), by the availability event that leaves them without a place.
CATALOGUE_REASONS = {"availability.ServiceWithdrawn": "service_withdrawn",
                     "availability.BranchRetired": "branch_retired",
                     "availability.HolidayDeclared": "holiday"}


def closes_for_catalogue(status: str, start: datetime, now: datetime) -> bool:
    """Whether a change to the catalogue cancels a booking it leaves without a place: only an active one that has
    not started. Past bookings (and those already cancelled or expired) are history and stay as they are."""
    return status == "active" and start > now
