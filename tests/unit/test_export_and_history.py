"""Exports for analysts (pseudonymised by default, JSON Lines and Parquet) and a slot's bookings at a past
instant, on SQLite and PostgreSQL."""
import json
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest

from shared.clock import UTC, clock
from shared.events import NewEvent
from services.cli.export import export, pseudonym, pseudonymise, select
from services.booking import history, projection

START = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
STREAM = "slot-npra-isa-town-passport-renewal-20261208T0400Z"
PERSON = {"cpr": "900112345", "name": "فاطمة علي", "mobile": "+97333001122", "email": "f@example.com",
          "language": "ar"}


@pytest.fixture
def db(open_db, monkeypatch):
    monkeypatch.setattr(clock, "speed", 0.0)
    clock.travel_to(datetime(2026, 12, 6, 6, 0, tzinfo=UTC))
    database = open_db("booking", projection.metadata)
    with database.transaction() as uow:  # a v1 booking (before channels existed), then a v2 one, then a cancel
        uow.append(STREAM, 0, [NewEvent("booking.SlotBooked", {
            "reference": "AC3D-9FGH", "branch": "npra-isa-town", "service": "passport-renewal",
            "start": START.isoformat(), "end": (START + timedelta(minutes=20)).isoformat(), "person": PERSON},
            "npra", version=1)])
    clock.advance(timedelta(hours=1))
    with database.transaction() as uow:
        uow.append(STREAM, 1, [NewEvent("booking.SlotBooked", {
            "reference": "KM7X-9QRD", "branch": "npra-isa-town", "service": "passport-renewal",
            "start": START.isoformat(), "end": (START + timedelta(minutes=20)).isoformat(), "channel": "app",
            "person": {**PERSON, "cpr": "900112346"}}, "npra")])
    clock.advance(timedelta(hours=1))
    with database.transaction() as uow:
        uow.append(STREAM, 2, [NewEvent("booking.BookingCancelled", {
            "reference": "AC3D-9FGH", "branch": "npra-isa-town", "service": "passport-renewal",
            "start": START.isoformat(), "cancelled_by": "person"}, "npra")])
    return database


def test_pseudonyms_are_keyed_stable_and_reach_nested_fields():
    payload = {"reference": "AC3D-9FGH", "person": PERSON, "items": [{"email": "x@example.com"}]}
    hidden = pseudonymise(payload, "k1")
    assert hidden["reference"] == "AC3D-9FGH" and hidden["person"]["language"] == "ar"
    assert hidden["person"]["cpr"] == pseudonym("900112345", "k1", "cpr") == pseudonymise(payload, "k1")["person"]["cpr"]
    assert hidden["person"]["cpr"] != pseudonymise(payload, "k2")["person"]["cpr"]
    assert "900112345" not in json.dumps(hidden, ensure_ascii=False) and "f@example.com" not in json.dumps(hidden)
    assert "فاطمة" not in json.dumps(hidden, ensure_ascii=False) and "x@example.com" not in json.dumps(hidden)


def test_a_jsonl_export_names_nobody_unless_asked(db, tmp_path):
    out = tmp_path / "booking.jsonl"
    assert export(select(db, None, None, None), out, "key") == 3
    text = out.read_text(encoding="utf-8")
    assert "900112345" not in text and "+97333001122" not in text and "فاطمة" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["position"] for r in rows] == [1, 2, 3]
    assert rows[0]["payload"]["person"]["cpr"] == pseudonym("900112345", "key", "cpr")
    assert export(select(db, None, None, None), out, None) == 3 and "900112345" in out.read_text(encoding="utf-8")


def test_a_parquet_export_of_a_time_range_and_types_opens_in_a_parquet_reader(db, tmp_path):
    out = tmp_path / "booking.parquet"
    since = datetime(2026, 12, 6, 6, 30, tzinfo=UTC)
    assert export(select(db, since, None, {"booking.SlotBooked"}), out, "key") == 1
    table = pq.read_table(out)
    [row] = table.to_pylist()
    assert (row["type"], row["version"], row["reference"], row["branch"]) == \
        ("booking.SlotBooked", 2, "KM7X-9QRD", "npra-isa-town")
    assert "900112346" not in str(table.to_pylist())
    assert export(select(db, None, None, {"booking.Nothing"}), tmp_path / "empty.parquet", "key") == 0
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


def test_a_slots_bookings_at_a_past_instant(db):
    def refs(hours):
        return {(b["reference"], b["status"], b["channel"]) for b in history.slot_at(
            db, "npra-isa-town", "passport-renewal", START, datetime(2026, 12, 6, 6, 0, tzinfo=UTC) +
            timedelta(hours=hours, minutes=30))}
    assert refs(0) == {("AC3D-9FGH", "active", "web")}  # v1, upcast: it came from the web
    assert refs(1) == {("AC3D-9FGH", "active", "web"), ("KM7X-9QRD", "active", "app")}
    assert refs(2) == {("AC3D-9FGH", "cancelled", "web"), ("KM7X-9QRD", "active", "app")}
