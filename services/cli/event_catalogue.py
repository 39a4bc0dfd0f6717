"""The published event catalogue: every event type and version, generated from the code that defines it.

For each registered contract (`shared.contracts.CONTRACTS`) the catalogue gives its meaning (the contract's
description), the exchange and routing key it travels on and the subscriptions of the suite that consume it
(`shared.topology`; with the exchange's and queues' arguments and the message's properties and headers, from the
code that declares and publishes them), its payload as a JSON Schema (draft 2020-12) generated from the marshmallow schema, how an
old version is upcast, and a sample envelope. The samples are the golden envelopes
that ship with the contracts (`shared/contracts/samples/<wire name>.json`, see GOLDEN_DIR): one sample per version,
which the contract tests decode, so the catalogue shows nothing the tests do not check.

`mawaeed events catalogue` writes it to docs/events/ (catalogue.json and a README.md for people);
`mawaeed events catalogue --check` and tests/contract/test_event_catalogue.py fail when the committed files
no longer match the code.
"""
import copy
import inspect
import json
import re
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields, validate

from shared.contracts import CONTRACTS, UPCASTERS, latest_version
from shared.contracts.fields import CPR_PATTERN, validate_cpr, validate_cpr_or_erased
from shared import topology
from shared.relay import wire_properties
from shared.topology import SUBSCRIPTIONS, exchange

REPO_ROOT = Path(__file__).resolve().parents[2]
# The samples of the catalogue are golden envelopes kept beside the contracts (package data, so an installed
# suite can build the catalogue); the contract tests check that each one decodes under its contract.
GOLDEN_DIR = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
DEFAULT_OUT = REPO_ROOT / "docs" / "events"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


class CatalogueError(Exception):
    """The catalogue cannot be built (a contract without a golden sample, a validator it cannot describe)."""


# -- marshmallow -> JSON Schema ----------------------------------------------------------------------------

def _top_level_alternation(pattern: str) -> bool:
    """Whether `pattern` has a `|` outside any group or character class."""
    depth, in_class, escaped = 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
    return False


def ecma_pattern(regex: re.Pattern) -> str:
    """A Python regex as marshmallow applies it (re.match: anchored at the start), as a JSON Schema pattern.

    JSON Schema patterns are ECMA-262 and match anywhere in the string, so the start anchor is made explicit
    and Python's end-of-string `\\Z` (unknown to ECMA-262) becomes `$`.
    """
    if regex.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE):
        raise CatalogueError(f"regex flags of {regex.pattern!r} have no JSON Schema equivalent")
    pattern = regex.pattern
    if pattern.endswith(r"\Z") and not pattern.endswith(r"\\Z"):
        pattern = pattern[:-2] + "$"
    if not pattern.startswith("^"):
        pattern = f"^(?:{pattern})" if _top_level_alternation(pattern) else f"^{pattern}"
    return pattern


# Validators that are plain functions say nothing apispec can read: how each one is described.
FUNCTION_VALIDATORS = {
    validate_cpr: {"pattern": ecma_pattern(CPR_PATTERN),
                   "description": "A CPR number: 9 digits, the first four the year and month of birth (YYMM)."},
    validate_cpr_or_erased: {
        "pattern": f"(?:{ecma_pattern(CPR_PATTERN)})|^\\[erased\\]$",
        "description": "A CPR number (9 digits, the first four YYMM of birth), or \"[erased]\" once its person "
                       "was forgotten."},
}
# Validator classes apispec turns into JSON Schema keywords (enum, minimum/maximum, minLength/..., pattern).
DESCRIBED_VALIDATORS = (validate.OneOf, validate.Equal, validate.Range, validate.Length, validate.Regexp)


def _ecma_patterns(self, field, **kwargs) -> dict:
    regexes = [v.regex for v in field.validators if isinstance(getattr(v, "regex", None), re.Pattern)]
    if len(regexes) > 1:
        raise CatalogueError(f"{field!r} has more than one regex; JSON Schema can show only one")
    return {"pattern": ecma_pattern(regexes[0])} if regexes else {}


