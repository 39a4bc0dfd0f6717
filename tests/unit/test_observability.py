"""deploy/observability/: Prometheus's configuration scrapes every component compose runs, Grafana's provisioning
finds its data source and dashboards where compose mounts them, every dashboard query names only series and
labels the suite exports (the same reading of PromQL as the alerts' test) and parses, and compose runs both on
this host only with pinned images. promtool checks the configuration and the queries where it is installed (and
must be under `make test`)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_prometheus_rules import (OBSERVABILITY, exported, label_problems, promtool, series_named,
                                              unknown_series)

DEPLOY = OBSERVABILITY.parent
PROMETHEUS = OBSERVABILITY / "prometheus.yml"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARDS}


def queries(board: dict) -> list[str]:
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", ())]


def variables(board: dict) -> list[str]:
    return [v["query"]["query"] if isinstance(v["query"], dict) else v["query"] for v in board["templating"]["list"]]


# -- Prometheus ---------------------------------------------------------------------------------------------

def test_prometheus_scrapes_every_component_compose_runs():
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"] and (OBSERVABILITY / "alerts.yml").exists()
    targets = {target for job in config["scrape_configs"] for static in job.get("static_configs", ())
               for target in static["targets"]}
    # every container of the suite's own image serves /metrics on 8000: the services, the pages and the gateway
    components = {name for name, service in compose()["services"].items()
                  if "MAWAEED_IMAGE" in str(service.get("image", ""))}
    assert {"queue", "gateway", "web"} <= components
    assert targets == {f"{name}:8000" for name in components}


def test_promtool_accepts_the_configuration():
    result = subprocess.run([promtool(), "check", "config", str(PROMETHEUS)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- Grafana ------------------------------------------------------------------------------------------------

def test_grafana_is_provisioned_with_the_data_source_and_the_dashboards_compose_mounts():
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())["datasources"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mawaeed.yaml").read_text())["providers"]
    mounts = {m["target"]: m["source"] for m in compose()["services"]["grafana"]["volumes"] if isinstance(m, dict)}
    assert mounts[providers[0]["options"]["path"]] == "./observability/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./observability/grafana/provisioning"
    uids = {source["uid"] for source in sources}
    assert [source["url"] for source in sources] == ["http://prometheus:9090"]
    for name, board in dashboards().items():
        used = {panel["datasource"]["uid"] for panel in board["panels"]}
        used |= {v["datasource"]["uid"] for v in board["templating"]["list"]}
        assert used <= uids, name


def test_the_three_dashboards_and_their_variables():
    boards = dashboards()
    assert {board["title"] for board in boards.values()} == {"A centre's day", "A directorate", "The platform"}
    assert len({board["uid"] for board in boards.values()}) == 3
    by_title = {board["title"]: board for board in boards.values()}
    assert "branch" in [v["name"] for v in by_title["A centre's day"]["templating"]["list"]]
    assert "directorate" in [v["name"] for v in by_title["A directorate"]["templating"]["list"]]
    centre = " ".join(queries(by_title["A centre's day"]))
    for name in ("mawaeed_queue_waiting", "mawaeed_queue_longest_wait_seconds", "mawaeed_queue_counters_open",
                 "mawaeed_queue_served_today", "mawaeed_queue_service_level_today"):
        assert name in centre
    platform = " ".join(queries(by_title["The platform"]))
    for name in ("mawaeed_http_request_seconds_bucket", "mawaeed_outbox_pending", "mawaeed_consumer_lag_seconds",
                 "mawaeed_dead_letters_waiting", "mawaeed_notifications_failed_total"):
        assert name in platform
    for board in boards.values():  # panels do not overlap on the grid
        cells = [(x, y) for p in board["panels"] for g in (p["gridPos"],)
                 for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])]
        assert len(cells) == len(set(cells)) and max(x for x, _ in cells) < 24


def test_every_dashboard_query_names_only_exported_series_and_labels():
    series = exported()
    for name, board in dashboards().items():
        for expr in queries(board):
            assert series_named(expr), (name, expr)
            assert not unknown_series(expr, series), (name, expr)
            assert not label_problems(expr, series), (name, expr)
        for query in variables(board):
            found = re.fullmatch(r"label_values\((\w+)(\{[^}]*\})?,\s*(\w+)\)", query)
            assert found, (name, query)
            assert found.group(3) in series[found.group(1)], (name, query)
            assert not label_problems(f"{found.group(1)}{found.group(2) or ''}", series), (name, query)


def test_promtool_parses_every_dashboard_query(tmp_path):
    """As recording rules, with Grafana's variables filled in: promtool parses each expression."""
    rules = [{"record": f"mawaeed:dashboard_query_{i}",
              "expr": re.sub(r"\$\w+", "x", expr.replace("$__rate_interval", "5m"))}
             for i, expr in enumerate(expr for board in dashboards().values() for expr in queries(board))]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- compose ------------------------------------------------------------------------------------------------

def test_compose_runs_prometheus_and_grafana_pinned_on_this_host_only():
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        service = services[name]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]
        assert service["ports"] and all(port.startswith("127.0.0.1:") for port in service["ports"])
        for mount in service["volumes"]:
            if isinstance(mount, dict):
                assert (DEPLOY / mount["source"]).exists(), mount["source"]
                assert mount["read_only"] is True
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    # nothing calls outside the project
    assert grafana["GF_ANALYTICS_REPORTING_ENABLED"] == grafana["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"
    assert {"prometheus-data", "grafana-data"} <= set(compose()["volumes"])


def test_docker_compose_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no docker compose here: the structure is checked above")
    result = subprocess.run([docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_nothing_in_the_observability_files_points_outside_the_project():
    for path in OBSERVABILITY.rglob("*"):
        if path.is_file():
            for host in re.findall(r"https?://([^/:\s\"']+)", path.read_text(encoding="utf-8")):
                assert host in ("prometheus", "127.0.0.1", "localhost"), (path, host)


# -- a subscription's lag ------------------------------------------------------------------------------------

def test_a_subscriptions_lag_is_what_it_received_and_has_not_finished(monkeypatch):
    from datetime import datetime, timedelta, timezone
    from prometheus_client import REGISTRY

    from shared import metrics
    from shared.clock import clock

    now = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(clock, "now", lambda: now)
    lag = metrics.ConsumerLag("tests.lag", done=10)

    def shown():
        return (REGISTRY.get_sample_value("mawaeed_consumer_lag_events", {"consumer": "tests.lag"}),
                REGISTRY.get_sample_value("mawaeed_consumer_lag_seconds", {"consumer": "tests.lag"}))

    def event(position, seconds_ago):
        return {"position": position, "occurred_at": (now - timedelta(seconds=seconds_ago)).isoformat()}

    assert shown() == (0, 0)
    first, second = event(12, 40), event(15, 5)
    lag.received(first)
    lag.received(second)
    assert shown() == (5, 40)      # positions 11..15 (the source's other types among them), the oldest 40 s old
    lag.finished(first)
    assert shown() == (3, 5)
    lag.finished(second)
    assert shown() == (0, 0)
    lag.received({"position": "not an event"})  # a poison message changes nothing
    assert shown() == (0, 0)
