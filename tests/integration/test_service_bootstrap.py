"""What serves on start (CONTRACT §6): bootstrap, a differing --config, an empty store, legacy mode."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from routeguard.service.bootstrap import StartupError
from routeguard.service.settings import Settings
from routeguard.service.state import ServiceState
from support.service import ROUTE, bundle, run_service, write_bundle


def test_bootstrap_findings_stop_the_start_and_list_every_finding(tmp_path: Path) -> None:
    raw = bundle(primary="general-xl")
    raw["policies"]["triage-agent"]["notify"] = ["nobody"]
    config = write_bundle(tmp_path / "bad.yaml", raw)
    with pytest.raises(StartupError) as caught:
        ServiceState.open(Settings(db_url=f"sqlite:///{tmp_path / 's.db'}", config_path=config))
    codes = {f.code for f in caught.value.findings}
    assert {"unapproved_model", "clearance_too_low", "region_not_allowed", "unknown_reference"} <= codes
    assert caught.value.exit_code == 1
    assert all(f.line is not None for f in caught.value.findings)


def test_bootstrap_is_version_1_audited_and_a_differing_file_is_only_reported(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    first = write_bundle(tmp_path / "a.yaml", bundle())
    with run_service(db, config=first) as svc, svc.client() as http:
        assert http.post("/v1/route", json=ROUTE).json()["policy_version"] == 1
        boot = http.get("/v1/audit", params={"kind": "policy.bootstrap"}).json()["records"]
        assert len(boot) == 1 and boot[0]["payload"]["version"] == 1
        assert any("published to all as version 1" in note for note in svc.state.report.notes)
    other = write_bundle(tmp_path / "b.yaml", bundle(primary="triage-v2"))
    with run_service(db, config=other) as svc, svc.client() as http:
        assert any("differs" in note for note in svc.state.report.notes)
        decision = http.post("/v1/route", json=ROUTE).json()
        assert (decision["policy_version"], decision["model"]) == (1, "triage-v3")
        assert len(http.get("/v1/policies").json()["versions"]) == 1
    with run_service(db, config=first) as svc:
        assert svc.state.report.notes == []  # the same file: nothing to report


def test_empty_store_serves_nothing_until_a_publish(tmp_path: Path) -> None:
    with run_service(f"sqlite:///{tmp_path / 's.db'}") as svc, svc.client(principal="alice") as alice:
        assert httpx.get(svc.url + "/readyz").status_code == 503
        r = alice.post("/v1/route", json=ROUTE)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_agent"
        version = alice.post("/v1/policies", json={"config": bundle()}).json()["version"]
        approve = alice.post(f"/v1/policies/{version}/approve", headers={"x-routeguard-principal": "bob"})
        assert approve.status_code == 200
        assert alice.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}}).status_code == 200
        assert alice.post("/v1/route", json=ROUTE).json()["policy_version"] == version
        assert httpx.get(svc.url + "/readyz").status_code == 200


def test_legacy_single_model_mode_until_a_version_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTEGUARD_MODEL", "gpt-test")
    monkeypatch.setenv("ROUTEGUARD_BASE_URL", "http://127.0.0.1:9/v1")
    with run_service(f"sqlite:///{tmp_path / 's.db'}", legacy_env=True) as svc, svc.client() as http:
        decision = http.post("/v1/route", json={"agent": "anything"}).json()
        assert (decision["policy"], decision["model"], decision["policy_version"]) == (
            "default",
            "gpt-test",
            None,
        )
        assert http.get("/v1/policies").json()["versions"] == []
        version = http.post("/v1/policies", json={"config": bundle()}).json()["version"]
        http.post(f"/v1/policies/{version}/approve", headers={"x-routeguard-principal": "bob"})
        assert http.post(f"/v1/policies/{version}/publish", json={}).status_code == 200
        assert http.post("/v1/route", json={"agent": "anything"}).status_code == 404
        assert http.post("/v1/route", json=ROUTE).json()["policy_version"] == version