def _function_validators(self, field, **kwargs) -> dict:
    extra = {}
    for validator in field.validators:
        if isinstance(validator, DESCRIBED_VALIDATORS):
            continue
        if validator in FUNCTION_VALIDATORS:
            extra.update(FUNCTION_VALIDATORS[validator])
        else:
            raise CatalogueError(f"cannot describe the validator {validator!r} of {field!r} in JSON Schema: "
                                 "add it to FUNCTION_VALIDATORS in services/cli/event_catalogue.py")
    return extra


def _dict_keys(self, field, **kwargs) -> dict:
    """apispec describes a Dict's values only; its keys' constraints become `propertyNames`."""
    if not isinstance(field, fields.Dict) or field.key_field is None:
        return {}
    keys = self.field2property(field.key_field)
    keys.pop("type", None)   # JSON object keys are strings anyway
    return {"propertyNames": keys} if keys else {}


def json_schema(schema: Schema | type[Schema], title: str | None = None, description: str | None = None) -> dict:
    """One marshmallow Schema as a standalone JSON Schema (draft 2020-12), nested schemas inlined.

    Uses apispec's marshmallow converter (OpenAPI 3.1 schema objects are JSON Schema 2020-12: `allow_none`
    gives a type with "null"), plus: regexes anchored as marshmallow applies them, Dict key constraints, and
    the function validators listed in FUNCTION_VALIDATORS.
    """
    spec = APISpec(title="Mawaeed events", version="1", openapi_version="3.1.0")
    converter = OpenAPIConverter(openapi_version="3.1.0", schema_name_resolver=lambda s: None, spec=spec)
    for func in (_ecma_patterns, _function_validators, _dict_keys):
        converter.add_attribute_function(func)
    result = {"$schema": DRAFT}
    if title:
        result["title"] = title
    if description:
        result["description"] = description
    result.update(converter.schema2jsonschema(schema))
    return result


# -- the envelope ------------------------------------------------------------------------------------------

ENVELOPE_SCHEMA = {
    "$schema": DRAFT,
    "title": "Mawaeed event envelope",
    "description": "Every event travels in this envelope, on the broker and in the events feed; `payload` is "
                   "described by the contract of its `type` and `version`.",
    "type": "object",
    "properties": {
        "event_id": {"type": "string", "format": "uuid",
                     "description": "Unique id of the event. A redelivered or republished event has the same id: "
                                    "consumers drop an id they have already processed."},
        "type": {"type": "string", "pattern": r"^[a-z]+\.[A-Z][A-Za-z]+$",
                 "description": "`<publishing service>.<EventName>`."},
        "version": {"type": "integer", "minimum": 1, "description": "Version of the payload contract."},
        "stream_id": {"type": "string", "minLength": 1,
                      "description": "The stream the event was appended to (a slot, a branch day, a message...)."},
        "stream_version": {"type": "integer", "minimum": 1,
                           "description": "The event's number in its stream, from 1, without gaps."},
        "position": {"type": "integer", "minimum": 1,
                     "description": "Position in the publishing service's log: gap-free, in commit order. "
                                    "Events of a service are published in this order; the events feed pages by it."},
        "occurred_at": {"type": "string", "format": "date-time", "pattern": "Z$",
                        "description": "When the event was recorded, in UTC."},
        "correlation_id": {"type": "string",
                           "description": "The event_id of the first event of the chain this one belongs to "
                                          "(its own event_id when it starts one)."},
        "causation_id": {"type": ["string", "null"],
                         "description": "The event_id of the event that caused this one, if any."},
        "directorate": {"type": ["string", "null"], "description": "The directorate the event concerns, if any."},
        "actor": {"type": ["object", "null"],
                  "description": "Who did it, when a member of staff, a device or a system did (null for the public "
                                 "and the suite itself): `subject` (the token's subject), `role`, and where it "
                                 "applies `branch` and `counter`. Never a token, never a CPR.",
                  "properties": {"subject": {"type": "string"}, "role": {"type": "string"},
                                 "branch": {"type": "string"}, "counter": {"type": "string"}},
                  "required": ["subject", "role"]},
        "payload": {"type": "object", "description": "The event's data: see the contract of its type and version."},
    },
    "required": ["actor", "causation_id", "correlation_id", "directorate", "event_id", "occurred_at", "payload",
                 "position", "stream_id", "stream_version", "type", "version"],
    "additionalProperties": False,
}


