"""The simulated day's plan is pure: the same seed plans the same day, and its people behave as a day does."""
from datetime import date, datetime, timedelta

from services.cli.simulate import periods_of, plan_day, score_for
from shared.clock import LOCAL

DAY = date(2026, 12, 7)  # a Monday
OFFICE = [{"day": d, "periods": [] if d in ("fri", "sat") else [{"opens": "07:00", "closes": "14:00"}]}
          for d in ("sun", "mon", "tue", "wed", "thu", "fri", "sat")]
BRANCH = {"id": "npra-isa-town", "opening_hours": OFFICE,
          "services": [{"id": "passport-renewal", "duration_minutes": 20},
                       {"id": "residence-permit", "duration_minutes": 30}]}


def slots(minutes: int, capacity: int) -> list[dict]:
    start = datetime(2026, 12, 7, 7, tzinfo=LOCAL)
    return [{"start": (start + timedelta(minutes=minutes * i)).isoformat(), "capacity": capacity,
             "remaining": capacity, "bookable": True} for i in range(7 * 60 // minutes)]


SLOTS = {"passport-renewal": slots(20, 3), "residence-permit": slots(30, 2)}


def test_the_same_seed_plans_the_same_day_and_another_seed_another():
    assert plan_day(BRANCH, DAY, SLOTS, seed=3) == plan_day(BRANCH, DAY, SLOTS, seed=3)
    assert plan_day(BRANCH, DAY, SLOTS, seed=3) != plan_day(BRANCH, DAY, SLOTS, seed=4)


def test_appointments_fill_free_places_only_and_walk_ins_come_while_open():
    plan = plan_day(BRANCH, DAY, SLOTS, seed=1)
    taken = {}
    for v in plan.visitors:
        if v.kind == "appointment":
            taken[(v.service, v.slot)] = taken.get((v.service, v.slot), 0) + 1
    assert all(count <= {"passport-renewal": 3, "residence-permit": 2}[s] for (s, _), count in taken.items())
    opens, closes = periods_of(BRANCH, DAY)[0]
    walk_ins = [v for v in plan.visitors if v.kind == "walk_in"]
    assert walk_ins and all(opens <= v.arrives <= closes - timedelta(minutes=45) for v in walk_ins)
    assert len({v.cpr for v in plan.visitors}) == len(plan.visitors)  # one active booking per person and service


def test_walk_ins_peak_mid_morning():
    walk_ins = [v for seed in range(5) for v in plan_day(BRANCH, DAY, SLOTS, seed=seed).visitors
                if v.kind == "walk_in"]
    by_hour = {h: sum(v.arrives.hour == h for v in walk_ins) for h in range(7, 14)}
    assert max(by_hour, key=by_hour.get) in (8, 9, 10)
    assert by_hour[9] > by_hour[13]


def test_some_never_come_some_come_late_and_arrivals_are_around_their_time():
    visitors = [v for seed in range(5) for v in plan_day(BRANCH, DAY, SLOTS, seed=seed).visitors
                if v.kind == "appointment"]
    never = [v for v in visitors if v.arrives is None]
    late = [v for v in visitors if v.arrives and v.arrives > v.slot + timedelta(minutes=10)]
    assert 0 < len(never) < 0.2 * len(visitors) and late
    assert all(v.arrives >= v.slot - timedelta(minutes=30) for v in visitors if v.arrives)


def test_service_times_are_around_the_duration_and_people_behave_variously_at_the_counter():
    visitors = [v for seed in range(5) for v in plan_day(BRANCH, DAY, SLOTS, seed=seed).visitors]
    passports = sorted(v.service_minutes for v in visitors if v.service == "passport-renewal")
    assert 15 <= passports[len(passports) // 2] <= 25 and passports[0] >= 6 and passports[-1] <= 60
    assert {v.at_counter for v in visitors} == {"at_once", "after_recall", "gone"}
    assert any(v.transfer_to for v in visitors) and any(v.comment for v in visitors)
    assert all(v.transfer_to != v.service for v in visitors)


def test_counters_open_staggered_and_one_per_service_stays_all_day():
    plan = plan_day(BRANCH, DAY, SLOTS, seed=2)
    assert len(plan.shifts) == 5  # a service's counters: its largest slot capacity
    assert len({s.opens for s in plan.shifts}) > 1
    for service in ("passport-renewal", "residence-permit"):
        assert any(s.services == (service,) and s.opens == plan.opens and s.closes == plan.closes
                   for s in plan.shifts)


def test_scale_makes_a_day_busier_or_quieter():
    assert len(plan_day(BRANCH, DAY, SLOTS, seed=1, scale=0.3).visitors) < \
        len(plan_day(BRANCH, DAY, SLOTS, seed=1).visitors)


def test_a_closed_day_cannot_be_planned():
    import pytest
    with pytest.raises(ValueError, match="closed"):
        plan_day(BRANCH, date(2026, 12, 11), SLOTS)  # a Friday


def test_ratings_fall_with_the_wait():
    assert score_for(5, 0.5) == 5 and score_for(15, 0.5) == 4 and score_for(30, 0.5) == 3
    assert score_for(50, 0.5) == 2 and score_for(90, 0.5) == 1
    assert score_for(5, 0.9) == 5 and score_for(5, 0.1) == 4 and score_for(90, 0.1) == 1
