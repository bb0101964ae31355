"""The service on PostgreSQL: bootstrap, lifecycle, safe mode and a restart on the same schema.
Skipped when PostgreSQL is unreachable, unless ROUTEGUARD_REQUIRE_SERVICES=1 (then it fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.service import ROUTE, bundle, run_service, write_bundle
from support.services import postgres_schema

pytestmark = pytest.mark.services


def test_service_on_postgresql(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with postgres_schema("rg_service") as url:
        with (
            run_service(url, config=config) as svc,
            svc.client(principal="alice") as alice,
            svc.client(principal="bob") as bob,
        ):
            assert alice.post("/v1/route", json=ROUTE).json()["policy_version"] == 1
            version = alice.post("/v1/policies", json={"config": bundle(primary="triage-v2")}).json()[
                "version"
            ]
            assert alice.post(f"/v1/policies/{version}/approve", json={}).status_code == 403
            assert bob.post(f"/v1/policies/{version}/approve", json={}).status_code == 200
            r = bob.post(f"/v1/policies/{version}/publish", json={"scope": {"tenants": ["acme"]}})
            assert r.status_code == 200, r.text
            assert bob.post("/v1/route", json={**ROUTE, "tenant": "acme"}).json()["policy_version"] == version
            assert bob.post("/v1/route", json={**ROUTE, "tenant": "beta"}).json()["policy_version"] == 1
            assert (
                bob.post(
                    "/v1/safe-mode", json={"enabled": True, "tenant": "beta", "reason": "pg"}
                ).status_code
                == 200
            )
            assert bob.put("/v1/health/triage-v3", json={"status": "down", "ttl": 600}).status_code == 200
            assert bob.post("/v1/route", json=ROUTE).json()["model"] == "triage-v2"
            assert bob.get("/v1/audit/verify").json()["ok"] is True
        with run_service(url) as svc, svc.client() as http:
            assert (
                http.post("/v1/route", json={**ROUTE, "tenant": "acme"}).json()["policy_version"] == version
            )
            assert http.get("/v1/safe-mode").json()["tenants"] == ["beta"]
            kinds = {r["kind"] for r in http.get("/v1/audit", params={"limit": 1000}).json()["records"]}
            assert {
                "policy.bootstrap",
                "policy.created",
                "policy.approved",
                "policy.published",
                "safe_mode",
                "route.changed",
            } <= kinds
            verify = http.get("/v1/audit/verify").json()
            assert verify["ok"] is True and verify["first_broken"] is None