# -- the catalogue -----------------------------------------------------------------------------------------

def golden_sample(wire_name: str) -> dict:
    path = GOLDEN_DIR / f"{wire_name}.json"
    if not path.exists():
        raise CatalogueError(f"{wire_name} has no golden sample: add {path.relative_to(REPO_ROOT)}")
    return json.loads(path.read_text(encoding="utf-8"))


def _upcaster_note(type_: str, version: int) -> str | None:
    if version == latest_version(type_):
        return None
    step = UPCASTERS.get((type_, version))
    if step is None:
        return f"No upcaster to v{version + 1}: consumers cannot decode this version."
    doc = inspect.getdoc(step)
    return (f"Consumers receive it upcast to v{version + 1} by {step.__module__}.{step.__qualname__}"
            + (f": {doc.splitlines()[0]}" if doc else "."))


def wire_format(example: dict) -> dict:
    """How events travel on RabbitMQ: the exchange, the message's properties and headers, and the arguments of the
    suite's queues, from the code that publishes and declares them (`example`: a golden envelope)."""
    source = example["type"].split(".")[0]
    sent = wire_properties(example["event_id"], example["position"], f"{example['type']}.v{example['version']}")
    ex = exchange(source)
    subscription = next(s for s in topology.durable_subscriptions() if s.source == source)
    return {
        "exchange": {"name": "<service>.events", "example": ex.name, "type": ex.type, "durable": ex.durable,
                     "auto_delete": ex.auto_delete, "internal": False, "arguments": dict(ex.arguments or {}),
                     "declared_by": "the publishing service, when it starts (before its first event), and by "
                                    "whoever binds a queue to it"},
        "message": {
            "routing_key": {"value": "<type>.v<version>", "example": sent["routing_key"]},
            "mandatory": True,
            "body": "the envelope (below) as JSON, UTF-8",
            "properties": {
                "content_type": {"value": "application/json", "description": "The body is JSON."},
                "content_encoding": {"value": "utf-8", "description": "The body's text encoding."},
                "delivery_mode": {"value": sent["delivery_mode"],
                                  "description": "Persistent: written to disk by the broker (quorum queues "
                                                 "replicate it too)."},
                "message_id": {"value": "<event_id>", "example": sent["message_id"],
                               "description": "The event's id, the same on every copy of the event."},
            },
            "headers": {
                "type": {"value": "<type>.v<version>", "example": sent["headers"]["type"],
                         "description": "The wire name: type and version, as the routing key; decode the body "
                                        "with that contract."},
                "position": {"value": "integer", "example": sent["headers"]["position"],
                             "description": "The event's position in its publisher's log (as in the body)."},
                "event_id": {"value": "<event_id>", "example": sent["headers"]["event_id"],
                             "description": "The event's id (as in the body and message_id)."},
            },
        },
        "queues": {
            "subscription": {"name": "<subscription>", "example": subscription.name, "durable": True,
                             "arguments": topology.durable_queue_arguments("<subscription>.dead-letter")},
            "dead_letter": {"name": "<subscription>.dead-letter", "durable": True,
                            "arguments": topology.dead_letter_queue_arguments()},
            "live": {"name": "<subscription>.<host>.<pid>.<id>", "durable": False, "auto_delete": True,
                     "arguments": topology.live_queue_arguments()},
        },
        "dead_letter_headers": {
            "x-consumer": "The subscription that gave up on the event (set by the suite's consumer).",
            "x-error": "Why: the handler's last exception, or `contract: ...` for a body no contract decodes.",
            "x-dead-lettered-at": "When the consumer gave up, ISO 8601 UTC.",
            "x-death": "Set by RabbitMQ when it moved the message itself: reason `delivery_limit` after "
                       f"{topology.DELIVERY_LIMIT} returns of a message no consumer survived.",
        },
    }


