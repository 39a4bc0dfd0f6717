"""The figures of the insights service, each defined once, as pure functions over plain rows (no database).

A booking row: {status: active|cancelled|expired, moves, channel, booked_at, start} (instants aware).
A visit row: {kind: appointment|walk_in, priority, on_time, called, served, wait_seconds, service_seconds,
no_show, abandoned, recalls, transferred, score, has_comment}. Counter-hours are a number of hours.
Every figure over a denominator of 0 is None; rates and minutes are rounded (rates to 4 places, minutes and
hours to 2) so that the same rows always give the same answer, whoever sums them.
"""
import math
from statistics import mean, median

from shared.schedule import wait_targets  # the waiting-time targets (and their defaults), defined once

# The targets when no branch is given: the defaults (10 minutes for appointments, 30 for walk-ins). A branch's
# come from its queue policy (QueuePolicySet v2 `targets`): wait_targets(branch_document, service).
DEFAULT_TARGETS = wait_targets(None)
KINDS = ("appointment", "walk_in")
WAIT_BANDS = (("0-10", 0, 10), ("10-20", 10, 20), ("20-30", 20, 30), ("30-60", 30, 60), ("60+", 60, None))
SCORES = ("1", "2", "3", "4", "5")


def ratio(numerator: float, denominator: float, places: int = 4) -> float | None:
    """numerator ÷ denominator, None when the denominator is 0."""
    return round(numerator / denominator, places) if denominator else None


