"""The catalogue file a platform team edits, and the events that bring the log in line with it.

Loading is a diff: each fact of the file that the projection does not already hold becomes one event, so
loading the same file twice appends nothing, and editing one branch's hours appends one OpeningHoursSet.
What the projection holds and the file no longer has is recorded too: a service gone from a branch is
ServiceWithdrawn, a branch gone from the file BranchRetired (its history stays; listing it again reopens it), a
holiday gone HolidayCancelled. The booking service cancels the bookings these leave without a place
(services/booking/withdrawals.py).
"""
from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.contracts import latest_version, validated_payload
from shared.events import NewEvent
from shared.errors import ContractError
from shared.schedule import DEFAULT_WAIT_TARGETS

DEFAULT_CATALOGUE = Path(__file__).with_name("catalogue.yml")
DEFAULT_QUEUE_POLICY = {"check_in_early_minutes": 30, "check_in_late_minutes": 30, "on_time_grace_minutes": 10,
                        "appointments_per_walk_in": 3, "max_recalls": 2, "recall_interval_seconds": 60,
                        "walk_ins_per_service": 40, "targets": DEFAULT_WAIT_TARGETS}


class CatalogueError(Exception):
    pass


def _targets(defaults: dict, branch: dict, services: dict) -> dict:
    """A branch's waiting-time targets: the catalogue's `queue.targets` (over DEFAULT_WAIT_TARGETS) with the
    branch's own over them, key by key, and a service's own under `services` (only for services it offers here)."""
    merged = {**defaults, **branch}
    per_service = {}
    for source in (defaults.get("services") or {}, branch.get("services") or {}):
        for service_id, own in source.items():
            per_service[service_id] = {**per_service.get(service_id, {}), **own}
    merged.pop("services", None)
    offered = {sid: own for sid, own in sorted(per_service.items()) if sid in services and own}
    if offered:
        merged["services"] = offered
    return merged


@dataclass(frozen=True)
class Change:
    stream_id: str
    event: NewEvent


def read(path: str | Path | None = None) -> dict:
    path = Path(path or DEFAULT_CATALOGUE)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read the catalogue {path}: {exc}") from None


def desired(catalogue: dict) -> tuple[dict, dict]:
    """(directorates by id, branch documents by id) as the file describes them."""
    try:
        window = catalogue.get("booking_window", {})
        queue_defaults = {**DEFAULT_QUEUE_POLICY, **(catalogue.get("queue") or {})}
        target_defaults = {**DEFAULT_WAIT_TARGETS, **((catalogue.get("queue") or {}).get("targets") or {})}
        patterns = catalogue.get("opening_hours", {})
        holidays = {str(h["date"]): {"name_en": h["name_en"], "name_ar": h["name_ar"]}
                    for h in catalogue.get("holidays", [])}
        directorates, branches = {}, {}
        for d in catalogue["directorates"]:
            directorates[d["id"]] = {"id": d["id"], "name_en": d["name_en"], "name_ar": d["name_ar"]}
            offered = {s["id"]: s for s in d["services"]}
            for b in d["branches"]:
                hours = b["opening_hours"]
                week = patterns[hours] if isinstance(hours, str) else hours
                branch_window = {**window, **b.get("booking_window", {})}
                services = {}
                for service_id, capacity in b["services"].items():
                    s = offered[service_id]
                    services[service_id] = {
                        "id": service_id, "name_en": s["name_en"], "name_ar": s["name_ar"],
                        "duration_minutes": s["duration_minutes"], "ticket_prefix": s["ticket_prefix"],
                        "counters": capacity["counters"],
                        "online_capacity": capacity.get("online", capacity["counters"]),
                    }
                branch_queue = {**queue_defaults, **(b.get("queue") or {})}
                quotas = branch_queue.pop("walk_in_quota", {})
                per_service = branch_queue.pop("walk_ins_per_service")
                branch_queue["walk_in_quota"] = {sid: quotas.get(sid, per_service) for sid in services}
                branch_queue["targets"] = _targets(target_defaults, (b.get("queue") or {}).get("targets") or {},
                                                   services)
                branches[b["id"]] = {
                    "id": b["id"], "directorate": d["id"], "name_en": b["name_en"], "name_ar": b["name_ar"],
                    "address_en": b["address_en"], "address_ar": b["address_ar"],
                    "min_notice_minutes": branch_window["min_notice_minutes"],
                    "max_days_ahead": branch_window["max_days_ahead"],
                    "week": {day: [list(p) for p in periods] for day, periods in week.items()},
                    "services": services, "holidays": dict(holidays), "queue": branch_queue,
                }
                delay = branch_window.get("release_delay_minutes", 0)
                if delay:  # absent means 0, as in a branch document never told otherwise
                    branches[b["id"]]["release_delay_minutes"] = delay
    except (KeyError, TypeError, AttributeError) as exc:
        raise CatalogueError(f"the catalogue is missing or mistypes {exc}") from None
    for branch_id, branch in branches.items():  # people are sent there: an address is never left blank
        for key in ("address_en", "address_ar"):
            if not isinstance(branch[key], str) or not branch[key].strip():
                raise CatalogueError(f"the catalogue entry for branch-{branch_id} has no {key}")
    return directorates, branches


