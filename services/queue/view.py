"""The waiting-room view of one branch's day, as screens and managers read it."""
from collections import Counter
from datetime import datetime

from shared.clock import LOCAL
from shared.schedule import is_open, periods
from services.queue import domain
from services.queue.domain import Day


def _local(instant: datetime | None) -> str | None:
    return instant.astimezone(LOCAL).isoformat() if instant else None


def _mean(values: list) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def averages(day: Day) -> dict:
    """The day's measured averages: waiting and service time of served visits (and the longest wait), their
    satisfaction, and how many were served in each local hour (the hours with nobody served left out)."""
    served = [t for t in day.tickets.values() if t.status == "served"]
    rated = [t.score for t in served if t.score is not None]
    by_hour = Counter(t.served_at.astimezone(LOCAL).hour for t in served if t.served_at)
    return {
        "served": len(served),
        "no_shows": sum(1 for t in day.tickets.values() if t.status == "no_show"),
        "wait_minutes": _mean([t.waited_seconds / 60 for t in served]),
        "longest_wait_minutes": round(max(t.waited_seconds for t in served) / 60, 2) if served else None,
        "service_minutes": _mean([t.service_seconds / 60 for t in served if t.service_seconds is not None]),
        "satisfaction": _mean(rated),
        "ratings": len(rated),
        "served_by_hour": [{"hour": f"{hour:02d}:00", "served": n} for hour, n in sorted(by_hour.items())],
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
        # today's opening hours as this service's copy of the catalogue knows them, and whether it is open now
        "hours": [{"opens": f"{o:%H:%M}", "closes": f"{c:%H:%M}"} for o, c in periods(branch, day.day)],
        "open_now": not day.closed and is_open(branch, now),
        "waiting": waiting,
        "now_serving": [{"counter": c.id, "number": day.tickets[c.serving].number,
                         "service": day.tickets[c.serving].service}
                        for c in sorted(day.counters.values(), key=lambda c: c.id) if c.serving],
        "last_called": [{"number": t.number, "counter": t.counter, "service": t.service,
                         "called_at": _local(t.last_called_at), "status": t.status} for t in called[:last]],
        "counters": [{"counter": c.id, "services": c.services, "open": c.open,
                      "serving": day.tickets[c.serving].number if c.serving else None}
                     for c in sorted(day.counters.values(), key=lambda c: c.id)],
        "at_counters": [{"counter": c.id, "id": t.id, "number": t.number, "service": t.service, "kind": t.kind,
                         "priority": t.priority, "recalls": t.recalls, "called_at": _local(t.last_called_at)}
                        for c in sorted(day.counters.values(), key=lambda c: c.id) if c.serving
                        for t in (day.tickets[c.serving],)],
        "averages": averages(day),
    }


def board(day: Day, branch: dict, now: datetime) -> dict:
    """The public waiting-room board, as a screen in the hall shows it: ticket numbers and counters, how many
    wait for each service and for how long; no ticket ids, references, names or CPRs."""
    room = waiting_room(day, branch, now)
    return {**{k: room[k] for k in ("branch", "name_en", "name_ar", "date", "closed", "hours", "open_now",
                                   "now_serving")},
            "last_called": [{k: v for k, v in call.items() if k != "status"} for call in room["last_called"]],
            "waiting": [{k: v for k, v in line.items() if k != "tickets"} for line in room["waiting"]]}


def public_ticket(day: Day, branch: dict, ticket: domain.Ticket, now: datetime) -> dict:
    """One ticket as its holder's live page shows it: number, service, status, place in line and estimated
    wait while waiting, the counter once called; no ids, references, names, CPRs or priority group."""
    service = branch["services"][ticket.service]
    answer = {"number": ticket.number, "branch": day.branch, "branch_name_en": branch["name_en"],
              "branch_name_ar": branch["name_ar"], "date": day.day.isoformat(), "service": ticket.service,
              "service_name_en": service["name_en"], "service_name_ar": service["name_ar"],
              "status": ticket.status, "position": None, "estimated_wait_minutes": None, "counter": None,
              "called_at": None, "recalls": 0}
    if ticket.status == "waiting":
        line = [t.id for t in domain.line(day, ticket.service, now)]
        if ticket.id in line:
            position = 1 + line.index(ticket.id)
            answer.update(position=position,
                          estimated_wait_minutes=domain.estimated_wait_minutes(day, branch, ticket.service, position))
    elif ticket.status == "called":
        answer.update(counter=ticket.counter, called_at=_local(ticket.last_called_at), recalls=ticket.recalls)
    return answer