def nearest_rank(values: list[float], percent: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `percent`% of the values at or below it,
    i.e. sorted(values)[ceil(percent/100 × n) - 1]."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- bookings (by the day of the appointment) -----------------------------------------------------------------

def bookings_made(bookings: list[dict]) -> int:
    """Bookings whose appointment falls in the period, whatever became of them."""
    return len(bookings)


def bookings_cancelled(bookings: list[dict]) -> int:
    """Of those, the ones cancelled (by the person, the centre or the catalogue shrinking)."""
    return sum(1 for b in bookings if b["status"] == "cancelled")


def bookings_moved(bookings: list[dict]) -> int:
    """Times those bookings were moved to another slot (one per BookingRescheduled)."""
    return sum(b["moves"] for b in bookings)


def bookings_expired(bookings: list[dict]) -> int:
    """Of those, the ones whose day ended without the person checking in."""
    return sum(1 for b in bookings if b["status"] == "expired")


def bookings_by_channel(bookings: list[dict]) -> dict:
    """{channel: bookings made through it}."""
    found = {}
    for b in bookings:
        found[b["channel"]] = found.get(b["channel"], 0) + 1
    return dict(sorted(found.items()))


def slot_utilisation(bookings: list[dict], places: int) -> float | None:
    """(bookings_made − bookings_cancelled) ÷ places_offered."""
    return ratio(bookings_made(bookings) - bookings_cancelled(bookings), places)


def lead_time_hours_mean(bookings: list[dict]) -> float | None:
    """Mean of (appointment start − booked_at) in hours, over bookings_made (the start after any move)."""
    if not bookings:
        return None
    return round(mean((b["start"] - b["booked_at"]).total_seconds() / 3600 for b in bookings), 2)


# -- visits (by the branch day of the ticket) -------------------------------------------------------------------

def check_ins(visits: list[dict]) -> dict:
    """Check-ins: appointments on time (by start + grace), appointments late, walk-ins, and those with a priority
    (elderly, disabled; counted also in their kind)."""
    return {"appointment_on_time": sum(1 for v in visits if v["kind"] == "appointment" and v["on_time"]),
            "appointment_late": sum(1 for v in visits if v["kind"] == "appointment" and not v["on_time"]),
            "walk_in": sum(1 for v in visits if v["kind"] == "walk_in"),
            "priority": sum(1 for v in visits if v["priority"])}


def arrivals_on_time_share(visits: list[dict]) -> float | None:
    """On-time appointment check-ins ÷ appointment check-ins."""
    counts = check_ins(visits)
    return ratio(counts["appointment_on_time"], counts["appointment_on_time"] + counts["appointment_late"])


def _within_target(visit: dict, targets) -> bool:
    return visit["wait_seconds"] <= targets(visit)[visit["kind"]] * 60


def service_level(visits: list[dict], targets=lambda visit: DEFAULT_TARGETS) -> dict:
    """Per kind and for all: served visits whose wait ≤ the target of their kind ÷ served visits.
    `targets(visit)` gives the targets that hold for a visit (its branch's and service's: shared.schedule.wait_targets
    of its branch document and service, {"appointment": minutes, "walk_in": minutes, ...})."""
    served = [v for v in visits if v["served"]]
    result = {}
    for kind in KINDS:
        of_kind = [v for v in served if v["kind"] == kind]
        result[kind] = ratio(sum(1 for v in of_kind if _within_target(v, targets)), len(of_kind))
    result["all"] = ratio(sum(1 for v in served if _within_target(v, targets)), len(served))
    return result


def _wait_summary(seconds: list[int]) -> dict:
    minutes = [s / 60 for s in seconds]
    return {"mean": _minutes(mean(minutes)) if minutes else None,
            "median": _minutes(median(minutes)) if minutes else None,
            "p90": _minutes(nearest_rank(minutes, 90))}


def wait_minutes(visits: list[dict]) -> dict:
    """Waits of served visits (check-in to first call, in minutes): mean, median (the middle two averaged when
    even) and p90 (nearest rank), per kind and for all."""
    served = [v for v in visits if v["served"]]
    result = {kind: _wait_summary([v["wait_seconds"] for v in served if v["kind"] == kind]) for kind in KINDS}
    result["all"] = _wait_summary([v["wait_seconds"] for v in served])
    return result


def service_minutes(visits: list[dict]) -> dict:
    """Time at the counter of served visits, in minutes: mean and median."""
    minutes = [v["service_seconds"] / 60 for v in visits if v["served"]]
    return {"mean": _minutes(mean(minutes)) if minutes else None,
            "median": _minutes(median(minutes)) if minutes else None}


def served(visits: list[dict]) -> int:
    """Visits served at a counter."""
    return sum(1 for v in visits if v["served"])


def no_show_rate(visits: list[dict]) -> float | None:
    """No-shows ÷ visits called at least once."""
    return ratio(sum(1 for v in visits if v["no_show"]), sum(1 for v in visits if v["called"]))


def abandonment_rate(visits: list[dict]) -> float | None:
    """Visits closed out at the day's end without ever being called ÷ check-ins."""
    return ratio(sum(1 for v in visits if v["abandoned"]), len(visits))


def recall_rate(visits: list[dict]) -> float | None:
    """Visits recalled at least once ÷ visits called at least once."""
    return ratio(sum(1 for v in visits if v["recalls"] > 0), sum(1 for v in visits if v["called"]))


def transfers(visits: list[dict]) -> int:
    """Transfers of tickets to another service's queue."""
    return sum(v["transferred"] for v in visits)


def served_per_counter_hour(visits: list[dict], counter_hours: float) -> float | None:
    """served ÷ hours counters were open (opened to closed, or to the day's close)."""
    return ratio(served(visits), counter_hours, 2)


def satisfaction(visits: list[dict]) -> dict:
    """Ratings: mean score, how many gave each score, response_rate = rated ÷ served, comments = ratings with a
    comment."""
    scores = [v["score"] for v in visits if v["score"] is not None]
    return {"mean": round(mean(scores), 2) if scores else None,
            "distribution": {s: sum(1 for score in scores if str(score) == s) for s in SCORES},
            "response_rate": ratio(len(scores), served(visits)),
            "comments": sum(1 for v in visits if v["score"] is not None and v["has_comment"])}


def satisfaction_by_wait_band(visits: list[dict]) -> list[dict]:
    """Rated visits by their wait in minutes (a band holds low ≤ wait < high): how many and their mean score."""
    bands = []
    for band, low, high in WAIT_BANDS:
        scores = [v["score"] for v in visits if v["score"] is not None and v["wait_seconds"] is not None
                  and low * 60 <= v["wait_seconds"] and (high is None or v["wait_seconds"] < high * 60)]
        bands.append({"band": band, "rated": len(scores), "mean": round(mean(scores), 2) if scores else None})
    return bands


def figures(bookings: list[dict], visits: list[dict], places: int, counter_hours: float,
            targets=lambda visit: DEFAULT_TARGETS) -> dict:
    """Every figure of one period and scope, from its rows."""
    return {
        "bookings_made": bookings_made(bookings),
        "bookings_cancelled": bookings_cancelled(bookings),
        "bookings_moved": bookings_moved(bookings),
        "bookings_expired": bookings_expired(bookings),
        "bookings_by_channel": bookings_by_channel(bookings),
        "places_offered": places,
        "slot_utilisation": slot_utilisation(bookings, places),
        "lead_time_hours_mean": lead_time_hours_mean(bookings),
        "check_ins": check_ins(visits),
        "arrivals_on_time_share": arrivals_on_time_share(visits),
        "service_level": service_level(visits, targets),
        "wait_minutes": wait_minutes(visits),
        "service_minutes": service_minutes(visits),
        "served": served(visits),
        "no_show_rate": no_show_rate(visits),
        "abandonment_rate": abandonment_rate(visits),
        "recall_rate": recall_rate(visits),
        "transfers": transfers(visits),
        "served_per_counter_hour": served_per_counter_hour(visits, counter_hours),
        "satisfaction": satisfaction(visits),
        "satisfaction_by_wait_band": satisfaction_by_wait_band(visits),
    }
