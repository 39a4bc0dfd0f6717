"""The figures (services/insights/figures.py) on hand-built rows: each formula, an empty denominator, the
nearest-rank percentile, the wait bands."""
import copy
import uuid
from datetime import datetime, timedelta

from services.availability import catalogue_file
from services.insights import figures
from shared import schedule
from shared.clock import UTC
from shared.contracts import latest_version, validated_payload
from shared.events import Event

START = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def booking(status="active", moves=0, channel="web", hours_ahead=24):
    return {"status": status, "moves": moves, "channel": channel, "start": START,
            "booked_at": START - timedelta(hours=hours_ahead)}


def visit(kind="appointment", on_time=True, priority=None, called=True, served=True, wait=300, service=600,
          no_show=False, abandoned=False, recalls=0, transferred=0, score=None, has_comment=False):
    return {"kind": kind, "on_time": on_time, "priority": priority, "called": called, "served": served,
            "wait_seconds": wait if served else None, "service_seconds": service if served else None,
            "no_show": no_show, "abandoned": abandoned, "recalls": recalls, "transferred": transferred,
            "score": score, "has_comment": has_comment, "service": "passport-renewal", "branch": "npra-isa-town"}


def test_bookings_are_counted_by_what_became_of_them():
    rows = [booking(), booking("cancelled"), booking("expired", moves=2, channel="app"), booking(moves=1)]
    assert figures.bookings_made(rows) == 4
    assert figures.bookings_cancelled(rows) == 1
    assert figures.bookings_moved(rows) == 3
    assert figures.bookings_expired(rows) == 1
    assert figures.bookings_by_channel(rows) == {"app": 1, "web": 3}


def test_slot_utilisation_leaves_out_the_cancelled_and_is_null_without_places():
    rows = [booking(), booking(), booking("cancelled")]
    assert figures.slot_utilisation(rows, 8) == 0.25
    assert figures.slot_utilisation(rows, 0) is None


def test_lead_time_is_the_mean_of_booked_at_to_start_in_hours():
    assert figures.lead_time_hours_mean([booking(hours_ahead=24), booking(hours_ahead=48)]) == 36.0
    assert figures.lead_time_hours_mean([]) is None


def test_check_ins_by_kind_punctuality_and_priority():
    rows = [visit(), visit(on_time=False), visit(on_time=False), visit("walk_in", on_time=False, priority="elderly")]
    assert figures.check_ins(rows) == {"appointment_on_time": 1, "appointment_late": 2, "walk_in": 1, "priority": 1}
    assert figures.arrivals_on_time_share(rows) == 0.3333
    assert figures.arrivals_on_time_share([visit("walk_in")]) is None


def test_service_level_is_the_share_of_served_visits_within_their_kinds_target():
    rows = [visit(wait=600), visit(wait=601), visit("walk_in", wait=1800), visit("walk_in", wait=2400),
            visit(served=False, called=False)]  # not served: in no denominator
    assert figures.service_level(rows) == {"appointment": 0.5, "walk_in": 0.5, "all": 0.5}
    tight = lambda v: {"appointment": 1, "walk_in": 60, "service_level": 0.8}  # noqa: E731
    assert figures.service_level(rows, tight) == {"appointment": 0.0, "walk_in": 1.0, "all": 0.5}
    assert figures.service_level([]) == {"appointment": None, "walk_in": None, "all": None}


def test_percentiles_are_nearest_rank():
    assert figures.nearest_rank([], 90) is None
    assert figures.nearest_rank([5], 90) == 5
    assert figures.nearest_rank(list(range(1, 11)), 90) == 9     # ceil(0.9 × 10) = 9th
    assert figures.nearest_rank(list(range(1, 12)), 90) == 10    # ceil(0.9 × 11) = 10th
    assert figures.nearest_rank([30, 10, 20], 50) == 20


def test_wait_minutes_per_kind_and_for_all():
    rows = [visit(wait=60), visit(wait=180), visit(wait=600), visit("walk_in", wait=1200)]
    waits = figures.wait_minutes(rows)
    assert waits["appointment"] == {"mean": 4.67, "median": 3.0, "p90": 10.0}
    assert waits["walk_in"] == {"mean": 20.0, "median": 20.0, "p90": 20.0}
    assert waits["all"] == {"mean": 8.5, "median": 6.5, "p90": 20.0}
    assert figures.wait_minutes([])["all"] == {"mean": None, "median": None, "p90": None}
    assert figures.service_minutes([visit(service=120), visit(service=360)]) == {"mean": 4.0, "median": 4.0}


