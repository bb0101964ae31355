"""``routeguard simulate`` / ``demo`` / ``validate --simulate``: output shapes and the publish gate."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner, Result

from routeguard.cli.app import app
from routeguard.config.load import load_raw
from routeguard.sim.demo import run_demo
from routeguard.sim.gate import run_standard_scenarios

REPO = Path(__file__).resolve().parents[2]
CLINICAL = REPO / "examples" / "clinical-triage.yaml"
SECTION_7_KEYS = {
    "requests",
    "served_by",
    "succeeded",
    "failed",
    "terminal",
    "fallback_success_rate",
    "hit_rate",
    "unapproved_served",
    "routing_changes",
    "time_to_failover_s",
    "time_to_recover_s",
    "flaps",
    "notifications",
    "decision_latency_us",
    "verdicts",
}
VERDICTS = {"fallback_success_rate", "hit_rate", "safe_mode_within_1m", "decision_p99_under_200ms"}


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _check_shape(report: dict[str, Any]) -> None:
    assert set(report) >= SECTION_7_KEYS
    for key in ("requests", "succeeded", "failed", "unapproved_served", "flaps", "notifications"):
        assert isinstance(report[key], int) and not isinstance(report[key], bool), key
    assert report["unapproved_served"] == 0
    assert report["succeeded"] + report["failed"] + sum(report["terminal"].values()) == report["requests"]
    assert all(isinstance(v, int) for v in report["served_by"].values())
    assert 0.0 <= report["fallback_success_rate"] <= 1.0 and 0.0 <= report["hit_rate"] <= 1.0
    for change in report["routing_changes"]:
        assert set(change) == {"t_s", "policy", "from_model", "to_model", "reason"}
    for key in ("time_to_failover_s", "time_to_recover_s"):
        assert report[key] is None or isinstance(report[key], int | float)
    assert set(report["decision_latency_us"]) == {"p50", "p99"}
    assert set(report["verdicts"]) == VERDICTS and set(report["verdicts"].values()) <= {"pass", "fail"}


def test_json_is_one_object_on_stdout_and_nothing_else() -> None:
    """A real process: stdout holds exactly what a user's pipe gets (the progress bar is on stderr)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from routeguard.cli import main; main()",
            "simulate",
            "--config",
            str(CLINICAL),
            "--scenario",
            "primary-outage",
            "--duration",
            "4m",
            "--seed",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # raises if anything else is on stdout
    _check_shape(report)
    assert report["seed"] == 3 and report["duration_s"] == 240
    assert report["routing_changes"][0]["from_model"] == "triage-v3"


def test_human_summary_and_report_folder(tmp_path: Path) -> None:
    result = _invoke(
        "simulate", "--scenario", "stream-break", "--duration", "2m", "--report", str(tmp_path / "r")
    )
    assert result.exit_code == 0, result.output
    assert "verdicts" in result.stdout and "routing changes" in result.stdout
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"report.md", "report.html", "report.json", "served_by.png", "outcomes.png", "routes.png"} <= names
    assert (tmp_path / "r" / "served_by.png").read_bytes()[:4] == b"\x89PNG"
    assert '<img src="served_by.png"' in (tmp_path / "r" / "report.html").read_text()


def test_list_and_usage_errors() -> None:
    listed = _invoke("simulate", "--list", "--json")
    assert listed.exit_code == 0 and "primary-outage" in json.loads(listed.stdout)["scenarios"]
    assert _invoke("simulate", "--scenario", "no-such-thing").exit_code == 2
    assert _invoke("simulate").exit_code == 2


def test_compare_two_bundles(tmp_path: Path) -> None:
    stricter = load_raw(CLINICAL)
    stricter["policies"]["triage-agent"]["fallbacks"] = []  # no fallback: the outage goes to the human queue
    new = tmp_path / "new.json"
    new.write_text(json.dumps(stricter))
    result = _invoke(
        "simulate",
        "--compare",
        str(CLINICAL),
        str(new),
        "--scenario",
        "primary-outage",
        "--duration",
        "3m",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    (row,) = out["scenarios"]
    _check_shape(row["old"])
    _check_shape(row["new"])
    assert row["old"]["terminal"] == {} and row["new"]["terminal"]["human_queue"] > 0
    assert "terminal" in row["differences"] and "verdict hit_rate" in row["differences"]


def test_gate_passes_the_clinical_bundle_and_validate_reports_it() -> None:
    results = run_standard_scenarios(load_raw(CLINICAL))
    assert [r["scenario"].split("[")[0] for r in results] == ["primary-outage"] * 2 + ["brownout"] * 2 + [
        "double-failure"
    ] * 2
    for r in results:
        assert r["passed"], r
        assert set(r) >= {"scenario", "passed", "verdicts", "checks", "requests", "routing_changes"}
    double = [r for r in results if r["scenario"].startswith("double-failure")]
    assert all(r["terminal"].get("human_queue", 0) > 0 for r in double)
    result = _invoke("validate", str(CLINICAL), "--simulate", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["simulation"]) == 6


def test_gate_fails_a_policy_that_lets_outages_reach_callers() -> None:
    raw = load_raw(CLINICAL)
    # connection errors are neither retried nor a trigger: during an outage callers get the raw error
    raw["policies"]["triage-agent"]["retry"] = {"attempts": 1, "on": ["timeout"]}
    raw["policies"]["triage-agent"]["fallbacks"] = [{"model": "triage-v2", "on": ["unavailable"]}]
    results = run_standard_scenarios(raw)
    outage = next(r for r in results if r["scenario"] == "primary-outage[triage-v3]")
    assert not outage["passed"]
    assert outage["checks"]["no_caller_errors"] is False
    assert outage["checks"]["no_unapproved"] and outage["checks"]["invariants"]


def test_demo_runs_without_a_server() -> None:
    buffer = io.StringIO()
    report = run_demo(Console(file=buffer, width=120), seconds=0)
    text = buffer.getvalue()
    assert report["unapproved_served"] == 0 and report["terminal"]["human_queue"] > 0
    changes = report["routing_changes"]
    assert [(c["from_model"], c["to_model"]) for c in changes if c["policy"] == "triage-agent"] == [
        ("triage-v3", "triage-v2"),
        ("triage-v2", None),
        (None, "triage-v2"),
        ("triage-v2", "triage-v3"),
    ]
    # the intake policy (primary triage-v2) goes to its terminal action and back with the double failure
    assert [(c["from_model"], c["to_model"]) for c in changes if c["policy"] == "triage-agent-intake"] == [
        ("triage-v2", None),
        (None, "triage-v2"),
    ]
    assert "routing change" in text and "audit #4" in text and "audit chain: intact: 4 records" in text
