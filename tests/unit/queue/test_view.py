"""The waiting-room view (services/queue/view.py), on days built by hand: the lines in the order they will be
called with their estimates, who is being served, the last calls, the counters and the day's averages."""
from shared.clock import UTC
from services.queue import view
from services.queue.domain import Counter, Day, Ticket
from tests.unit.queue.conftest import BRANCH, MONDAY, PASSPORT, RESIDENCE, at


def ticket(number: str, service: str, queued_at, status: str = "waiting", **fields) -> Ticket:
    return Ticket(**{"id": f"id-{number}", "number": number, "seq": int(number[2:]), "service": service,
                     "kind": "walk_in", "priority": None, "status": status, "queued_at": queued_at, "on_time": False,
                     "cpr": "900112345", "language": "ar", "checked_in_for": service, **fields})


def day_of(*tickets: Ticket, counters=(), **fields) -> Day:
    return Day(BRANCH, MONDAY, {t.id: t for t in tickets}, {c.id: c for c in counters}, **fields)


def test_each_service_shows_its_line_in_the_order_it_will_be_called(branch):
    day = day_of(
        ticket("P-001", PASSPORT, at(9)),
        ticket("P-002", PASSPORT, at(9, 5), priority="elderly"),
        ticket("P-003", PASSPORT, at(9, 2), kind="appointment", on_time=True, appointment_start=at(9, 30)),
        ticket("R-001", RESIDENCE, at(9, 1)),
        ticket("R-002", RESIDENCE, at(8, 50), status="served", service_seconds=600),
        counters=[Counter("1", [PASSPORT]), Counter("2", [PASSPORT, RESIDENCE]), Counter("3", [RESIDENCE], False)])
    room = view.waiting_room(day, branch, at(9, 10))
    assert (room["branch"], room["name_en"], room["name_ar"], room["date"], room["closed"]) == \
        (BRANCH, "Isa Town branch", "فرع مدينة عيسى", "2026-12-07", False)
    passport, residence = room["waiting"]
    assert (passport["service"], passport["name_en"], passport["count"], passport["estimated_wait_minutes"]) == \
        (PASSPORT, "Passport renewal", 3, 40)  # 2 open counters, 20 minutes a visit (none measured yet)
    assert [(t["number"], t["lane"], t["position"], t["estimated_wait_minutes"], t["checked_in_at"])
            for t in passport["tickets"]] == [("P-002", "priority", 1, 0, "2026-12-07T09:05:00+03:00"),
                                              ("P-001", "walk_in", 2, 20, "2026-12-07T09:00:00+03:00"),
                                              ("P-003", "early", 3, 20, "2026-12-07T09:02:00+03:00")]
    assert passport["tickets"][0] == {"id": "id-P-002", "number": "P-002", "kind": "walk_in", "priority": "elderly",
                                      "lane": "priority", "position": 1, "checked_in_at": "2026-12-07T09:05:00+03:00",
                                      "estimated_wait_minutes": 0}
    assert (residence["name_ar"], residence["count"], [t["number"] for t in residence["tickets"]]) == \
        ("تصريح الإقامة", 1, ["R-001"])
    assert residence["estimated_wait_minutes"] == 10  # one open counter, 10 minutes a visit as measured


