"""The published event catalogue (docs/events/): complete, up to date with the contracts, and its samples valid.

When a contract changes (a new version, a field, a description, a subscription), the committed catalogue no
longer equals what the code generates and these tests fail until `mawaeed events catalogue` is run again and the
new version has its golden sample.
"""
import copy
import dataclasses
import json
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from marshmallow import fields

from services.cli import event_catalogue
from shared.contracts import CONTRACTS, Contract, from_dict
from shared.events import Event
from services.cli.event_catalogue import (DEFAULT_OUT, ENVELOPE_SCHEMA, GOLDEN_DIR, REPO_ROOT, CatalogueError,
                                    build_catalogue, catalogue_json, differences, json_schema, render_readme)
from shared.topology import SUBSCRIPTIONS

COMMITTED_JSON = DEFAULT_OUT / "catalogue.json"
COMMITTED_README = DEFAULT_OUT / "README.md"


def committed() -> dict:
    return json.loads(COMMITTED_JSON.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def catalogue():
    return build_catalogue()


def validator(schema: dict) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


# -- the committed files are what the code generates ------------------------------------------------------

def test_the_committed_catalogue_is_what_the_contracts_generate(catalogue):
    assert committed() == json.loads(catalogue_json(catalogue)), \
        "docs/events/catalogue.json is out of date: run `mawaeed events catalogue` and commit it"
    assert COMMITTED_JSON.read_text(encoding="utf-8") == catalogue_json(catalogue)


def test_the_committed_readme_is_what_the_contracts_generate(catalogue):
    assert COMMITTED_README.read_text(encoding="utf-8") == render_readme(catalogue), \
        "docs/events/README.md is out of date: run `mawaeed events catalogue` and commit it"


def test_the_samples_are_the_golden_files():
    assert GOLDEN_DIR == REPO_ROOT / "shared" / "contracts" / "samples"
    assert GOLDEN_DIR.is_dir()


# -- every contract has a complete entry --------------------------------------------------------------------

def test_every_registered_contract_has_an_entry_and_nothing_else(catalogue):
    assert list(catalogue["events"]) == sorted(CONTRACTS)


@pytest.mark.parametrize("wire_name", sorted(CONTRACTS))
def test_an_entry_says_what_where_and_who(catalogue, wire_name):
    contract, entry = CONTRACTS[wire_name], catalogue["events"][wire_name]
    assert (entry["type"], entry["version"], entry["description"]) == \
        (contract.type, contract.version, contract.description)
    assert entry["source"] == contract.source
    assert entry["exchange"] == f"{contract.source}.events"
    assert entry["routing_key"] == wire_name
    assert entry["consumers"] == sorted(s.name for s in SUBSCRIPTIONS.values()
                                        if s.source == contract.source and contract.type in s.types)
    newer = f"{contract.type}.v{contract.version + 1}" in CONTRACTS
    assert entry["latest"] is not newer
    assert (entry["upcaster"] is None) is not newer
    assert entry["payload_schema"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$ref" not in json.dumps(entry["payload_schema"]), "nested schemas are inlined"


@pytest.mark.parametrize("wire_name", sorted(CONTRACTS))
def test_every_contract_has_a_golden_sample_that_fits_its_json_schema(catalogue, wire_name):
    assert (GOLDEN_DIR / f"{wire_name}.json").exists()
    entry = catalogue["events"][wire_name]
    sample = entry["sample"]
    assert sample == json.loads((GOLDEN_DIR / f"{wire_name}.json").read_text(encoding="utf-8"))
    assert from_dict(sample).wire_name == wire_name
    validator(catalogue["envelope"]).validate(sample)
    validator(entry["payload_schema"]).validate(sample["payload"])


def test_the_envelope_schema_describes_every_field_of_an_event():
    sample = json.loads((GOLDEN_DIR / "booking.BookingCancelled.v1.json").read_text(encoding="utf-8"))
    assert set(ENVELOPE_SCHEMA["properties"]) == set(from_dict(sample).to_dict())
    assert set(ENVELOPE_SCHEMA["required"]) == {f.name for f in dataclasses.fields(Event)}
    broken = {**sample, "occurred_at": "2026-12-06T09:30:00+03:00"}
    with pytest.raises(ValidationError):
        validator(ENVELOPE_SCHEMA).validate(broken)


def test_a_contract_without_a_golden_sample_cannot_be_catalogued(monkeypatch):
    entry = Contract("booking.SlotBooked", 99, CONTRACTS["booking.SlotBooked.v1"].schema, "a version with no sample")
    monkeypatch.setitem(CONTRACTS, entry.wire_name, entry)
    with pytest.raises(CatalogueError, match="booking.SlotBooked.v99 has no golden sample"):
        build_catalogue()


# -- the JSON Schemas say what the contracts say -----------------------------------------------------------

@pytest.mark.parametrize("wire_name, field, value", [
    ("booking.SlotBooked.v1", "branch", "Dana Mall"),          # the id regex is anchored as marshmallow applies it
    ("booking.SlotBooked.v1", "person", {"cpr": "851312345", "name": "x", "language": "ar"}),   # month 13
    ("booking.SlotBooked.v1", "person", {"cpr": "850612345", "name": "x", "language": "fr"}),
    ("booking.SlotBooked.v1", "person", {"cpr": "850612345", "name": "", "language": "ar"}),
    ("booking.SlotBooked.v1", "person", {"cpr": "850612345", "name": "x", "language": "ar", "x": 1}),
    ("booking.BookingCancelled.v1", "cancelled_by", "hacker"),
    ("availability.ServiceOffered.v1", "duration_minutes", 0),
    ("availability.ServiceOffered.v1", "ticket_prefix", "AB"),
    ("availability.OpeningHoursSet.v1", "week", {"fri ": [{"opens": "09:00", "closes": "13:00"}]}),
    ("availability.OpeningHoursSet.v1", "week", {"sun": [{"opens": "9:00", "closes": "13:00"}]}),
    ("availability.HolidayDeclared.v1", "date", "16/12/2026"),
    ("availability.QueuePolicySet.v1", "walk_in_quota", {"passport-renewal": -1}),
    ("queue.CounterOpened.v1", "services", []),
    ("queue.CustomerCheckedIn.v1", "priority", "vip"),
    ("queue.CustomerCheckedIn.v1", "number", "P-14"),
])
def test_the_json_schema_refuses_what_the_contract_refuses(catalogue, wire_name, field, value):
    payload = copy.deepcopy(catalogue["events"][wire_name]["sample"]["payload"])
    payload[field] = value
    schema = CONTRACTS[wire_name].schema
    assert schema.validate(payload), "the contract itself accepts it"
    with pytest.raises(ValidationError):
        validator(catalogue["events"][wire_name]["payload_schema"]).validate(payload)


def test_allow_none_is_a_type_with_null(catalogue):
    checked_in = catalogue["events"]["queue.CustomerCheckedIn.v1"]["payload_schema"]["properties"]
    assert checked_in["reference"]["type"] == ["string", "null"]
    assert checked_in["priority"]["enum"] == ["elderly", "disabled", None]
    assert checked_in["appointment_start"] == {"type": ["string", "null"], "format": "date-time"}
    assert checked_in["day"] == {"type": "string", "format": "date"}


def test_a_regex_becomes_an_ecma_pattern_anchored_like_marshmallow():
    import re
    assert event_catalogue.ecma_pattern(re.compile(r"[a-z]+\Z")) == "^[a-z]+$"
    assert event_catalogue.ecma_pattern(re.compile(r"^([01]\d|2[0-3])$")) == r"^([01]\d|2[0-3])$"
    assert event_catalogue.ecma_pattern(re.compile(r"a|b[|]")) == "^(?:a|b[|])"
    assert event_catalogue.ecma_pattern(re.compile(r"(a|b)c")) == "^(a|b)c"


def test_a_validator_the_catalogue_cannot_describe_is_refused():
    from marshmallow import Schema

    class Odd(Schema):
        number = fields.Integer(required=True, validate=lambda n: n % 2 == 1)

    with pytest.raises(CatalogueError, match="cannot describe the validator"):
        json_schema(Odd)


# -- a contract change is caught ---------------------------------------------------------------------------

def test_a_changed_schema_no_longer_matches_the_committed_catalogue(monkeypatch):
    wire_name = "booking.BookingCancelled.v1"
    contract = CONTRACTS[wire_name]

    class Changed(type(contract.schema)):
        reason = fields.String(required=True)

    monkeypatch.setitem(CONTRACTS, wire_name, dataclasses.replace(contract, schema=Changed()))
    changed = build_catalogue()
    assert "reason" in changed["events"][wire_name]["payload_schema"]["required"]
    assert json.loads(catalogue_json(changed)) != committed()
    assert f"catalogue.json: {wire_name} differs in payload_schema" in differences(DEFAULT_OUT)
    assert "README.md: differs" in differences(DEFAULT_OUT)
    # and the golden sample, without the new field, no longer fits the contract's schema
    with pytest.raises(ValidationError):
        validator(changed["events"][wire_name]["payload_schema"]).validate(changed["events"][wire_name]["sample"]
                                                                           ["payload"])


def test_a_changed_description_no_longer_matches_the_committed_catalogue(monkeypatch):
    wire_name = "queue.DayClosed.v1"
    monkeypatch.setitem(CONTRACTS, wire_name, dataclasses.replace(CONTRACTS[wire_name], description="Changed."))
    assert differences(DEFAULT_OUT)[0] == f"catalogue.json: {wire_name} differs in description, payload_schema"


# -- the command -------------------------------------------------------------------------------------------

def mawaeed(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", "services.cli", "events", "catalogue", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_check_passes_on_the_committed_tree():
    result = mawaeed("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout


def test_check_fails_and_writes_nothing_when_the_files_differ_then_the_command_writes_them(tmp_path):
    out = tmp_path / "events"
    result = mawaeed("--check", "--out", str(out))
    assert result.returncode == 1
    assert "catalogue.json: missing" in result.stdout
    assert not out.exists()

    assert mawaeed("--out", str(out)).returncode == 0
    assert (out / "catalogue.json").read_text(encoding="utf-8") == COMMITTED_JSON.read_text(encoding="utf-8")
    assert (out / "README.md").read_text(encoding="utf-8") == COMMITTED_README.read_text(encoding="utf-8")
    assert mawaeed("--check", "--out", str(out)).returncode == 0

    stale = json.loads((out / "catalogue.json").read_text(encoding="utf-8"))
    del stale["events"]["queue.DayClosed.v1"]
    stale["events"]["booking.SlotBooked.v1"]["consumers"] = []
    (out / "catalogue.json").write_text(json.dumps(stale), encoding="utf-8")
    result = mawaeed("--check", "--out", str(out))
    assert result.returncode == 1
    assert "catalogue.json: queue.DayClosed.v1 is new" in result.stdout
    assert "catalogue.json: booking.SlotBooked.v1 differs in consumers" in result.stdout
    assert json.loads((out / "catalogue.json").read_text(encoding="utf-8")) == stale   # --check wrote nothing