def changes(catalogue: dict, current_directorates: dict, current_branches: dict) -> list[Change]:
    """The events that turn the current projection into what the catalogue describes."""
    want_directorates, want_branches = desired(catalogue)
    result = []
    for directorate_id, want in want_directorates.items():
        if current_directorates.get(directorate_id) != want:
            result.append(Change(f"directorate-{directorate_id}", NewEvent(
                "availability.DirectorateRegistered", {"directorate": directorate_id, "name_en": want["name_en"],
                                                       "name_ar": want["name_ar"]}, directorate_id)))
    for branch_id, want in want_branches.items():
        have = current_branches.get(branch_id) or {"services": {}, "week": {}, "holidays": {}}
        stream, directorate = f"branch-{branch_id}", want["directorate"]

        def event(type_, payload):
            result.append(Change(stream, NewEvent(f"availability.{type_}", {"branch": branch_id, **payload},
                                                  directorate)))

        registration = ("directorate", "name_en", "name_ar", "address_en", "address_ar", "min_notice_minutes",
                        "max_days_ahead")
        if any(have.get(k) != want[k] for k in registration) or have.get("retired"):  # back in the file: reopened
            event("BranchRegistered", {k: want[k] for k in registration})
        for service_id in sorted(set(have["services"]) - set(want["services"])):
            event("ServiceWithdrawn", {"service": service_id})
        for service_id, service in want["services"].items():
            had = have["services"].get(service_id, {})
            offer = ("name_en", "name_ar", "duration_minutes", "ticket_prefix")
            if any(had.get(k) != service[k] for k in offer):
                event("ServiceOffered", {"service": service_id, **{k: service[k] for k in offer}})
            if (had.get("counters"), had.get("online_capacity")) != (service["counters"], service["online_capacity"]):
                event("CounterCapacitySet", {"service": service_id, "counters": service["counters"],
                                             "online_capacity": service["online_capacity"]})
        if have.get("queue") != want["queue"]:
            event("QueuePolicySet", want["queue"])
        if have["week"] != want["week"]:
            event("OpeningHoursSet", {"week": {day: [{"opens": o, "closes": c} for o, c in periods]
                                               for day, periods in want["week"].items()}})
        for day, names in want["holidays"].items():
            if have["holidays"].get(day) != names:
                event("HolidayDeclared", {"date": day, **names})
        for day in sorted(set(have["holidays"]) - set(want["holidays"])):
            event("HolidayCancelled", {"date": day})
        if have.get("release_delay_minutes", 0) != want.get("release_delay_minutes", 0):
            event("ReleaseDelaySet", {"release_delay_minutes": want.get("release_delay_minutes", 0)})
    for branch_id in sorted(set(current_branches) - set(want_branches)):  # gone from the file: closed down
        have = current_branches[branch_id]
        if not have.get("retired"):
            result.append(Change(f"branch-{branch_id}", NewEvent("availability.BranchRetired", {"branch": branch_id},
                                                                  have.get("directorate"))))
    for change in result:  # a wrong value ("7:00", a prefix "AB") is the file's fault: say where it is
        try:
            validated_payload(change.event.type, latest_version(change.event.type), change.event.payload)
        except ContractError as exc:
            raise CatalogueError(f"the catalogue entry for {change.stream_id} is invalid: {exc}") from None
    return result