def test_who_is_served_the_last_calls_and_the_counters(branch):
    day = day_of(
        ticket("P-001", PASSPORT, at(9), status="called", counter="1", last_called_at=at(9, 5).astimezone(UTC)),
        ticket("P-002", PASSPORT, at(9), status="no_show", counter="1", last_called_at=at(9, 3)),
        ticket("R-001", RESIDENCE, at(9), status="served", counter="2", last_called_at=at(9, 1)),
        ticket("R-002", RESIDENCE, at(9, 4)),
        counters=[Counter("2", [RESIDENCE]), Counter("1", [PASSPORT], serving="id-P-001"), Counter("3", [], False)],
        closed=True)
    room = view.waiting_room(day, branch, at(9, 10), last=2)
    assert room["closed"] is True
    assert room["now_serving"] == [{"counter": "1", "number": "P-001", "service": PASSPORT}]
    assert room["last_called"] == [
        {"number": "P-001", "counter": "1", "service": PASSPORT, "called_at": "2026-12-07T09:05:00+03:00",
         "status": "called"},
        {"number": "P-002", "counter": "1", "service": PASSPORT, "called_at": "2026-12-07T09:03:00+03:00",
         "status": "no_show"}]
    assert room["counters"] == [{"counter": "1", "services": [PASSPORT], "open": True, "serving": "P-001"},
                                {"counter": "2", "services": [RESIDENCE], "open": True, "serving": None},
                                {"counter": "3", "services": [], "open": False, "serving": None}]
    assert room["at_counters"] == [{"counter": "1", "id": "id-P-001", "number": "P-001", "service": PASSPORT,
                                    "kind": "walk_in", "priority": None, "recalls": 0,
                                    "called_at": "2026-12-07T09:05:00+03:00"}]


def test_the_averages_are_of_the_served_visits():
    day = day_of(
        ticket("P-001", PASSPORT, at(9), status="served", waited_seconds=600, service_seconds=300, score=5),
        ticket("P-002", PASSPORT, at(9), status="served", waited_seconds=1200, service_seconds=420, score=2),
        ticket("P-003", PASSPORT, at(9), status="served", waited_seconds=0, service_seconds=None),
        ticket("P-004", PASSPORT, at(9), status="no_show", waited_seconds=9000),
        ticket("R-001", RESIDENCE, at(9), status="closed_out", waited_seconds=9000))
    assert view.averages(day) == {"served": 3, "no_shows": 1, "wait_minutes": 10.0, "longest_wait_minutes": 20.0,
                                  "service_minutes": 6.0, "satisfaction": 3.5, "ratings": 2, "served_by_hour": []}


def test_the_served_are_counted_per_local_hour():
    day = day_of(
        ticket("P-001", PASSPORT, at(9), status="served", waited_seconds=60, served_at=at(9, 20).astimezone(UTC)),
        ticket("P-002", PASSPORT, at(9), status="served", waited_seconds=90, served_at=at(9, 59)),
        ticket("P-003", PASSPORT, at(9), status="served", waited_seconds=30, served_at=at(11, 0)),
        ticket("P-004", PASSPORT, at(9), status="no_show", served_at=None))
    assert view.averages(day)["served_by_hour"] == [{"hour": "09:00", "served": 2}, {"hour": "11:00", "served": 1}]
    assert view.averages(day)["longest_wait_minutes"] == 1.5


def test_a_day_with_nobody_served_has_no_averages(branch):
    day = day_of(ticket("P-001", PASSPORT, at(9)))
    assert view.averages(day) == {"served": 0, "no_shows": 0, "wait_minutes": None, "longest_wait_minutes": None,
                                  "service_minutes": None, "satisfaction": None, "ratings": 0, "served_by_hour": []}
    assert view.waiting_room(day, branch, at(9))["averages"] == view.averages(day)


def test_the_room_says_todays_hours_and_whether_the_branch_is_open_now(branch):
    room = view.waiting_room(day_of(), branch, at(13, 59))
    assert (room["hours"], room["open_now"]) == ([{"opens": "07:00", "closes": "14:00"}], True)
    assert view.waiting_room(day_of(), branch, at(14))["open_now"] is False         # closes at 14:00
    assert view.waiting_room(day_of(closed=True), branch, at(10))["open_now"] is False  # the manager closed it
    friday = Day(BRANCH, MONDAY.replace(day=11), {}, {})
    assert view.waiting_room(friday, branch, at(10))["hours"] == []                 # the weekend
    board = view.board(day_of(), branch, at(10))
    assert (board["hours"], board["open_now"]) == ([{"opens": "07:00", "closes": "14:00"}], True)
