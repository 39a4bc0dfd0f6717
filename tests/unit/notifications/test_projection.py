"""The notifications service's tables (services/notifications/projection.py): contacts from booking's events,
tickets from the queue's, messages from its own, and what sending reads and changes of them. SQLite and
PostgreSQL."""
import uuid
from datetime import datetime, timedelta

import eventlet
import pytest
import sqlalchemy as sa

from shared import topology, vault
from shared.clock import UTC
from shared.contracts import latest_version, types_of, validated_payload
from shared.events import Event
from shared.masking import ERASED
from services.notifications import projection

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
START = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
FATIMA, ALI = "900112345", "880412345"


def event(type_: str, **payload) -> Event:
    version = latest_version(type_)
    return Event(str(uuid.uuid4()), type_, version, "s", 1, 1, NOW, "c", None, "npra",
                 validated_payload(type_, version, payload))


def booked(reference: str, cpr: str = FATIMA, email: str | None = "f@example.com", start: datetime = START) -> Event:
    return event("booking.SlotBooked", reference=reference, branch="npra-isa-town", service="passport-renewal",
                 start=start.isoformat(), end=(start + timedelta(minutes=20)).isoformat(), channel="web",
                 person={"cpr": cpr, "name": "Fatima", "mobile": "+97333001122", "email": email, "language": "ar"})


def ended(type_: str, reference: str, **fields) -> Event:
    return event(f"booking.{type_}", reference=reference, branch="npra-isa-town", service="passport-renewal",
                 start=START.isoformat(), **fields)


def scheduled(key: str, due: datetime = NOW, kind: str = "reminder") -> Event:
    return event("notifications.NotificationScheduled", key=key, kind=kind, channel="sms", due_at=due.isoformat(),
                 reference="AAAA-0001", ticket_id=None, source_event_id="e", appointment_start=START.isoformat(),
                 details={})


@pytest.fixture
def db(open_db):
    return open_db("notifications", projection.metadata)


def test_the_handlers_take_what_notifications_subscribes_to_and_all_its_own_events():
    assert projection.apply_booking_event.types == sorted(topology.SUBSCRIPTIONS[projection.BOOKINGS_CONSUMER].types)
    assert set(projection.apply_queue_event.types) < set(topology.SUBSCRIPTIONS[projection.QUEUE_CONSUMER].types)
    assert projection.project.types == sorted(types_of("notifications"))


# -- contacts -------------------------------------------------------------------------------------------------

def test_a_booking_gives_a_contact_that_follows_its_moves_and_its_end(db):
    later = START + timedelta(days=1)
    with db.transaction() as uow:
        for e in (booked("AAAA-0001"), booked("AAAA-0002"), booked("AAAA-0003"),
                  event("booking.BookingRescheduled", reference="AAAA-0001", branch="npra-isa-town",
                        service="passport-renewal", previous_start=START.isoformat(), start=later.isoformat(),
                        end=(later + timedelta(minutes=20)).isoformat()),
                  ended("BookingCancelled", "AAAA-0002", cancelled_by="person"), ended("BookingExpired", "AAAA-0003")):
            projection.apply_booking_event(uow, e)
        contact = projection.contact(uow, "AAAA-0001")
        assert {k: contact[k] for k in ("cpr", "subject", "name", "mobile", "email", "language", "branch", "service",
                                        "start", "status")} == {
            "cpr": FATIMA, "subject": vault.subject_of(FATIMA), "name": "Fatima", "mobile": "+97333001122",
            "email": "f@example.com", "language": "ar", "branch": "npra-isa-town", "service": "passport-renewal",
            "start": later, "status": "active"}
        assert [projection.contact(uow, r)["status"] for r in ("AAAA-0002", "AAAA-0003")] == ["cancelled", "expired"]
        assert projection.contact(uow, "AAAA-0009") is None and projection.contact(uow, None) is None


def test_the_personal_columns_are_those_that_name_the_person():
    assert {c.name for c in projection.contacts.columns if c.info.get("personal")} == {"cpr", "name", "mobile", "email"}


def test_an_erased_person_is_forgotten_in_contacts_and_in_the_vault_and_nobody_else(db):
    with db.transaction() as uow:
        for e in (booked("AAAA-0001"), booked("AAAA-0002", email=None), booked("AAAA-0003", cpr=ALI)):
            projection.apply_booking_event(uow, e)
        uow.store.vault.seal("booking.SlotBooked", booked("AAAA-0004").payload)  # a key of hers, were there one
        keys = sa.select(uow.tables["person_keys"].c.subject)
        assert uow.execute(keys).scalars().all() == [vault.subject_of(FATIMA)]
        projection.apply_booking_event(uow, event("booking.PersonErased", subject=vault.subject_of(FATIMA)))
        erased, no_email, other = (projection.contact(uow, r) for r in ("AAAA-0001", "AAAA-0002", "AAAA-0003"))
        assert uow.execute(keys).scalars().all() == []
    assert [erased[k] for k in ("cpr", "name", "mobile", "email")] == [ERASED] * 4
    assert no_email["email"] is None and no_email["mobile"] == ERASED  # an empty field stays empty
    assert (erased["subject"], erased["status"], erased["language"]) == (vault.subject_of(FATIMA), "active", "ar")
    assert (other["cpr"], other["name"], other["email"]) == (ALI, "Fatima", "f@example.com")


