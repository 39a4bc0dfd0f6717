"""The insights projection (services/insights/projection.py) and its read side (queries.py) on both databases:
events appended to booking's and the queue's logs, taken by insights' consumers, give rows and figures; a
redelivery changes nothing; `replay` rebuilds the same tables from the logs."""
from datetime import datetime, timedelta

import pytest

from shared import catalogue, topology
from shared.clock import LOCAL, clock
from shared.contracts import types_of
from shared.dependencies import service_metadata
from shared.events import NewEvent
from shared.projection import Logs, apply_once
from services.availability import catalogue_file
from services.insights import projection, queries, replay
from tests.support.store import sequenced

BRANCH, SERVICE, DAY = "npra-isa-town", "passport-renewal", "2026-12-07"
MONDAY = datetime(2026, 12, 7, tzinfo=LOCAL)


def at(hh, mm=0):
    return MONDAY.replace(hour=hh, minute=mm)


@pytest.fixture
def story(open_db, monkeypatch):
    """(insights db, source logs, deliver): the catalogue copy, and a way to make an event happen at an instant
    in a source's log and deliver it to insights."""
    monkeypatch.setattr(clock, "speed", 0.0)
    db = open_db("insights", projection.metadata)
    logs = {name: open_db(name, service_metadata()) for name in ("availability", "booking", "queue")}
    with logs["availability"].transaction() as uow:
        appended = [event for change in catalogue_file.changes(catalogue_file.read(), {}, {})
                    for event in uow.append(change.stream_id, uow.store.stream_version(change.stream_id),
                                            [change.event])]
    for event in sequenced(logs["availability"], appended):
        assert apply_once(db, projection.CATALOGUE_CONSUMER, event, catalogue.project)
    delivered = []

    def happens(when, source, stream, type_, **payload):
        clock.travel_to(when)
        with logs[source].transaction() as uow:
            appended = uow.append(stream, uow.store.stream_version(stream), [NewEvent(type_, payload, "npra")])
        [event] = sequenced(logs[source], appended)
        consumer, apply = ((projection.BOOKINGS_CONSUMER, projection.apply_booking_event) if source == "booking"
                           else (projection.QUEUE_CONSUMER, projection.apply_queue_event))
        assert apply_once(db, consumer, event, apply)
        delivered.append((consumer, event, apply))
    return db, logs, happens, delivered


def book(happens, when, reference, start, channel="web"):
    happens(when, "booking", f"slot-{reference}", "booking.SlotBooked", reference=reference, branch=BRANCH,
            service=SERVICE, start=start.isoformat(), end=(start + timedelta(minutes=20)).isoformat(),
            channel=channel, person={"cpr": "900112345", "name": "Fatima", "mobile": None, "email": None,
                                     "language": "ar"})


def ticket(happens, when, type_, ticket_id, **payload):
    happens(when, "queue", f"queue-{BRANCH}-20261207", f"queue.{type_}", ticket_id=ticket_id, branch=BRANCH,
            day=DAY, **payload)


def checked_in(happens, when, ticket_id, kind="appointment", on_time=True, priority=None):
    ticket(happens, when, "CustomerCheckedIn", ticket_id, number=f"P-{ticket_id[-3:]}", service=SERVICE, kind=kind,
           priority=priority, reference=None, appointment_start=None, on_time=on_time, cpr="900112345",
           language="ar")


def a_monday(happens):
    """Two bookings for Monday (one moved within it, one cancelled, one by app), and Monday at the branch: a
    counter open 08:00-10:00; t001 served after 5 min and rated 4 with a comment, t002 (walk-in) recalled then a
    no-show, t003 transferred then served after 40 min, t004 closed out never called."""
    sunday = at(9) - timedelta(days=1)
    book(happens, sunday, "AAAA-0001", at(8))
    book(happens, sunday, "AAAA-0002", at(9), channel="app")
    book(happens, sunday, "AAAA-0003", at(10))
    happens(sunday + timedelta(hours=1), "booking", "slot-AAAA-0001b", "booking.BookingRescheduled",
            reference="AAAA-0001", branch=BRANCH, service=SERVICE, previous_start=at(8).isoformat(),
            start=at(8, 20).isoformat(), end=at(8, 40).isoformat())
    happens(sunday + timedelta(hours=2), "booking", "slot-AAAA-0003", "booking.BookingCancelled",
            reference="AAAA-0003", branch=BRANCH, service=SERVICE, start=at(10).isoformat(), cancelled_by="person")
    happens(at(8), "queue", f"queue-{BRANCH}-20261207", "queue.CounterOpened", branch=BRANCH, day=DAY, counter="5",
            services=[SERVICE])
    checked_in(happens, at(8, 5), "t001")
    checked_in(happens, at(8, 6), "t002", kind="walk_in", on_time=False, priority="elderly")
    checked_in(happens, at(8, 7), "t003", on_time=False)
    checked_in(happens, at(8, 8), "t004", kind="walk_in", on_time=False)
    ticket(happens, at(8, 10), "TicketCalled", "t001", counter="5", number="P-001", service=SERVICE, lane="appointment")
    ticket(happens, at(8, 20), "TicketServed", "t001", counter="5", service=SERVICE, wait_seconds=300,
           service_seconds=600)
    ticket(happens, at(8, 21), "TicketCalled", "t002", counter="5", number="P-002", service=SERVICE, lane="priority")
    ticket(happens, at(8, 22), "TicketRecalled", "t002", counter="5", recall=1)
    ticket(happens, at(8, 23), "TicketNoShow", "t002", counter="5", reason="clerk")
    ticket(happens, at(8, 30), "TicketTransferred", "t003", from_service=SERVICE, to_service="residence-permit",
           counter=None)
    ticket(happens, at(8, 47), "TicketCalled", "t003", counter="5", number="P-003", service="residence-permit",
           lane="appointment")
    ticket(happens, at(8, 57), "TicketServed", "t003", counter="5", service="residence-permit", wait_seconds=2400,
           service_seconds=600)
    ticket(happens, at(9), "SatisfactionRated", "t001", service=SERVICE, score=4, comment="شكرا", wait_seconds=300,
           service_seconds=600)
    happens(at(10), "queue", f"queue-{BRANCH}-20261207", "queue.CounterClosed", branch=BRANCH, day=DAY, counter="5")
    ticket(happens, at(14), "TicketClosedOut", "t004", status="waiting")
    happens(at(14), "queue", f"queue-{BRANCH}-20261207", "queue.DayClosed", branch=BRANCH, day=DAY)


