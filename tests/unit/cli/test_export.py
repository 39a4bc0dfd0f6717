"""Exports for analysts (services/cli/export.py: pseudonymised by default, JSON Lines and Parquet), on SQLite and
PostgreSQL, of the small booking log tests/unit/booking/test_history.py writes."""
import json
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from shared.clock import UTC
from services.cli.export import export, select
from shared.masking import pseudonym, pseudonymise
from tests.unit.booking.test_history import PERSON, db  # noqa: F401  (db: the log, a fixture)


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