def test_erasing_someone_this_service_holds_no_key_of_is_harmless(db):
    with db.transaction() as uow:
        projection.apply_booking_event(uow, event("booking.PersonErased", subject=vault.subject_of(ALI)))
        projection.apply_booking_event(uow, booked("AAAA-0001"))
        assert projection.contact(uow, "AAAA-0001")["cpr"] == FATIMA


# -- tickets --------------------------------------------------------------------------------------------------

def test_a_check_in_links_its_ticket_to_its_booking_and_nothing_else_does(db):
    def checked_in(ticket_id, number, reference):
        return event("queue.CustomerCheckedIn", ticket_id=ticket_id, branch="npra-isa-town", day="2026-12-08",
                     number=number, service="passport-renewal", kind="appointment" if reference else "walk_in",
                     priority=None, reference=reference, appointment_start=START.isoformat() if reference else None,
                     on_time=True, cpr=FATIMA, language="ar")

    with db.transaction() as uow:
        for e in (checked_in("t1", "P-001", "AAAA-0001"), checked_in("t2", "P-002", None),
                  event("queue.TicketCalled", ticket_id="t1", branch="npra-isa-town", day="2026-12-08", counter="5",
                        number="P-001", service="passport-renewal", lane="appointment")):
            projection.apply_queue_event(uow, e)
        assert projection.ticket(uow, "t1") == {"ticket_id": "t1", "reference": "AAAA-0001", "number": "P-001"}
        assert projection.ticket(uow, "t2")["reference"] is None  # a walk-in
        assert projection.ticket(uow, "t3") is None
        assert uow.execute(sa.select(sa.func.count()).select_from(projection.tickets)).scalar() == 2


# -- messages -------------------------------------------------------------------------------------------------

def test_a_scheduled_message_is_due_at_its_time_and_settled_by_what_became_of_it(db):
    with db.transaction() as uow:
        for e in (scheduled("a"), scheduled("b"), scheduled("c"), scheduled("later", NOW + timedelta(hours=1))):
            projection.project(uow, e)
        assert projection.known(uow, ["a", "z", "later"]) == {"a", "later"} and projection.known(uow, []) == set()
        [a] = projection.claim_due(uow, NOW, NOW + timedelta(minutes=2), limit=1)  # the oldest first
        assert (a["key"], a["due_at"], a["appointment_start"], a["details"], a["attempts"]) == ("a", NOW, START, {}, 0)
        assert [m["key"] for m in projection.claim_due(uow, NOW, NOW + timedelta(minutes=2))] == ["b", "c"]
        for type_, key, fields in (("NotificationSent", "a", {"to": "+973****22", "attempts": 2}),
                                   ("NotificationFailed", "b", {"reason": "refused", "attempts": 5}),
                                   ("NotificationWithdrawn", "c", {"reason": "moved"})):
            projection.project(uow, event(f"notifications.{type_}", key=key, kind="reminder", channel="sms",
                                          **fields))
        assert [m["key"] for m in projection.claim_due(uow, NOW + timedelta(hours=1), NOW + timedelta(hours=2))] \
            == ["later"]  # the settled ones are not due again, claimed or not
        assert [(m["status"], m["attempts"]) for m in projection.messages_about(uow, "AAAA-0001")] == [
            ("sent", 2), ("failed", 5), ("withdrawn", 0), ("scheduled", 0)]
        assert [m["key"] for m in projection.scheduled_reminders(uow, "AAAA-0001")] == ["later"]


def test_a_claimed_message_is_not_due_until_the_claim_lapses_and_a_retry_waits_its_turn(db):
    with db.transaction() as uow:
        projection.project(uow, scheduled("a"))
        assert [m["key"] for m in projection.claim_due(uow, NOW, NOW + timedelta(minutes=2))] == ["a"]
        assert projection.claim_due(uow, NOW, NOW + timedelta(minutes=2)) == []   # another dispatcher's
        assert projection.claim_due(uow, NOW + timedelta(minutes=1), NOW + timedelta(minutes=3)) == []
        [lapsed] = projection.claim_due(uow, NOW + timedelta(minutes=3), NOW + timedelta(minutes=5))
        assert lapsed["key"] == "a"
        projection.retry_later(uow, "a", 1, NOW + timedelta(seconds=30))
        assert projection.claim_due(uow, NOW + timedelta(seconds=29), NOW + timedelta(minutes=2)) == []
        [retry] = projection.claim_due(uow, NOW + timedelta(seconds=30), NOW + timedelta(minutes=2))
        assert (retry["attempts"], retry["next_attempt_at"]) == (1, NOW + timedelta(seconds=30))


def test_two_dispatchers_claiming_at_once_never_take_the_same_message(db):
    """Replicas: each claim takes what no other holds, whether it waited for the other's transaction or not."""
    with db.transaction() as uow:
        for n in range(30):
            projection.project(uow, scheduled(f"m{n:02d}"))
    taken = []

    def dispatcher():
        with db.transaction() as uow:
            taken.append([m["key"] for m in projection.claim_due(uow, NOW, NOW + timedelta(minutes=2), limit=20)])

    pool = eventlet.GreenPool(2)
    for _ in range(2):
        pool.spawn(dispatcher)
    pool.waitall()
    first, second = taken
    assert not set(first) & set(second) and len(first) + len(second) == 30
