"""The hash chain's byte layout (shared.eventstore.chain_hash) is fixed for good: every stored hash depends on it."""
import hashlib
from datetime import datetime

from shared.eventstore import GENESIS, chain_hash

ROW = (1, "6b62b0c4-9f73-4c80-9ab7-cf7e8d9cab07", "branch-npra-isa-town", 1, "availability.HolidayDeclared", 1,
       datetime(2026, 12, 6, 6, 0, 5, 250000), "c-1", None, "npra", None, '{"name_ar":"عطلة"}')


def test_the_layout_is_length_prefixed_utf8_with_nulls_as_a_dash():
    expected = ("64:" + GENESIS + "1:1" + "36:6b62b0c4-9f73-4c80-9ab7-cf7e8d9cab07" + "20:branch-npra-isa-town"
                + "1:1" + "28:availability.HolidayDeclared" + "1:1" + "26:2026-12-06T06:00:05.250000" + "3:c-1"
                + "-" + "4:npra" + "-" + '22:{"name_ar":"عطلة"}').encode()
    assert chain_hash(GENESIS, ROW) == hashlib.sha256(expected).hexdigest()
    assert chain_hash(GENESIS, ROW) == "5b9bb45a2447739afefa6a50a7fc3f7d2e8d5d18117ee8c6cef2b3f1cfaae6f8"


def test_a_null_is_not_an_empty_string_and_fields_do_not_run_together():
    assert chain_hash(GENESIS, ROW[:8] + ("",) + ROW[9:]) != chain_hash(GENESIS, ROW)
    # the same characters, the boundary between two fields one along
    assert chain_hash(GENESIS, ROW[:9] + ("npr", "a") + ROW[11:]) != chain_hash(GENESIS, ROW[:9] + ("np", "ra") + ROW[11:])


def test_each_hash_depends_on_the_one_before():
    assert chain_hash("ab" * 32, ROW) != chain_hash(GENESIS, ROW)
