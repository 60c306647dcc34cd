"""The compose observability stack is wired, and its alerts and dashboard use metrics the mesh exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from chassis import metrics
from chassis.paths import REPO_ROOT
from chassis.tooling.catalog import load_catalog
from tests.contract.test_deploy_manifests import compose_config

OBSERVABILITY = REPO_ROOT / "deploy" / "observability"
_METRIC = re.compile(r"\b(protomesh_[a-z_]+|envoy_[a-z_]+|up)\b")


def exported_metric_names() -> set[str]:
    """Names the runtime exports, with the series Prometheus derives from counters and histograms."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = {"up"}
    for family in metrics.REGISTRY.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def used_metrics(expression: str) -> set[str]:
    return {m for m in _METRIC.findall(expression) if not m.startswith("envoy_")}


def test_compose_runs_prometheus_grafana_and_a_trace_backend() -> None:
    model = compose_config(REPO_ROOT).model
    assert model is not None
    services = model["services"]
    assert {"prometheus", "grafana", "jaeger"} <= services.keys()
    assert services["agent"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert services["agent"]["environment"]["METRICS_PORT"] == "9464"


def test_alert_rules_cover_the_cases_and_use_exported_metrics() -> None:
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    assert {"HighErrorRate", "HighLatency", "CircuitBreakerOpen", "DeadLettersGrowing", "ReplicaDown"} <= names
    exported = exported_metric_names()
    for rule in rules:
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("page", "ticket")
        unknown = used_metrics(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} uses metrics nobody exports: {unknown}"


def test_dashboard_queries_use_exported_metrics() -> None:
    dashboard = json.loads((OBSERVABILITY / "grafana" / "dashboards" / "mesh.json").read_text())
    exported = exported_metric_names()
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) >= 8
    for expression in expressions:
        assert not used_metrics(expression) - exported, expression


def test_prometheus_and_the_upstream_alert_name_every_service() -> None:
    """Both lists are generated (tests/contract/test_deploy_manifests.py checks they are fresh); here, that they
    say what they should: every catalog service is scraped, and its Envoy cluster watched, none other."""
    names = load_catalog().names
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "services"]
    assert job["dns_sd_configs"][0]["names"] == names
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"][0]["rules"]
    (upstream,) = [r for r in rules if r["alert"] == "EnvoyNoHealthyUpstream"]
    matcher = re.search(r'envoy_cluster_name=~"([^"]*)"', upstream["expr"])
    assert matcher is not None and matcher[1].split("|") == names


def test_the_checks_catch_a_misspelt_metric(tmp_path: Path) -> None:
    assert used_metrics("rate(protomesh_rpc_request_total[5m])") - exported_metric_names() == {
        "protomesh_rpc_request_total"}