def build_catalogue() -> dict:
    """The catalogue of every registered contract, keyed by wire name (sorted when written)."""
    events = {}
    for wire_name in sorted(CONTRACTS):
        entry = CONTRACTS[wire_name]
        events[wire_name] = {
            "type": entry.type,
            "version": entry.version,
            "latest": entry.version == latest_version(entry.type),
            "description": entry.description,
            "source": entry.source,
            "exchange": exchange(entry.source).name,
            "routing_key": wire_name,
            "consumers": sorted(s.name for s in SUBSCRIPTIONS.values()
                                if s.source == entry.source and entry.type in s.types),
            "payload_schema": json_schema(entry.schema, title=wire_name, description=entry.description),
            "upcaster": _upcaster_note(entry.type, entry.version),
            "sample": golden_sample(wire_name),
        }
    example = next(e["sample"] for e in events.values() if e["consumers"])
    return {"envelope": copy.deepcopy(ENVELOPE_SCHEMA), "events": events, "wire": wire_format(example)}


# -- the files ---------------------------------------------------------------------------------------------

def catalogue_json(catalogue: dict) -> str:
    return json.dumps(catalogue, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _type_of(prop: dict) -> str:
    types = prop.get("type", "any")
    types = types if isinstance(types, list) else [types]
    names = []
    for t in types:
        if t == "array":
            names.append(f"array of {_type_of(prop.get('items', {}))}")
        elif t == "object" and "properties" not in prop and isinstance(prop.get("additionalProperties"), dict):
            names.append(f"object of {_type_of(prop['additionalProperties'])}")
        elif t == "string" and "format" in prop:
            names.append(f"string ({prop['format']})")
        else:
            names.append(t)
    return " or ".join(names)


def _constraints(prop: dict) -> str:
    said = []
    if "enum" in prop:
        said.append("one of " + ", ".join(_code(v) for v in prop["enum"]))
    if "pattern" in prop:
        said.append(f"matches {_code(prop['pattern'])}")
    for low, high, what in (("minimum", "maximum", ""), ("minLength", "maxLength", "length "),
                            ("minItems", "maxItems", "items: ")):
        if low in prop and high in prop:
            said.append(f"{what}{prop[low]} to {prop[high]}")
        elif low in prop:
            said.append(f"{what}at least {prop[low]}")
        elif high in prop:
            said.append(f"{what}at most {prop[high]}")
    keys = prop.get("propertyNames")
    if keys:
        said.append("keys: " + _constraints(keys))
    if "default" in prop:
        said.append(f"default {_code(prop['default'])}")
    if "description" in prop:
        said.append(prop["description"])
    return "; ".join(said)


def _rows(schema: dict, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(field, type, required, constraints) for every property, nested ones with dotted names."""
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        rows.append((path, _type_of(prop), "yes" if name in required else "no", _constraints(prop)))
        rows.extend(_nested_rows(prop, path))
    return rows


def _nested_rows(prop: dict, path: str) -> list:
    if "properties" in prop:
        return _rows(prop, f"{path}.")
    if isinstance(prop.get("items"), dict):
        return _nested_rows(prop["items"], f"{path}[]")
    if isinstance(prop.get("additionalProperties"), dict):
        return _nested_rows(prop["additionalProperties"], f"{path}.<key>")
    return []


def _table(rows) -> list[str]:
    lines = ["| field | type | required | constraints |", "| --- | --- | --- | --- |"]
    lines += [f"| `{_cell(path)}` | {_cell(type_)} | {req} | {_cell(said)} |" for path, type_, req, said in rows]
    return lines


INTRO = """\
# Mawaeed event catalogue

Every event the services of Mawaeed publish, one section per type and version. Generated by
`mawaeed events catalogue` from the contracts (`shared/contracts/`), the broker topology (`shared/topology.py`)
and the golden samples of the contract tests (`shared/contracts/samples/`); do not edit it by hand.
`catalogue.json` beside this page holds the same in machine-readable form, with the JSON Schema
(draft 2020-12) of the envelope and of every payload. `mawaeed events catalogue --check` (and the contract
tests) fail when this page no longer matches the code.

## How to subscribe

- Each service publishes to its own durable **topic exchange** `<service>.events` (`booking.events`, ...),
  persistent messages, in the order of its log. The **routing key** is the wire name `<type>.v<version>`
  (`booking.SlotBooked.v1`).
- Declare a **durable queue** and bind it to the exchange with the routing key **`<type>.*`** to receive every
  version of a type (old ones stay on the wire while producers roll over). Decode each message with the contract
  of its own `type` and `version`, then upcast older versions to the latest (`shared.contracts.upcast`); the
  upcaster of each old version is named below.
- Every event carries an **`event_id`** and a **`position`** in its publisher's log. Delivery is at least once:
  a crash between publish and outbox cleanup publishes again, so **deduplicate by `event_id`**, recording it in
  the same transaction as the change the event causes. `position` lets a consumer catch up from the events feed
  (`GET /api/v1/events?service=NAME&after=POSITION`) before it consumes live. The feed wants a bearer token: a
  subscriber's whose scopes name the service (`events:NAME`), with `events:personal` for personal fields in clear
  (pseudonymised otherwise), or an analyst's (always pseudonymised).
- `actor` says who did it when a member of staff, a device or a system did (subject, role, branch); it is null for
  the public and for what the suite does by itself.
- The suite's own queues are **quorum queues** (replicated in a RabbitMQ cluster, 3.10 or later) with one active
  consumer per queue (`x-single-active-consumer`, which quorum queues support) to keep the log's order, and a
  `<queue>.dead-letter` quorum queue for events that still fail after retries, or that reached the **delivery
  limit** because no consumer survived them. `examples/subscriber/` declares its queues the same way.
  "On the wire" below gives every argument.
"""


def _kv_table(rows) -> list[str]:
    lines = ["| name | value | what |", "| --- | --- | --- |"]
    lines += [f"| `{_cell(name)}` | {_cell(value)} | {_cell(what)} |" for name, value, what in rows]
    return lines


def render_wire(wire: dict) -> list[str]:
    ex, message, queues = wire["exchange"], wire["message"], wire["queues"]
    lines = ["## On the wire", "",
             f"**Exchange** `{ex['name']}` (`{ex['example']}`): type `{ex['type']}`, durable "
             f"`{json.dumps(ex['durable'])}`, auto-delete `{json.dumps(ex['auto_delete'])}`, internal "
             f"`{json.dumps(ex['internal'])}`, arguments `{json.dumps(ex['arguments'])}`; declared by "
             f"{ex['declared_by']}. Declare it with exactly these, or passively.", "",
             f"**Message**: routing key `{message['routing_key']['value']}` (`{message['routing_key']['example']}`), "
             f"published mandatory with publisher confirms; body: {message['body']}.", "",
             "Properties:", "",
             *_kv_table((n, _code(p["value"]), p["description"]) for n, p in message["properties"].items()), "",
             "Headers (AMQP application headers):", "",
             *_kv_table((n, f"{_code(h['value'])}, e.g. {_code(h['example'])}", h["description"])
                        for n, h in message["headers"].items()), "",
             "**The suite's queues** (RabbitMQ refuses to redeclare a queue with other arguments: `PRECONDITION_FAILED`):",
             "", "| queue | durable | arguments |", "| --- | --- | --- |"]
    for kind in ("subscription", "dead_letter", "live"):
        q = queues[kind]
        lines.append(f"| `{q['name']}` | {'yes' if q['durable'] else 'no, auto-delete'} | "
                     f"{_cell(', '.join(f'`{k}: {json.dumps(v)}`' for k, v in q['arguments'].items()))} |")
    lines += ["", "Headers a dead letter adds (`mawaeed dead-letters show` prints them):", "",
              "| header | what |", "| --- | --- |",
              *[f"| `{name}` | {_cell(what)} |" for name, what in wire["dead_letter_headers"].items()], ""]
    return lines


def render_readme(catalogue: dict) -> str:
    events = catalogue["events"]
    lines = [INTRO, *render_wire(catalogue["wire"]), "## The envelope", "",
             _cell(catalogue["envelope"]["description"]), "", *_table(_rows(catalogue["envelope"])), "",
             "## Events", "",
             "| event | source | consumers in the suite |", "| --- | --- | --- |"]
    for wire_name, entry in events.items():
        anchor = wire_name.replace(".", "").lower()
        latest = "" if entry["latest"] else " (superseded)"
        lines.append(f"| [`{wire_name}`](#{anchor}){latest} | {entry['source']} | "
                     f"{', '.join(f'`{c}`' for c in entry['consumers']) or '—'} |")
    for wire_name, entry in events.items():
        lines += ["", f"### {wire_name}", "", entry["description"], ""]
        lines.append(f"- exchange: `{entry['exchange']}`, routing key `{entry['routing_key']}`"
                     f" (bind `{entry['type']}.*` for every version)")
        lines.append("- consumers in the suite: " + (", ".join(f"`{c}`" for c in entry["consumers"]) or "none yet"))
        lines.append("- latest version of its type: " + ("yes" if entry["latest"] else "no"))
        if entry["upcaster"]:
            lines.append(f"- {entry['upcaster']}")
        lines += ["", "Payload:", "", *_table(_rows(entry["payload_schema"])), "", "Sample envelope:", "",
                  "```json", json.dumps(entry["sample"], indent=2, ensure_ascii=False), "```"]
    return "\n".join(lines) + "\n"


def generate() -> dict[str, str]:
    """File name -> content of the catalogue as the code defines it now."""
    catalogue = build_catalogue()
    return {"catalogue.json": catalogue_json(catalogue), "README.md": render_readme(catalogue)}


def write(out: Path = DEFAULT_OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def differences(out: Path = DEFAULT_OUT) -> list[str]:
    """What differs between the files in `out` and what the code generates; empty when they are the same."""
    found = []
    for name, text in generate().items():
        path = out / name
        if not path.exists():
            found.append(f"{name}: missing")
            continue
        on_disk = path.read_text(encoding="utf-8")
        if on_disk == text:
            continue
        if name != "catalogue.json":
            found.append(f"{name}: differs")
            continue
        try:
            old = json.loads(on_disk)
        except ValueError:
            found.append(f"{name}: not valid JSON")
            continue
        new, before = json.loads(text), len(found)
        old_events, new_events = old.get("events", {}), new["events"]
        found += [f"{name}: {w} is new" for w in sorted(set(new_events) - set(old_events))]
        found += [f"{name}: {w} is no longer registered" for w in sorted(set(old_events) - set(new_events))]
        for wire_name in sorted(set(old_events) & set(new_events)):
            keys = sorted(k for k in set(old_events[wire_name]) | set(new_events[wire_name])
                          if old_events[wire_name].get(k) != new_events[wire_name].get(k))
            if keys:
                found.append(f"{name}: {wire_name} differs in {', '.join(keys)}")
        if old.get("envelope") != new["envelope"]:
            found.append(f"{name}: the envelope differs")
        if old.get("wire") != new["wire"]:
            found.append(f"{name}: the wire format differs")
        if len(found) == before:
            found.append(f"{name}: formatting differs")
    return found
