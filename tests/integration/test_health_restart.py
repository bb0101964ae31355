"""Health survives restarts (CONTRACT §1): a `down` signal and an ejection are still in force after kill -9 and
a restart of `routeguard serve`, and the restart logs no spurious routing change (invariant 6)."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.service import ROUTE, bundle, serve_process, write_bundle


def _route(url: str) -> dict[str, object]:
    r = httpx.post(url + "/v1/route", json=ROUTE, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _changes(url: str) -> list[tuple[object, object]]:
    records = httpx.get(url + "/v1/audit", params={"kind": "route.changed"}, timeout=30).json()["records"]
    return [(r["from_model"], r["to_model"]) for r in records if r["policy"] == "triage-agent" and r["scope"] == "all"]


def test_a_down_signal_survives_kill_9_and_the_restart_logs_no_change(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = write_bundle(tmp_path / "bundle.yaml", bundle())
    with serve_process("--config", str(config), "--db", url, cwd=tmp_path) as first:
        r = httpx.put(first.url + "/v1/health/triage-v3", json={"status": "down", "ttl": "1h", "source": "ops"})
        assert r.status_code == 200
        assert _route(first.url)["model"] == "triage-v2"
        assert _changes(first.url) == [("triage-v3", "triage-v2")]
        first.kill()
    with serve_process("--config", str(config), "--db", url, cwd=tmp_path) as second:
        for _ in range(5):
            assert _route(second.url)["model"] == "triage-v2"  # still routed away
        assert _changes(second.url) == [("triage-v3", "triage-v2")]  # and no second v3 -> v2 change
        signal = httpx.get(second.url + "/v1/health").json()["models"]["triage-v3"]["signal"]
        assert signal["status"] == "down" and signal["source"] == "ops"
        assert httpx.get(second.url + "/v1/audit/verify").json()["ok"] is True
        second.kill()


def test_an_ejection_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = write_bundle(tmp_path / "bundle.yaml", bundle(health={"cooldown": "10m", "consecutive_failures": 3}))
    with serve_process("--config", str(config), "--db", url, cwd=tmp_path) as first:
        failures = [{"model": "triage-v3", "ok": False, "error": "server_error"}] * 3
        assert httpx.post(first.url + "/v1/outcomes", json=failures).status_code == 202
        assert _route(first.url)["model"] == "triage-v2"
        first.kill()
    with serve_process("--config", str(config), "--db", url, cwd=tmp_path) as second:
        decision = _route(second.url)
        assert decision["model"] == "triage-v2"
        rejected = {r["model"]: r["reason"] for r in decision["rejected"]}  # type: ignore[union-attr]
        assert rejected["triage-v3"] == "unhealthy"
        health = httpx.get(second.url + "/v1/health").json()["models"]["triage-v3"]["policies"]["triage-agent"]
        assert health["state"] == "unhealthy" and health["cooldown_left_s"] > 500
        assert _changes(second.url) == [("triage-v3", "triage-v2")]
        second.kill()
