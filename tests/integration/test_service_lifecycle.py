"""Policy lifecycle over HTTP: four eyes, staged tenants, sticky percent rollouts, both rollbacks,
failed publishes, approvals that expire while serving, and safe mode."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from routeguard.store.rollout import tenant_bucket
from routeguard.store.tables import OutboxRow
from support.service import ROUTE, Service, bundle, run_service, today_plus, write_bundle

DAY = 86400.0


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with run_service(f"sqlite:///{tmp_path / 'store.db'}", config=config) as service:
        yield service


@pytest.fixture
def alice(svc: Service) -> Iterator[httpx.Client]:
    with svc.client(principal="alice") as client:
        yield client


@pytest.fixture
def bob(svc: Service) -> Iterator[httpx.Client]:
    with svc.client(principal="bob") as client:
        yield client


def upload_approved(alice: httpx.Client, bob: httpx.Client, raw: dict[str, Any], label: str = "v") -> int:
    up = alice.post("/v1/policies", json={"config": raw, "label": label})
    assert up.status_code == 201, up.text
    version = int(up.json()["version"])
    assert bob.post(f"/v1/policies/{version}/approve", json={}).status_code == 200
    return version


def release(alice: httpx.Client, bob: httpx.Client, raw: dict[str, Any], scope: dict[str, Any]) -> int:
    version = upload_approved(alice, bob, raw)
    r = bob.post(f"/v1/policies/{version}/publish", json={"scope": scope})
    assert r.status_code == 200, r.text
    return version


def served(client: httpx.Client, tenant: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {**ROUTE, **extra}
    if tenant is not None:
        body["tenant"] = tenant
    r = client.post("/v1/route", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def kinds(client: httpx.Client, kind: str) -> list[dict[str, Any]]:
    return list(client.get("/v1/audit", params={"kind": kind, "limit": 1000}).json()["records"])


def test_four_eyes_by_principal_header(alice: httpx.Client, bob: httpx.Client) -> None:
    up = alice.post("/v1/policies", json={"config": bundle(primary="triage-v2")})
    version = up.json()["version"]
    assert up.json()["status"] == "draft"
    refused = alice.post(f"/v1/policies/{version}/approve", json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "four_eyes"
    early = bob.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}})
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_approved"
    assert kinds(bob, "policy.publish_failed")[-1]["payload"]["version"] == version
    assert served(bob)["policy_version"] == 1
    assert bob.post(f"/v1/policies/{version}/approve", json={}).json()["status"] == "approved"
    again = bob.post(f"/v1/policies/{version}/approve", json={})
    assert again.status_code == 409
    published = bob.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}})
    assert published.status_code == 200
    decision = served(bob)  # in effect before the publish answered
    assert (decision["policy_version"], decision["model"]) == (version, "triage-v2")
    shown = bob.get(f"/v1/policies/{version}").json()
    assert shown["status"] == "published" and shown["scope"] == {"all": True}
    assert shown["approvals"][0]["approver"] == "bob" and shown["author"] == "alice"
    assert bob.get("/v1/policies/1").json()["status"] == "superseded"


def test_staged_tenants_and_tenant_rollback(alice: httpx.Client, bob: httpx.Client) -> None:
    v2 = release(alice, bob, bundle(primary="triage-v2"), {"tenants": ["acme", "beta"]})
    assert served(bob, "acme")["policy_version"] == v2 and served(bob, "acme")["model"] == "triage-v2"
    assert served(bob, "beta")["policy_version"] == v2
    assert served(bob, "gamma")["policy_version"] == 1
    assert served(bob)["policy_version"] == 1  # no tenant: the stable version
    scopes = {(r["policy"], r["scope"]) for r in bob.get("/v1/routes").json()["routes"]}
    assert ("triage-agent", "tenants:acme,beta") in scopes
    r = bob.post("/v1/rollback", json={"tenant": "acme"})
    assert r.status_code == 200, r.text
    assert r.json()["now_serving"] == 1
    assert served(bob, "acme")["policy_version"] == 1
    assert served(bob, "beta")["policy_version"] == v2
    twin = bob.post("/internal/model-routing/rollback", json={"tenant": "beta"})
    assert twin.status_code == 200
    assert served(bob, "beta")["policy_version"] == 1
    again = bob.post("/v1/rollback", json={"tenant": "beta"})
    assert again.status_code == 409
    assert len(kinds(bob, "policy.tenant_rolled_back")) == 2


def test_percent_rollout_is_sticky_per_tenant(alice: httpx.Client, bob: httpx.Client) -> None:
    v2 = release(alice, bob, bundle(primary="triage-v2"), {"percent": 30})
    tenants = [f"tenant-{i}" for i in range(120)]
    seen: dict[str, set[int]] = {t: set() for t in tenants}
    for _round in range(4):
        for tenant in tenants:
            seen[tenant].add(served(bob, tenant)["policy_version"])
    assert all(len(versions) == 1 for versions in seen.values())
    for tenant, versions in seen.items():
        assert versions == ({v2} if tenant_bucket(tenant) < 30 else {1})
    assert {next(iter(v)) for v in seen.values()} == {1, v2}
    assert served(bob)["policy_version"] == 1


def test_rollback_to_a_version(alice: httpx.Client, bob: httpx.Client) -> None:
    v2 = release(alice, bob, bundle(primary="triage-v2"), {"all": True})
    assert served(bob)["policy_version"] == v2
    r = bob.post("/v1/rollback", json={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json()["stable_version"] == 1
    decision = served(bob)
    assert (decision["policy_version"], decision["model"]) == (1, "triage-v3")
    record = kinds(bob, "policy.rolled_back")[-1]
    assert record["actor"] == "bob" and record["payload"]["version"] == 1
    nothing_later = bob.post("/v1/rollback", json={"version": 1})
    assert nothing_later.status_code == 409
    assert bob.get("/v1/audit/verify").json()["ok"] is True


def test_failed_publish_leaves_serving_untouched(
    svc: Service, alice: httpx.Client, bob: httpx.Client
) -> None:
    raw = bundle(primary="triage-v2", expires={"triage-v2": today_plus(1)})
    version = upload_approved(alice, bob, raw)
    svc.clock.advance(3 * DAY)  # the approval of triage-v2 expired since the upload
    r = bob.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_bundle"
    assert "approval_expired" in {f["code"] for f in error["findings"]}
    assert served(bob)["policy_version"] == 1
    failed = kinds(bob, "policy.publish_failed")[-1]
    assert failed["payload"]["version"] == version and failed["payload"]["findings"]
    assert bob.get(f"/v1/policies/{version}").json()["status"] == "approved"
    assert bob.get("/v1/audit/verify").json()["ok"] is True


def test_approval_expiring_and_expiring_while_serving(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "b.yaml", bundle(expires={"triage-v3": today_plus(3)}))
    with run_service(f"sqlite:///{tmp_path / 'store.db'}", config=config) as svc, svc.client() as http:
        svc.state.tick()  # the ticker does this every tick_s; once is enough to look
        warned = kinds(http, "approval.expiring")
        assert [(r["payload"]["model"], r["policy"]) for r in warned] == [("triage-v3", "triage-agent")]
        svc.state.tick()
        assert len(kinds(http, "approval.expiring")) == 1  # once per approval
        assert served(http)["model"] == "triage-v3"
        svc.clock.advance(5 * DAY)
        changes = _wait_for_change(http, "triage-agent")  # the ticker notices, without any traffic
        assert (changes[-1]["from_model"], changes[-1]["to_model"]) == ("triage-v3", "triage-v2")
        assert "approval" in changes[-1]["reason"]
        decision = served(http)
        assert decision["model"] == "triage-v2"
        assert {"model": "triage-v3", "reason": "approval_expired"}.items() <= decision["rejected"][0].items()


def _wait_for_change(http: httpx.Client, policy: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        changes = [r for r in kinds(http, "route.changed") if r["scope"] == "all" and r["policy"] == policy]
        if changes:
            return changes
        time.sleep(0.05)
    raise AssertionError("no route.changed record was written")


def test_outage_is_audited_and_queued_to_notifiers(svc: Service, bob: httpx.Client) -> None:
    r = bob.put("/v1/health/triage-v3", json={"status": "down", "source": "pager", "ttl": "5m"})
    assert r.status_code == 200 and r.json()["ttl_s"] == 300
    decision = served(bob)
    assert decision["status"] == "fallback" and decision["model"] == "triage-v2"
    change = [r for r in kinds(bob, "route.changed") if r["policy"] == "triage-agent"][-1]
    assert (change["from_model"], change["to_model"]) == ("triage-v3", "triage-v2")
    assert set(change["verification"]) >= {
        "approved",
        "approval_ref",
        "capabilities_within_primary",
        "clearance_ok",
        "residency_ok",
    }
    assert "expected_duration" in change and "reason" in change
    assert kinds(bob, "health.changed")
    # queued in the same transaction as the audit record (the example's `log` notifier may have delivered it)
    with svc.state.store.db.read() as session:
        queued = session.execute(select(OutboxRow.notifier).where(OutboxRow.audit_seq == change["seq"])).scalars()
        assert "governance" in set(queued)
    assert bob.put("/v1/health/triage-v3", json={"status": "up", "ttl": 300}).status_code == 200


def test_safe_mode_global_and_per_tenant(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "b.yaml", bundle(primary="triage-v4"))  # triage-v4 is not trusted
    db = f"sqlite:///{tmp_path / 'store.db'}"
    route = {"region": None}
    with run_service(db, config=config) as svc, svc.client(principal="ops") as http:
        body = {k: v for k, v in ROUTE.items() if k not in route}
        assert http.post("/v1/route", json=body).json()["model"] == "triage-v4"
        on = http.post("/v1/safe-mode", json={"enabled": True, "tenant": "acme", "reason": "incident 7"})
        assert on.status_code == 200 and on.json()["state"]["tenants"] == ["acme"]
        acme = http.post("/v1/route", json={**body, "tenant": "acme"}).json()
        assert (acme["model"], acme["safe_mode"]) == ("triage-v2", True)
        assert http.post("/v1/route", json={**body, "tenant": "beta"}).json()["model"] == "triage-v4"
        glob = http.post("/internal/model-routing/safe-mode", json={"enabled": True, "reason": "all"})
        assert glob.status_code == 200
        for tenant in ("beta", "gamma", None):
            d = http.post("/v1/route", json={**body, **({"tenant": tenant} if tenant else {})}).json()
            assert d["model"] == "triage-v2" and d["safe_mode"] is True
        status = http.get("/v1/safe-mode").json()
        assert status["enabled"] is True and status["tenants"] == ["acme"]
        records = kinds(http, "safe_mode")
        assert [(r["payload"]["tenant"], r["actor"]) for r in records] == [("acme", "ops"), (None, "ops")]
    with run_service(db) as svc, svc.client() as http:  # persisted: a restart keeps safe mode
        assert http.get("/v1/safe-mode").json()["enabled"] is True
        assert http.post("/v1/route", json=body).json()["model"] == "triage-v2"
        off = http.post("/v1/safe-mode", json={"enabled": False, "reason": "over"})
        assert off.json()["enabled"] is False
        assert http.post("/v1/route", json=body).json()["model"] == "triage-v4"


def test_automatic_safe_mode_is_persisted(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "b.yaml", bundle())
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with run_service(db, config=config) as svc, svc.client() as http:
        for _ in range(40):
            svc.state.router.record_fallback_result(True)
        status = http.get("/v1/safe-mode").json()
        assert status["enabled"] is True and status["global"]["by"] == "routeguard:auto"
        assert kinds(http, "safe_mode")[-1]["actor"] == "routeguard:auto"
    with run_service(db) as svc, svc.client() as http:
        assert http.get("/v1/safe-mode").json()["enabled"] is True


def test_internal_policies_twin_uploads(alice: httpx.Client) -> None:
    r = alice.post("/internal/model-routing/policies", json={"config": bundle(), "label": "twin"})
    assert r.status_code == 201 and r.json()["status"] == "draft"