def test_rates_of_the_called_and_the_checked_in():
    rows = [visit(), visit(served=False, no_show=True, recalls=2), visit(recalls=1),
            visit(served=False, called=False, abandoned=True), visit(transferred=2)]
    assert figures.served(rows) == 3
    assert figures.no_show_rate(rows) == 0.25        # 1 of 4 called
    assert figures.recall_rate(rows) == 0.5          # 2 of 4 called
    assert figures.abandonment_rate(rows) == 0.2     # 1 of 5 checked in
    assert figures.transfers(rows) == 2
    assert figures.served_per_counter_hour(rows, 1.5) == 2.0
    assert figures.served_per_counter_hour(rows, 0) is None
    nobody_called = [visit(served=False, called=False)]
    assert figures.no_show_rate(nobody_called) is None and figures.recall_rate(nobody_called) is None
    assert figures.abandonment_rate([]) is None


def test_satisfaction_and_its_wait_bands():
    rows = [visit(wait=0, score=5, has_comment=True), visit(wait=599, score=4), visit(wait=600, score=2),
            visit(wait=3600, score=1, has_comment=True), visit(wait=100)]
    assert figures.satisfaction(rows) == {"mean": 3.0, "distribution": {"1": 1, "2": 1, "3": 0, "4": 1, "5": 1},
                                          "response_rate": 0.8, "comments": 2}
    assert figures.satisfaction_by_wait_band(rows) == [
        {"band": "0-10", "rated": 2, "mean": 4.5}, {"band": "10-20", "rated": 1, "mean": 2.0},
        {"band": "20-30", "rated": 0, "mean": None}, {"band": "30-60", "rated": 0, "mean": None},
        {"band": "60+", "rated": 1, "mean": 1.0}]
    assert figures.satisfaction([])["mean"] is None and figures.satisfaction([])["response_rate"] is None


def test_targets_come_from_the_branch_document_else_the_defaults():
    assert figures.DEFAULT_TARGETS == schedule.wait_targets(None) == {"appointment": 10, "walk_in": 30,
                                                                      "service_level": 0.8}
    branch = {"queue": {"targets": {"walk_in_wait_minutes": 45,
                                    "services": {"passport-renewal": {"appointment_wait_minutes": 5}}}}}
    assert schedule.wait_targets(branch, "passport-renewal") == {"appointment": 5, "walk_in": 45, "service_level": 0.8}
    assert schedule.wait_targets(branch, "other") == {"appointment": 10, "walk_in": 45, "service_level": 0.8}


def _service_level_at(catalogue: dict, rows: list[dict]) -> dict:
    """The insights service level of rows at npra-isa-town, its branch document folded from the catalogue's events
    (as every copy of the catalogue holds it), its targets as the insights queries look them up."""
    _, branches = catalogue_file.desired(catalogue)
    doc = None
    for change in catalogue_file.changes(catalogue, {}, {}):
        if change.stream_id == "branch-npra-isa-town":
            event = Event(str(uuid.uuid4()), change.event.type, latest_version(change.event.type), change.stream_id,
                          1, 1, START, "c", None, "npra",
                          validated_payload(change.event.type, latest_version(change.event.type), change.event.payload))
            doc = schedule.apply(doc, event)
    assert doc["queue"] == branches["npra-isa-town"]["queue"]
    return figures.service_level(rows, lambda v: schedule.wait_targets(doc, v["service"]))


def test_a_target_changed_in_a_catalogue_copy_changes_the_service_level():
    seed = catalogue_file.read()
    rows = [visit("walk_in", wait=25 * 60), visit("walk_in", wait=10 * 60), visit(wait=8 * 60), visit(wait=12 * 60)]
    assert _service_level_at(seed, rows) == {"appointment": 0.5, "walk_in": 1.0, "all": 0.75}
    tighter = copy.deepcopy(seed)   # the catalogue's defaults: appointments within 15 minutes
    tighter["queue"]["targets"]["appointment_wait_minutes"] = 15
    assert _service_level_at(tighter, rows) == {"appointment": 1.0, "walk_in": 1.0, "all": 1.0}
    per_service = copy.deepcopy(seed)   # this branch, passport renewal only: walk-ins within 20 minutes
    [isa_town] = [b for d in per_service["directorates"] for b in d["branches"] if b["id"] == "npra-isa-town"]
    isa_town["queue"] = {"targets": {"services": {"passport-renewal": {"walk_in_wait_minutes": 20}}}}
    assert _service_level_at(per_service, rows) == {"appointment": 0.5, "walk_in": 0.5, "all": 0.5}


def test_every_figure_of_nothing_is_zero_or_null():
    empty = figures.figures([], [], 0, 0)
    assert empty["bookings_made"] == 0 and empty["served"] == 0 and empty["bookings_by_channel"] == {}
    assert empty["slot_utilisation"] is None and empty["served_per_counter_hour"] is None
    assert set(empty) == {"bookings_made", "bookings_cancelled", "bookings_moved", "bookings_expired",
                          "bookings_by_channel", "places_offered", "slot_utilisation", "lead_time_hours_mean",
                          "check_ins", "arrivals_on_time_share", "service_level", "wait_minutes", "service_minutes",
                          "served", "no_show_rate", "abandonment_rate", "recall_rate", "transfers",
                          "served_per_counter_hour", "satisfaction", "satisfaction_by_wait_band"}
