"""CLI conventions (CONTRACT §6): --version, exit codes, `audit verify|export --server` from any directory,
ROUTEGUARD_PORT, and piped output that keeps paths whole."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from routeguard import __version__
from support.service import EXAMPLE, ROOT, free_port, routeguard_cmd, run_cli, run_service
from support.service import _wait_ready as wait_ready


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"routeguard {__version__}"


def test_usage_errors_exit_2() -> None:
    assert run_cli("validate", "no-such-file.yaml").returncode == 2
    assert run_cli("route", str(EXAMPLE), "--no-such-flag").returncode == 2


def test_simulate_exits_1_when_a_verdict_fails_and_0_when_all_pass() -> None:
    failing = run_cli("simulate", "--config", str(EXAMPLE), "--scenario", "double-failure", "--json")
    report = json.loads(failing.stdout)
    assert "fail" in report["verdicts"].values() and failing.returncode == 1
    passing = run_cli("simulate", "--config", str(EXAMPLE), "--scenario", "primary-outage", "--json")
    assert set(json.loads(passing.stdout)["verdicts"].values()) == {"pass"} and passing.returncode == 0


def test_audit_verify_and_export_over_server_from_another_directory(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with run_service(f"sqlite:///{db}", config=EXAMPLE) as svc:
        with svc.client(principal="ops") as client:
            client.post("/v1/safe-mode", json={"enabled": True, "reason": "drill"}).raise_for_status()
        verified = run_cli("audit", "verify", "--server", svc.url, "--json", cwd=elsewhere)
        assert verified.returncode == 0, verified.stderr
        result = json.loads(verified.stdout)
        assert result["ok"] is True and result["records"] >= 2
        out = elsewhere / "audit.jsonl"
        exported = run_cli("audit", "export", "--server", svc.url, "--out", str(out), cwd=elsewhere)
        assert exported.returncode == 0, exported.stderr
    local = run_cli("audit", "export", "--db", f"sqlite:///{db}", cwd=elsewhere)
    assert out.read_text(encoding="utf-8") == local.stdout  # the same chain, byte for byte, either way
    kinds = [json.loads(line)["kind"] for line in local.stdout.splitlines()]
    assert len(kinds) == result["records"] and "safe_mode" in kinds


def test_audit_verify_without_a_store_here_says_how_to_point_at_one(tmp_path: Path) -> None:
    result = run_cli("audit", "verify", cwd=tmp_path)
    assert result.returncode == 2
    assert "--db" in result.stderr and "--server" in result.stderr


def test_serve_takes_its_port_from_routeguard_port(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        routeguard_cmd("serve", "--config", str(EXAMPLE), "--db", f"sqlite:///{tmp_path / 'p.db'}"),
        cwd=tmp_path, env={**os.environ, "ROUTEGUARD_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_piped_output_never_breaks_a_path_mid_word(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "clinical-triage-bundle-with-a-long-name.yaml"
    deep.parent.mkdir(parents=True)
    deep.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(routeguard_cmd("validate", str(deep)), capture_output=True, text=True, env=env,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert str(deep) in result.stdout and len(result.stdout.strip().splitlines()) == 1
