"""deploy/prometheus-alerts.yaml and deploy/grafana-dashboard.json only use metrics RoutingMetrics exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from routeguard.telemetry.metrics import RoutingMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus-alerts.yaml"
METRIC = re.compile(r"\bagent_routing_[a-z0-9_]+")
WANTED = {  # the alerts the runbook promises, and a metric each must watch
    "RouteguardHitRateDrop": "agent_routing_hit_rate",
    "RouteguardDecisionLatencyHigh": "agent_routing_decision_latency_seconds_bucket",
    "RouteguardFallbackFailureRateHigh": "agent_routing_fallback_total",
    "RouteguardSafeModeActiveLong": "agent_routing_safe_mode_active",
    "RouteguardPolicyPublishFailed": "agent_routing_policy_publish_failures_total",
    "RouteguardNotificationStuck": "agent_routing_notification_outbox_age_seconds",
}


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_is_complete_and_watches_real_metrics() -> None:
    exposed = RoutingMetrics().sample_names()
    rules = alerts()
    assert {r["alert"]: r for r in rules}.keys() == WANTED.keys()
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule.get("alert")
        assert rule["labels"].get("severity") in {"warning", "critical"}
        assert rule["annotations"].get("summary") and rule["annotations"].get("description")
        assert re.fullmatch(r"\d+[smh]", str(rule["for"]))
        used = set(METRIC.findall(rule["expr"]))
        assert used and used <= exposed, (rule["alert"], used - exposed)
        assert WANTED[rule["alert"]] in used
        assert "tenant" not in rule["expr"] and "trace" not in rule["expr"]
    by_name = {r["alert"]: r for r in rules}
    assert re.search(r"> 0\.2\b", by_name["RouteguardDecisionLatencyHigh"]["expr"])
    assert by_name["RouteguardSafeModeActiveLong"]["for"] == "30m"
    assert "> 300" in by_name["RouteguardNotificationStuck"]["expr"]


def test_promtool_accepts_the_rules_and_each_alert_fires_on_its_test_series() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH")
    for args in (["check", "rules", RULES.name], ["test", "rules", "prometheus-alerts.test.yaml"]):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, check=False,
                                cwd=DEPLOY)
        assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_panels_query_real_metrics() -> None:
    exposed = RoutingMetrics().sample_names()
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    seen: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"]
        for target in panel["targets"]:
            used = set(METRIC.findall(target["expr"]))
            assert used and used <= exposed, (panel["title"], used - exposed)
            seen |= used
    for name in WANTED.values():
        assert name in seen
    assert {"agent_routing_model_health", "agent_routing_requests_total",
            "agent_routing_decisions_total"} <= seen
