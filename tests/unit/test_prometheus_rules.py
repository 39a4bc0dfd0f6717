"""deploy/prometheus/alerts.yml without promtool: valid YAML of the rules-file shape, and every series and label an
expression names is one the suite exports (shared/metrics.py), so a renamed metric cannot silence an alert."""
import re
from pathlib import Path

import yaml

from shared import metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def exported() -> dict[str, tuple[str, ...]]:
    """Series name -> label names, as /metrics shows them (counters with their _total)."""
    series = {}
    for value in vars(metrics).values():
        name, labels = getattr(value, "_name", None), getattr(value, "_labelnames", None)
        if name and labels is not None:
            suffix = "_total" if type(value).__name__ == "Counter" else ""
            series[name + suffix] = tuple(labels)
    return series


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
        named = re.findall(r"\bmawaeed_[a-z_]+", rule["expr"])
        assert named, rule["alert"]
        for name in named:
            assert name in series, f"{rule['alert']}: {name} is not a metric of shared/metrics.py"
            for grouping in re.findall(r"by \(([^)]*)\)", rule["expr"]):
                for label in (label.strip() for label in grouping.split(",")):
                    assert label in series[name], f"{rule['alert']}: {name} has no label {label}"
