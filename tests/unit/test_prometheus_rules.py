"""deploy/observability/alerts.yml: valid YAML of the rules-file shape, every series and label an expression names
is one the suite exports (shared/metrics.py, the queue's live figures, prometheus_client's own, `up`), so a
renamed metric cannot silence an alert; and promtool accepts it. The PromQL reading here is shared with
tests/unit/test_observability.py (the dashboards)."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from shared import metrics
from services.queue import metrics as queue_metrics

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
RULES = OBSERVABILITY / "alerts.yml"
SUFFIXES = {"Counter": ("_total",), "Histogram": ("_bucket", "_count", "_sum"), "Gauge": ("",)}


def exported() -> dict[str, tuple[str, ...]]:
    """Series name -> label names, as /metrics shows them (counters with their _total, histograms' series)."""
    series = {}
    for value in vars(metrics).values():
        name, labels = getattr(value, "_name", None), getattr(value, "_labelnames", None)
        if name and labels is not None:
            for suffix in SUFFIXES[type(value).__name__]:
                series[name + suffix] = tuple(labels) + (("le",) if suffix == "_bucket" else ())
    for name, (_, labels) in queue_metrics.FAMILIES.items():
        series[name] = tuple(labels)
    for family in REGISTRY.collect():  # prometheus_client's own: process_*, python_*
        if not family.name.startswith("mawaeed_"):
            for sample in family.samples:
                series.setdefault(sample.name, tuple(sample.labels))
    series["up"] = ("job", "instance")  # Prometheus's, for every target
    return series


# -- reading PromQL enough to find the series and labels it names ------------------------------------------

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
            # aggregations, which may take their grouping before their argument
            "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
            "count_values"}
GROUPING = r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"


def _plain(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings hold no names


def series_named(expr: str) -> set[str]:
    """The series an expression selects: identifiers that are not functions, keywords or label names."""
    text = re.sub(r"\[[^\]]*\]", "", re.sub(r"\{[^}]*\}", "", _plain(expr)))
    text = re.sub(GROUPING, r"\1", text)
    return {m.group() for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text)
            if m.group() not in KEYWORDS and not text[m.end():].lstrip().startswith("(")}


def _argument(text: str, start: int) -> str:
    """The parenthesised argument opening at text[start] ('('), without its parentheses."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    raise AssertionError(f"unbalanced parentheses in {text!r}")


def _operand(text: str, at: int) -> str:
    """The operand starting at text[at] (after spaces and a group_left/right): parenthesised, an aggregation or a
    function with its argument, or a selector."""
    rest = re.sub(r"^\s*(group_left|group_right)\s*(\([^)]*\))?", "", text[at:]).lstrip()
    if rest.startswith("("):
        return _argument(rest, 0)
    head = re.match(r"[A-Za-z_:][\w:]*(\s*(by|without)\s*\([^)]*\))?\s*", rest)
    after = head.end() if head else 0
    if rest[after:after + 1] == "(":
        return rest[:after] + "(" + _argument(rest, after) + ")"
    return head.group() if head else rest


def label_problems(expr: str, series: dict) -> list[str]:
    """Labels an expression names that its series do not have: in matchers, in `by (...)` of an aggregation
    (against the series inside it), and in `on (...)` (against the series of the operand on its right)."""
    text, problems = _plain(expr), []
    for name, matchers in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}", text):
        for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers):
            if label not in series.get(name, ()):
                problems.append(f"{name} has no label {label}")
    for found in re.finditer(GROUPING, text):
        keyword, labels = found.group(1), [label.strip() for label in found.group(2).split(",") if label.strip()]
        if keyword == "by":
            rest = text[found.end():]
            opening = found.end() + len(rest) - len(rest.lstrip())
            scope = series_named(_argument(text, opening)) if text[opening:opening + 1] == "(" else set()
        elif keyword == "on":  # the operand on its right; the left one is met by its own matchers and groupings
            scope = series_named(_operand(text, found.end()))
        else:
            continue
        problems += [f"{name} has no label {label}" for name in scope for label in labels
                     if name in series and label not in series[name]]
    return problems


def unknown_series(expr: str, series: dict) -> set[str]:
    return {name for name in series_named(expr) if name not in series}


# -- the rules ------------------------------------------------------------------------------------------------

def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_rules_file_has_the_shape_prometheus_loads():
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert "for" not in rule or re.fullmatch(r"\d+[smhd]", rule["for"])
            assert rule["expr"].count("(") == rule["expr"].count(")")


def test_every_series_and_label_an_alert_uses_is_exported():
    series = exported()
    for rule in rules():
        assert series_named(rule["expr"]), rule["alert"]
        assert not unknown_series(rule["expr"], series), f"{rule['alert']}: not exported"
        assert not label_problems(rule["expr"], series), rule["alert"]


def test_the_alerts_the_operators_were_promised_are_there():
    named = {rule["alert"]: rule["expr"] for rule in rules()}
    for alert, series in {"MawaeedOutboxGrowing": "mawaeed_outbox_pending",
                          "MawaeedDeadLettersWaiting": "mawaeed_dead_letters_waiting",
                          "MawaeedConsumerLagging": "mawaeed_consumer_lag_seconds",
                          "MawaeedHttpErrors": "mawaeed_http_request_seconds_count",
                          "MawaeedPeopleWaitingNoCounterOpen": "mawaeed_queue_counters_open",
                          "MawaeedServiceLevelLow": "mawaeed_queue_service_level_today",
                          "MawaeedNotificationsFailing": "mawaeed_notifications_failed_total"}.items():
        assert series in series_named(named[alert]), alert


def test_the_reading_of_promql_finds_what_is_wrong():
    series = {"a_total": ("consumer",), "b": ("branch", "service"), "c": ("branch",)}
    assert series_named('sum by (x) (rate(a_total{consumer="q"}[5m])) > 0 and on (branch) c') == {"a_total", "c"}
    assert unknown_series("max by (branch) (d) > 0", series) == {"d"}
    assert label_problems('sum by (branch) (max by (branch, service) (b)) and on (branch) c', series) == []
    assert label_problems("max by (service) (c)", series) == ["c has no label service"]
    assert label_problems('a_total{channel="sms"}', series) == ["a_total has no label channel"]
    assert label_problems("sum by (branch) (b) * on (branch) max by (branch) (c)", series) == []
    assert label_problems("max by (branch, service) (b) and on (branch, service) c", series) == \
        ["c has no label service"]


# -- promtool -------------------------------------------------------------------------------------------------

def promtool() -> str:
    """promtool's path: `make test` installs it (deploy/ensure-tools.sh) and sets MAWAEED_REQUIRE_TOOLS=1, so
    there a missing promtool fails; elsewhere these checks are skipped."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("MAWAEED_REQUIRE_TOOLS") == "1":
            pytest.fail("promtool is missing: run deploy/ensure-tools.sh (Debian's prometheus package)")
        pytest.skip("promtool is not installed (deploy/ensure-tools.sh installs it)")
    return found


def test_promtool_accepts_the_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