def test_the_handlers_take_what_insights_subscribes_to():
    subscriptions = topology.SUBSCRIPTIONS
    assert projection.apply_booking_event.types == sorted(subscriptions[projection.BOOKINGS_CONSUMER].types)
    assert projection.apply_queue_event.types == sorted(subscriptions[projection.QUEUE_CONSUMER].types)
    assert subscriptions[projection.CATALOGUE_CONSUMER].types == tuple(types_of("availability"))


def test_a_day_gives_its_figures_and_a_redelivery_changes_nothing(story):
    db, logs, happens, delivered = story
    a_monday(happens)
    first = queries.report(db, {"branch": BRANCH}, MONDAY.date(), MONDAY.date(), "day", None, at(15))
    for consumer, event, apply in delivered:  # the broker delivers everything again
        assert not apply_once(db, consumer, event, apply)
    again = queries.report(db, {"branch": BRANCH}, MONDAY.date(), MONDAY.date(), "day", None, at(15))
    assert again == first
    f = first["periods"][0]["figures"]
    assert first["total"]["figures"] == f
    assert (f["bookings_made"], f["bookings_cancelled"], f["bookings_moved"], f["bookings_expired"]) == (3, 1, 1, 0)
    assert f["bookings_by_channel"] == {"app": 1, "web": 2}
    assert f["lead_time_hours_mean"] == round(((23 + 20 / 60) + 24 + 25) / 3, 2)
    assert f["check_ins"] == {"appointment_on_time": 1, "appointment_late": 1, "walk_in": 2, "priority": 1}
    assert f["arrivals_on_time_share"] == 0.5
    assert f["served"] == 2
    assert f["service_level"] == {"appointment": 0.5, "walk_in": None, "all": 0.5}
    assert f["wait_minutes"]["all"] == {"mean": 22.5, "median": 22.5, "p90": 40.0}
    assert f["no_show_rate"] == round(1 / 3, 4) and f["recall_rate"] == round(1 / 3, 4)
    assert f["abandonment_rate"] == 0.25 and f["transfers"] == 1
    assert f["served_per_counter_hour"] == 1.0  # 2 served in the 2 hours counter 5 was open
    assert f["satisfaction"] == {"mean": 4.0, "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
                                 "response_rate": 0.5, "comments": 1}
    assert f["places_offered"] > 0 and f["slot_utilisation"] == round(2 / f["places_offered"], 4)


def test_a_service_narrows_the_rows_and_a_directorate_rolls_its_branches_up(story):
    db, logs, happens, _ = story
    a_monday(happens)
    only = queries.report(db, {"branch": BRANCH}, MONDAY.date(), MONDAY.date(), "day", "residence-permit", at(15))
    assert only["total"]["figures"]["served"] == 1 and only["total"]["figures"]["bookings_made"] == 0
    week = queries.report(db, {"directorate": "npra"}, MONDAY.date() - timedelta(days=1),
                          MONDAY.date() + timedelta(days=1), "week", None, at(15))
    assert [(p["period"], p["from"], p["to"]) for p in week["periods"]] == [
        ("2026-W49", "2026-12-06", "2026-12-06"), ("2026-W50", "2026-12-07", "2026-12-08")]
    assert week["periods"][1]["figures"]["served"] == 2 and week["periods"][0]["figures"]["served"] == 0
    country = queries.report(db, {"all": True}, MONDAY.date(), MONDAY.date(), "month", None, at(15))
    assert country["periods"][0]["period"] == "2026-12" and country["total"]["figures"]["served"] == 2
    assert country["total"]["figures"]["places_offered"] > week["periods"][1]["figures"]["places_offered"] / 2


def test_periods_cover_the_range_clipped_to_it():
    from datetime import date
    assert [p[0] for p in queries.periods(date(2026, 12, 30), date(2027, 2, 1), "month")] == [
        "2026-12", "2027-01", "2027-02"]
    assert queries.periods(date(2026, 12, 30), date(2027, 1, 4), "week") == [
        ("2026-W53", date(2026, 12, 30), date(2027, 1, 3)), ("2027-W01", date(2027, 1, 4), date(2027, 1, 4))]


def test_replay_rebuilds_the_same_tables_from_the_logs_and_names_a_changed_row(story):
    db, logs, happens, _ = story
    a_monday(happens)
    reports = replay.replay(db, Logs(db, open_source=lambda name: logs[name]))
    assert all(r.identical for r in reports), [r.differences for r in reports]
    with db.transaction() as uow:
        uow.execute(projection.visits.update().where(projection.visits.c.ticket_id == "t001").values(score=1))
    reports = replay.replay(db, Logs(db, open_source=lambda name: logs[name]))
    assert [r.what for r in reports if not r.identical] == ["visits, counter_sessions tables"]
