"""The schedule of the service centres: pure functions over a branch document, no database, no schema library.

A branch document (a plain dict) is built by folding the availability events that name the branch (`apply`);
each service that needs the schedule keeps such documents in its own projection (shared/catalogue.py). Slots
follow from it: a service's slots start every `duration_minutes` inside the opening periods, each with
capacity `online_capacity` (counters kept back for walk-ins are not offered online). The weekend and holidays
have no periods; times are local (Asia/Bahrain) and stored in UTC.

The catalogue also shrinks: a withdrawn service leaves `services` (its names stay in `withdrawn_services`, for
words about the bookings it had), a retired branch is marked `retired` (names and services kept for history, but
no slots, not listed, not bookable) until it is registered again, and a cancelled holiday opens its day again.

The waiting-time targets travel in the queue policy (QueuePolicySet v2 `targets`); `wait_targets` reads them, over
the defaults defined once here (DEFAULT_WAIT_TARGETS), for the insights figures, the live queue metrics and the
monthly report alike.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from shared.clock import LOCAL, UTC
from shared.errors import NotFound

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # the keys of a branch's week

# The waiting-time targets when the catalogue sets none: appointments called within 10 minutes of checking in,
# walk-ins within 30, and 80% of the people served within them (the service level). The catalogue's `queue.targets`
# (a branch's own over the defaults, a service's own under `services`) overrides any of them; a QueuePolicySet v1
# (before targets travelled) is upcast with these.
DEFAULT_WAIT_TARGETS = {"appointment_wait_minutes": 10, "walk_in_wait_minutes": 30, "service_level": 0.8}


def _registered(doc: dict, p: dict) -> None:
    doc.pop("retired", None)  # registering a retired branch again reopens it
    # a BranchRegistered before v2 had no street address: "" as its upcaster says, until the branch is registered again
    doc.update(id=p["branch"], directorate=p["directorate"], name_en=p["name_en"], name_ar=p["name_ar"],
               address_en=p.get("address_en", ""), address_ar=p.get("address_ar", ""),
               min_notice_minutes=p["min_notice_minutes"], max_days_ahead=p["max_days_ahead"])


def _offered(doc: dict, p: dict) -> None:
    if p["service"] in doc.get("withdrawn_services", {}):  # offered again
        doc["withdrawn_services"].pop(p["service"])
        if not doc["withdrawn_services"]:
            del doc["withdrawn_services"]
    service = dict(doc["services"].get(p["service"], {"counters": 0, "online_capacity": 0}))
    service.update(id=p["service"], name_en=p["name_en"], name_ar=p["name_ar"],
                   duration_minutes=p["duration_minutes"], ticket_prefix=p["ticket_prefix"])
    doc["services"][p["service"]] = service


def _capacity(doc: dict, p: dict) -> None:
    service = dict(doc["services"].get(p["service"], {"id": p["service"]}))
    service.update(counters=p["counters"], online_capacity=p["online_capacity"])
    doc["services"][p["service"]] = service


def _hours(doc: dict, p: dict) -> None:
    doc["week"] = {day: [[period["opens"], period["closes"]] for period in periods]
                   for day, periods in p["week"].items()}


def _policy(doc: dict, p: dict) -> None:
    doc["queue"] = {k: v for k, v in p.items() if k != "branch"}


def _holiday(doc: dict, p: dict) -> None:
    doc["holidays"][p["date"]] = {"name_en": p["name_en"], "name_ar": p["name_ar"]}


def _withdrawn(doc: dict, p: dict) -> None:
    service = doc["services"].pop(p["service"], None)
    if service is not None:  # applied twice (a redelivery), the names kept the first time stay
        kept = ("id", "name_en", "name_ar", "duration_minutes", "ticket_prefix")  # words, no capacity
        doc.setdefault("withdrawn_services", {})[p["service"]] = {k: service[k] for k in kept if k in service}


def _retired(doc: dict, p: dict) -> None:
    doc["retired"] = True


def _holiday_cancelled(doc: dict, p: dict) -> None:
    doc["holidays"].pop(p["date"], None)


def _release_delay(doc: dict, p: dict) -> None:
    doc["release_delay_minutes"] = p["release_delay_minutes"]


# What each availability event that names a branch does to its document.
STEPS = {"availability.BranchRegistered": _registered, "availability.ServiceOffered": _offered,
         "availability.CounterCapacitySet": _capacity, "availability.OpeningHoursSet": _hours,
         "availability.QueuePolicySet": _policy, "availability.HolidayDeclared": _holiday,
         "availability.ServiceWithdrawn": _withdrawn, "availability.BranchRetired": _retired,
         "availability.HolidayCancelled": _holiday_cancelled, "availability.ReleaseDelaySet": _release_delay}


def apply(branch: dict | None, event) -> dict:
    """The branch document after `event` (any availability event that names a branch), a new dict."""
    doc = dict(branch or {"services": {}, "week": {}, "holidays": {}})
    doc["services"], doc["holidays"] = dict(doc["services"]), dict(doc["holidays"])
    if "withdrawn_services" in doc:
        doc["withdrawn_services"] = dict(doc["withdrawn_services"])
    step = STEPS.get(event.type)
    if step:
        step(doc, event.payload)
    return doc


@dataclass(frozen=True)
class Slot:
    start: datetime   # UTC
    end: datetime
    capacity: int


def _hhmm(text: str) -> time:
    """"07:30" as a time of day: the catalogue's opening hours are written so."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def local_day(instant: datetime) -> date:
    """The date at the centres (Asia/Bahrain) of an instant."""
    return instant.astimezone(LOCAL).date()


