"""The waiting-room view of one branch's day, as screens and managers read it."""
from datetime import datetime

from shared.clock import LOCAL
from services.queue import domain
from services.queue.domain import Day


def _local(instant: datetime | None) -> str | None:
    return instant.astimezone(LOCAL).isoformat() if instant else None


def _mean(values: list) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def averages(day: Day) -> dict:
    """The day's measured averages: waiting and service time of served visits, and their satisfaction."""
    served = [t for t in day.tickets.values() if t.status == "served"]
    rated = [t.score for t in served if t.score is not None]
    return {
        "served": len(served),
        "no_shows": sum(1 for t in day.tickets.values() if t.status == "no_show"),
        "wait_minutes": _mean([t.waited_seconds / 60 for t in served]),
        "service_minutes": _mean([t.service_seconds / 60 for t in served if t.service_seconds is not None]),
        "satisfaction": _mean(rated),
        "ratings": len(rated),
    }


def waiting_room(day: Day, branch: dict, now: datetime, last: int = 10) -> dict:
    waiting = []
    for service_id, service in sorted(branch["services"].items()):
        line = domain.line(day, service_id, now)
        waiting.append({
            "service": service_id, "name_en": service["name_en"], "name_ar": service["name_ar"],
            "count": len(line),
            "estimated_wait_minutes": domain.estimated_wait_minutes(day, branch, service_id, len(line) + 1),
            "tickets": [{"id": t.id, "number": t.number, "kind": t.kind, "priority": t.priority,
                         "lane": t.lane(now), "position": i, "checked_in_at": _local(t.queued_at),
                         "estimated_wait_minutes": domain.estimated_wait_minutes(day, branch, service_id, i)}
                        for i, t in enumerate(line, start=1)],
        })
    called = sorted((t for t in day.tickets.values() if t.last_called_at), key=lambda t: (t.last_called_at, t.seq),
                    reverse=True)
    return {
        "branch": day.branch, "name_en": branch["name_en"], "name_ar": branch["name_ar"],
        "date": day.day.isoformat(), "closed": day.closed,
        "waiting": waiting,
        "now_serving": [{"counter": c.id, "number": day.tickets[c.serving].number,
                         "service": day.tickets[c.serving].service}
                        for c in sorted(day.counters.values(), key=lambda c: c.id) if c.serving],
        "last_called": [{"number": t.number, "counter": t.counter, "service": t.service,
                         "called_at": _local(t.last_called_at), "status": t.status} for t in called[:last]],
        "counters": [{"counter": c.id, "services": c.services, "open": c.open,
                      "serving": day.tickets[c.serving].number if c.serving else None}
                     for c in sorted(day.counters.values(), key=lambda c: c.id)],
        "averages": averages(day),
    }


def board(day: Day, branch: dict, now: datetime) -> dict:
    """The public waiting-room board, as a screen in the hall shows it: ticket numbers and counters, how many
    wait for each service and for how long; no ticket ids, references, names or CPRs."""
    room = waiting_room(day, branch, now)
    return {**{k: room[k] for k in ("branch", "name_en", "name_ar", "date", "closed", "now_serving")},
            "last_called": [{k: v for k, v in call.items() if k != "status"} for call in room["last_called"]],
            "waiting": [{k: v for k, v in line.items() if k != "tickets"} for line in room["waiting"]]}
