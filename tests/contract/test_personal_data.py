"""Personal fields are stored encrypted under their person's key; deleting the key forgets the person without
rewriting history (crypto-shredding). On SQLite and PostgreSQL."""
from datetime import datetime, timedelta

import sqlalchemy as sa

from shared import vault
from shared.clock import UTC
from shared.events import NewEvent
from services.cli.export import export, select
from shared.dependencies import service_metadata
from services.availability import projection as availability

START = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
PEOPLE = [("900112345", "فاطمة علي", "f@example.com"), ("850612345", "Ali Hasan", "ali@example.com")]


def booked(n, cpr, name, email):
    return NewEvent("booking.SlotBooked", {
        "reference": f"AC3D-9FG{n}", "branch": "npra-isa-town", "service": "passport-renewal", "channel": "web",
        "start": START.isoformat(), "end": (START + timedelta(minutes=20)).isoformat(),
        "person": {"cpr": cpr, "name": name, "mobile": "+97333001122", "email": email, "language": "ar"}}, "npra")


def test_personal_fields_are_encrypted_at_rest_readable_in_events_and_gone_once_the_key_is(open_db, tmp_path):
    db = open_db("booking", service_metadata())
    stream = "slot-npra-isa-town-passport-renewal-20261208T0400Z"
    with db.transaction() as uow:
        for n, person in enumerate(PEOPLE):
            uow.append(stream, n, [booked(n, *person)])
    with db.engine.connect() as conn:
        raw = " ".join(conn.execute(sa.select(db.tables["events"].c.payload)).scalars())
    assert all(secret not in raw for person in PEOPLE for secret in person) and "+97333001122" not in raw
    with db.transaction() as uow:
        assert [e.payload["person"]["cpr"] for e in uow.store.read_all()] == ["900112345", "850612345"]
        assert uow.store.vault.forget(vault.subject_of("900112345"))
    with db.transaction() as uow:
        events = uow.store.read_all()
        counts = {}
        for event in events:  # every figure stays: the events, their positions, the slot's bookings
            counts[event.payload["start"]] = counts.get(event.payload["start"], 0) + 1
    assert [e.position for e in events] == [1, 2] and list(counts.values()) == [2]
    erased, kept = (e.payload["person"] for e in events)
    assert erased == {"cpr": "[erased]", "name": "[erased]", "mobile": "[erased]", "email": "[erased]",
                      "language": "ar"}
    assert kept["cpr"] == "850612345" and kept["name"] == "Ali Hasan"
    out = tmp_path / "all.jsonl"
    export(select(db, None, None, None), out, None)  # even an export in clear cannot show them
    text = out.read_text(encoding="utf-8")
    assert "900112345" not in text and "فاطمة" not in text and "f@example.com" not in text
    assert "850612345" in text


def test_an_erased_person_still_counts_in_a_replayed_projection(open_db):
    booking_db = open_db("booking", service_metadata())
    stream = "slot-npra-isa-town-passport-renewal-20261208T0400Z"
    with booking_db.transaction() as uow:
        for n, person in enumerate(PEOPLE):
            uow.append(stream, n, [booked(n, *person)])
        uow.store.vault.forget(vault.subject_of(PEOPLE[0][0]))
    with booking_db.transaction() as uow:
        events = uow.store.read_all()
    target = open_db("availability", availability.metadata)
    with target.transaction() as uow:
        for event in events:
            availability.apply_booking_event(uow, event)
        assert list(availability.booked_counts(uow, "npra-isa-town", "passport-renewal", START,
                                               START + timedelta(hours=1)).values()) == [2]
