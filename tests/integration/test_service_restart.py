"""`routeguard serve` as a real subprocess: bootstrap, SIGKILL and restart on the same SQLite file
(the same version serves, routing changes survive in the audit log), then tampering with the chain."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx
from typer.testing import CliRunner, Result

from routeguard.cli import app
from support.service import ROUTE, bundle, run_cli, serve_process, write_bundle


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _route(url: str, **extra: object) -> dict[str, object]:
    r = httpx.post(url + "/v1/route", json={**ROUTE, **extra}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_kill_restart_keeps_versions_and_the_audit_chain(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with serve_process("--config", str(config), "--db", url, cwd=tmp_path) as first:
        alice = httpx.Client(base_url=first.url, headers={"x-routeguard-principal": "alice"}, timeout=30)
        bob = httpx.Client(base_url=first.url, headers={"x-routeguard-principal": "bob"}, timeout=30)
        assert _route(first.url)["policy_version"] == 1
        version = alice.post("/v1/policies", json={"config": bundle(primary="triage-v2")}).json()["version"]
        assert bob.post(f"/v1/policies/{version}/approve", json={}).status_code == 200
        assert bob.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}}).status_code == 200
        assert _route(first.url)["policy_version"] == version
        first.kill()
    changed = write_bundle(tmp_path / "v1-edited.yaml", bundle(primary="triage-v4"))
    with serve_process("--config", str(changed), "--db", url, cwd=tmp_path) as second:
        decision = _route(second.url)
        assert (decision["policy_version"], decision["model"]) == (version, "triage-v2")
        assert httpx.get(second.url + "/v1/audit/verify").json()["ok"] is True
        down = httpx.put(second.url + "/v1/health/triage-v2", json={"status": "down", "ttl": "10m"})
        assert down.status_code == 200
        assert _route(second.url)["status"] == "terminal"
        second.kill()
        assert second.proc.stderr is not None
        assert "differs" in second.proc.stderr.read().decode()
    with serve_process("--db", url, cwd=tmp_path) as third:
        assert _route(third.url, task_type="intake")["policy_version"] == version
        records = httpx.get(third.url + "/v1/audit", params={"kind": "route.changed"}).json()["records"]
        assert [(r["from_model"], r["to_model"]) for r in records if r["scope"] == "all"][:1] == [
            ("triage-v2", None)
        ]
        verify = httpx.get(third.url + "/v1/audit/verify").json()
        assert verify["ok"] is True and verify["records"] >= 6
        assert cli("audit", "verify", "--db", url).exit_code == 0
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        broken = httpx.get(third.url + "/v1/audit/verify").json()
        assert (broken["ok"], broken["first_broken"]) == (False, 2)
        # SIGTERM: uvicorn drains, then re-raises the signal (a SIGKILL fallback would be -9)
        assert third.stop() in (0, -signal.SIGTERM)
    as_json = cli("audit", "verify", "--db", url, "--json")
    assert as_json.exit_code == 1
    assert '"first_broken": 2' in as_json.stdout
    verify_process = run_cli("audit", "verify", "--db", url)  # the real command line, once
    assert verify_process.returncode == 1 and "record 2" in verify_process.stderr
    out = tmp_path / "audit.jsonl"
    exported = cli("audit", "export", "--db", url, "--out", str(out))
    assert exported.exit_code == 0, exported.output
    lines = out.read_text().splitlines()
    assert len(lines) == verify["records"] and '"prev_hash"' in lines[0]
