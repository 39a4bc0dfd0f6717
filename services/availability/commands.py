"""What the availability service does, apart from nameko: catalogue sync and the read side."""
import logging
from datetime import date, datetime, time, timedelta

from shared import catalogue, schedule
from shared.clock import LOCAL
from shared.errors import NotFound
from shared.retry import retrying
from shared.eventstore import Database
from services.availability import catalogue_file, projection

log = logging.getLogger(__name__)


def sync_catalogue(db: Database, path: str | None) -> int:
    """Append the events that bring the log in line with the catalogue file; returns how many."""
    wanted = catalogue_file.read(path)

    def decide():  # another instance syncing at the same moment makes this conflict: look again
        with db.transaction() as uow:
            have_directorates, have_branches = catalogue.load_catalogue(uow)
            changes = catalogue_file.changes(wanted, have_directorates, have_branches)
            for change in changes:
                for event in uow.append(change.stream_id, uow.store.stream_version(change.stream_id), [change.event]):
                    catalogue.project(uow, event)
        return len(changes)

    recorded = retrying("availability", "sync-catalogue", decide, attempts=5)
    if recorded:
        log.info("catalogue: recorded %d changes from %s", recorded, path or catalogue_file.DEFAULT_CATALOGUE)
    return recorded


def directorates(db: Database) -> list[dict]:
    with db.transaction() as uow:
        found, _ = catalogue.load_catalogue(uow)
    return sorted(found.values(), key=lambda d: d["id"])


# The week as the centres count it (Sunday first), with each day's name for people to read.
WEEK = (("sun", "Sunday", "الأحد"), ("mon", "Monday", "الاثنين"), ("tue", "Tuesday", "الثلاثاء"),
        ("wed", "Wednesday", "الأربعاء"), ("thu", "Thursday", "الخميس"), ("fri", "Friday", "الجمعة"),
        ("sat", "Saturday", "السبت"))


def opening_hours(branch: dict) -> list[dict]:
    """A branch's week for people: each day (Sunday first) with its opening periods, none on a closing day."""
    week = branch.get("week", {})
    return [{"day": key, "day_name_en": en, "day_name_ar": ar,
             "periods": [{"opens": opens, "closes": closes} for opens, closes in week.get(key, [])]}
            for key, en, ar in WEEK]


def branches(db: Database, directorate: str | None) -> list[dict]:
    with db.transaction() as uow:
        known, found = catalogue.load_catalogue(uow)
    if directorate and directorate not in known:
        raise NotFound(f"There is no directorate {directorate!r}.", code="UNKNOWN_DIRECTORATE",
                       message_ar="الإدارة المطلوبة غير موجودة.")
    return [{
        "id": b["id"], "directorate": b["directorate"], "name_en": b["name_en"], "name_ar": b["name_ar"],
        # "" for a branch registered before addresses were recorded, until the catalogue's next sync
        "address_en": b.get("address_en", ""), "address_ar": b.get("address_ar", ""),
        "services": [{"id": s["id"], "name_en": s["name_en"], "name_ar": s["name_ar"],
                      "duration_minutes": s["duration_minutes"]}
                     for s in sorted(b["services"].values(), key=lambda s: s["id"])],
        "opening_hours": opening_hours(b),
        "booking_window": {"min_notice_minutes": b.get("min_notice_minutes"),
                           "max_days_ahead": b.get("max_days_ahead")},
    } for b in sorted(found.values(), key=lambda b: b["id"])
        if not b.get("retired") and (not directorate or b["directorate"] == directorate)]  # retired: history only


def availability(db: Database, branch_id: str, service_id: str, day: date, now: datetime) -> dict:
    """A day's slots with the places left. A place freed by a cancellation counts as taken until the branch's
    release delay has passed since the cancellation (none by default)."""
    since = datetime.combine(day, time(0), LOCAL)
    until = since + timedelta(days=1)
    with db.transaction() as uow:
        branch = catalogue.load_branch(uow, branch_id)
        schedule.require_service(branch, branch_id, service_id)
        booked = projection.booked_counts(uow, branch_id, service_id, since, until)
        delay = schedule.release_delay(branch)
        held = projection.held_counts(uow, branch_id, service_id, since, until, now - delay) if delay else {}
    slots = [{
        "start": slot.start.astimezone(LOCAL).isoformat(),
        "end": slot.end.astimezone(LOCAL).isoformat(),
        "capacity": slot.capacity,
        "remaining": max(0, slot.capacity - booked.get(slot.start, 0) - held.get(slot.start, 0)),
        "bookable": schedule.window_problem(branch, slot.start, now) is None,
    } for slot in schedule.slots(branch, service_id, day)]
    answer = {"branch": branch_id, "service": service_id, "date": day.isoformat(), "slots": slots}
    closed = schedule.closed_reason(branch, day)
    if closed:
        answer["closed"] = closed
    return answer
