"""A PowerX Planner, written to its own specification, against `/internal/model-routing/*` (CONTRACT §3, §5).

The Planner sends its task context as it writes it (`{tenant, taskType, sla, budget, modality}`, camelCase), uploads
versions with `version` / `scope` / `approver`, rolls back with `policy_version`, and learns of publications and
rollbacks from its notifier.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.receivers import WebhookReceiver
from support.service import Service, bundle, run_cli, run_service, write_bundle

BASE = "/internal/model-routing"
PLANNER_CONTEXT = {"tenant": "acme", "taskType": "triage", "sla": 2000, "budget": 0.05, "modality": "text",
                   "dataClass": "restricted", "agent": "triage-agent"}


def _bundle(hook_url: str, **changes: Any) -> dict[str, Any]:
    raw = bundle(**changes)
    raw["notifiers"] = {"planner": {"type": "webhook", "url": hook_url}}
    for policy in raw["policies"].values():
        policy["notify"] = ["planner"]
    return raw


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def svc(tmp_path: Path, hook: WebhookReceiver) -> Iterator[Service]:
    config = write_bundle(tmp_path / "v1.yaml", _bundle(hook.url))
    with run_service(f"sqlite:///{tmp_path / 'planner.db'}", config=config) as service:
        yield service


def _policy_events(hook: WebhookReceiver, n: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [b for b in hook.bodies() if b.get("event") == "agent.routing.policy"]
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{n} agent.routing.policy notifications not delivered: {hook.bodies()}")


def _upload(client: httpx.Client, raw: dict[str, Any], **fields: Any) -> httpx.Response:
    return client.post(f"{BASE}/policies", json={"config": yaml.safe_dump(raw), **fields})


def test_the_planner_task_context_is_routed_as_written(svc: Service) -> None:
    with svc.client(principal="planner") as client:
        decided = client.post(f"{BASE}/route", json=PLANNER_CONTEXT)
        assert decided.status_code == 200, decided.text
        assert decided.json()["model"] == "triage-v3" and decided.json()["policy"] == "triage-agent"
        both = client.post("/v1/route", json={**PLANNER_CONTEXT, "task_type": "intake"})
        assert both.status_code == 422 and both.json()["error"]["code"] == "conflicting_fields"
        assert "taskType" in both.json()["error"]["message"] or "task_type" in both.json()["error"]["message"]
        intake = {**PLANNER_CONTEXT, "metadata": {"profile": "triage-agent-intake"}}
        override = client.post(f"{BASE}/route", json=intake)
        assert override.status_code == 200 and override.json()["policy"] == "triage-agent-intake"


def test_upload_scope_approver_version_publish_and_policy_version_rollback(
    svc: Service, hook: WebhookReceiver
) -> None:
    planner, risk, mallory = (svc.client(principal=p) for p in ("planner", "risk-officer", "mallory"))
    with planner, risk, mallory:
        raw = _bundle(hook.url, primary="triage-v2", fallbacks=[{"model": "triage-v3"}])
        up = _upload(planner, raw, version="2026.12-a", scope={"tenants": ["acme"]}, approver="risk-officer")
        assert up.status_code == 201, up.text
        v2 = up.json()["version"]
        shown = planner.get(f"/v1/policies/{v2}").json()
        assert shown["label"] == "2026.12-a" and shown["approver"] == "risk-officer"
        assert shown["intended_scope"] == {"tenants": ["acme"]}

        refused = mallory.post(f"/v1/policies/{v2}/approve")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_the_approver"
        assert risk.post(f"/v1/policies/{v2}/approve").status_code == 200
        published = risk.post(f"/v1/policies/{v2}/publish")  # no scope: the upload's intended one
        assert published.status_code == 200, published.text
        assert published.json()["scope"] == {"tenants": ["acme"]}

        assert planner.post(f"{BASE}/route", json=PLANNER_CONTEXT).json()["policy_version"] == v2
        other = planner.post(f"{BASE}/route", json={**PLANNER_CONTEXT, "tenant": "globex"}).json()
        assert other["policy_version"] == 1

        back = planner.post(f"{BASE}/rollback", json={"policy_version": 1})
        assert back.status_code == 200, back.text
        assert planner.post(f"{BASE}/route", json=PLANNER_CONTEXT).json()["policy_version"] == 1
        clash = planner.post(f"{BASE}/rollback", json={"policy_version": 1, "version": 2})
        assert clash.status_code == 422

    events = _policy_events(hook, 2)
    assert [(e["action"], e["version"]) for e in events[:2]] == [("published", v2), ("rolled_back", 1)]
    assert events[0]["scope"] == "tenants:acme" and events[0]["by"] == "risk-officer"
    assert all(e["expected_duration_basis"] == "unknown" and e["audit_seq"] for e in events)
    assert events[0]["audit_seq"] < events[1]["audit_seq"]


def test_the_author_cannot_name_themself_approver_and_a_bad_scope_names_the_field(svc: Service) -> None:
    with svc.client(principal="planner") as client:
        raw = bundle()
        self_approved = _upload(client, raw, approver="planner")
        assert self_approved.status_code == 422 and "approver" in self_approved.json()["error"]["message"]
        bad_scope = _upload(client, raw, scope={"tenants": []})
        assert bad_scope.status_code == 422 and "scope" in bad_scope.json()["error"]["message"]


def test_business_lines_in_match_and_in_a_staged_rollout(svc: Service, hook: WebhookReceiver) -> None:
    with svc.client(principal="planner") as planner, svc.client(principal="risk") as risk:
        raw = _bundle(hook.url, primary="triage-v2", fallbacks=[{"model": "triage-v3"}])
        v2 = _upload(planner, raw).json()["version"]
        risk.post(f"/v1/policies/{v2}/approve").raise_for_status()
        published = risk.post(f"/v1/policies/{v2}/publish", json={"scope": {"business_lines": ["retail"]}})
        assert published.status_code == 200, published.text
        retail = planner.post(f"{BASE}/route", json={**PLANNER_CONTEXT, "businessLine": "retail"}).json()
        assert (retail["policy_version"], retail["model"]) == (v2, "triage-v2")
        wholesale = planner.post(f"{BASE}/route", json={**PLANNER_CONTEXT, "business_line": "wholesale"}).json()
        assert (wholesale["policy_version"], wholesale["model"]) == (1, "triage-v3")
        listed = planner.get("/v1/policies").json()
        assert {"business_lines": ["retail"]} in next(v for v in listed["versions"] if v["version"] == v2)["scopes"]


def test_the_cli_uploads_with_an_approver_and_publishes_to_business_lines(
    svc: Service, hook: WebhookReceiver, tmp_path: Path
) -> None:
    raw = _bundle(hook.url, primary="triage-v2", fallbacks=[{"model": "triage-v3"}])
    path = write_bundle(tmp_path / "v2.yaml", raw)
    server = ("--server", svc.url, "--json")
    up = run_cli("policy", "upload", str(path), "--approver", "risk", *server, "--as", "planner")
    assert up.returncode == 0, up.stderr
    version = str(json.loads(up.stdout)["version"])
    assert run_cli("policy", "approve", version, *server, "--as", "mallory").returncode == 1
    assert run_cli("policy", "approve", version, *server, "--as", "risk").returncode == 0
    both = run_cli("policy", "publish", version, "--all", "--business-lines", "retail", *server, "--as", "risk")
    assert both.returncode == 1
    pub = run_cli("policy", "publish", version, "--business-lines", "retail", *server, "--as", "risk")
    assert pub.returncode == 0 and json.loads(pub.stdout)["scope"] == {"business_lines": ["retail"]}