def periods(branch: dict, day: date) -> list[tuple[time, time]]:
    """The opening periods of a branch on a local date: none on its weekly closing days and holidays, nor ever
    once it is retired."""
    if branch.get("retired") or day.isoformat() in branch.get("holidays", {}):
        return []
    return [(_hhmm(opens), _hhmm(closes)) for opens, closes in branch.get("week", {}).get(WEEKDAYS[day.weekday()], [])]


def is_open(branch: dict, now: datetime) -> bool:
    local = now.astimezone(LOCAL)
    return any(opens <= local.time() < closes for opens, closes in periods(branch, local.date()))


def closing_time(branch: dict, day: date) -> datetime | None:
    """When the branch's last opening period of `day` ends (local), None when it does not open that day."""
    found = periods(branch, day)
    return datetime.combine(day, max(closes for _, closes in found), LOCAL) if found else None


def slots(branch: dict, service_id: str, day: date) -> list[Slot]:
    """The bookable slots of one service at one branch on one local date (none on weekends and holidays)."""
    service = branch.get("services", {}).get(service_id)
    if not service or "duration_minutes" not in service:
        return []
    length = timedelta(minutes=service["duration_minutes"])
    result = []
    for opens, closes in periods(branch, day):
        start = datetime.combine(day, opens, LOCAL)
        close = datetime.combine(day, closes, LOCAL)
        while start + length <= close:
            result.append(Slot(start.astimezone(UTC), (start + length).astimezone(UTC),
                               service.get("online_capacity", 0)))
            start += length
    return result


def slot_at(branch: dict, service_id: str, start: datetime) -> Slot | None:
    """The slot starting exactly at `start`, if there is one."""
    start = start.astimezone(UTC)
    for slot in slots(branch, service_id, start.astimezone(LOCAL).date()):
        if slot.start == start:
            return slot
    return None


def slot_stream(branch: str, service: str, start: datetime) -> str:
    return f"slot-{branch}-{service}-{start.astimezone(UTC):%Y%m%dT%H%MZ}"


def window_problem(branch: dict, start: datetime, now: datetime) -> str | None:
    """Why a slot starting at `start` cannot be booked at `now`, as an error code; None when it can."""
    if start <= now:
        return "SLOT_IN_PAST"
    if start < now + timedelta(minutes=branch["min_notice_minutes"]):
        return "TOO_SOON"
    if start.astimezone(LOCAL).date() > now.astimezone(LOCAL).date() + timedelta(days=branch["max_days_ahead"]):
        return "OUTSIDE_BOOKING_WINDOW"
    return None


def closed_reason(branch: dict, day: date) -> dict | None:
    """Why a branch has no slots on a local date (closed down, holiday or weekly closing), for people to read."""
    if branch.get("retired"):
        return {"code": "RETIRED", "name_en": "The branch has closed down", "name_ar": "أُغلق هذا الفرع نهائيًا"}
    holiday = branch.get("holidays", {}).get(day.isoformat())
    if holiday:
        return {"code": "HOLIDAY", **holiday}
    if not branch.get("week", {}).get(WEEKDAYS[day.weekday()]):
        return {"code": "CLOSED", "name_en": "The branch is closed on this day", "name_ar": "الفرع مغلق في هذا اليوم"}
    return None


def require_service(branch: dict | None, branch_id: str, service_id: str) -> dict:
    """The branch's service, or the 404 that names what is unknown."""
    if branch is None:
        raise NotFound(f"There is no branch {branch_id!r}.", code="UNKNOWN_BRANCH",
                       message_ar="الفرع المطلوب غير موجود.")
    if branch.get("retired"):
        raise NotFound(f"The branch {branch_id!r} has closed down.", code="UNKNOWN_BRANCH",
                       message_ar="أُغلق هذا الفرع نهائيًا.")
    if service_id not in branch.get("services", {}):
        raise NotFound(f"The branch {branch_id!r} does not offer {service_id!r}.", code="UNKNOWN_SERVICE",
                       message_ar="الخدمة المطلوبة غير متوفرة في هذا الفرع.")
    return branch["services"][service_id]


def wait_targets(branch: dict | None, service: str | None = None) -> dict:
    """The waiting-time targets of a service at a branch: {"appointment": minutes, "walk_in": minutes,
    "service_level": share}. From the branch document's `queue.targets` (the service's own under `services` over
    the branch's), else DEFAULT_WAIT_TARGETS; no branch (or no service) gives the branch's (or the defaults)."""
    targets = ((branch or {}).get("queue") or {}).get("targets") or {}
    own = (targets.get("services") or {}).get(service) or {} if service is not None else {}

    def value(key):
        found = own.get(key, targets.get(key))
        return DEFAULT_WAIT_TARGETS[key] if found is None else found

    return {"appointment": value("appointment_wait_minutes"), "walk_in": value("walk_in_wait_minutes"),
            "service_level": value("service_level")}


def release_delay(branch: dict) -> timedelta:
    """How long a place freed by a cancellation stays taken at this branch (against trading places): a cancelled
    place is free again from `cancelled_at + release_delay`. Zero (at once) unless the catalogue sets it."""
    return timedelta(minutes=branch.get("release_delay_minutes", 0))


def with_former_services(branch: dict) -> dict:
    """The branch document with the services it no longer offers put back: for words about bookings made while it
    did (a cancellation notice, a booking shown), never for booking."""
    return {**branch, "services": {**branch.get("withdrawn_services", {}), **branch.get("services", {})}}
