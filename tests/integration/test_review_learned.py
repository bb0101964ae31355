"""``routeguard review --learned`` end to end on the real replay data shipped in data/ (CONTRACT §7).

A slice of the data (five classes, two of them medical and marked confidential, which the weak model may not
receive) is reviewed; the proposal must pass ``routeguard validate`` (artifact hash included), hold the medical
classes on the strong model and say why, keep the calibrated lower bound within the tolerance, and route per
prompt when loaded by the Router.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from routeguard import Router
from routeguard.review.convert import convert_replay, replay_bundle
from routeguard.review.learned_review import run_learned_review
from routeguard.review.settings import ReviewSettings
from support.service import run_cli

DATA = Path(__file__).resolve().parents[2] / "data" / "replay-mmlu-gsm8k.csv.gz"
CLASSES = {"grade_school_math", "high_school_psychology", "miscellaneous", "anatomy", "clinical_knowledge"}
MEDICAL = {"anatomy", "clinical_knowledge"}
NOW = 1.8e9


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("learned")
    full = tmp / "full.csv.gz"
    convert_replay(DATA, full, include_prompt=True)
    with gzip.open(full, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["task_class"] in CLASSES]
    evals = tmp / "evals.csv"
    with evals.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys(), "data_class"])
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "data_class": "confidential" if r["task_class"] in MEDICAL else "internal"})
    raw = replay_bundle(sorted(CLASSES))
    raw["models"]["gpt-4-1106"]["clearance"] = "confidential"  # the weak model stays cleared for internal only
    config = tmp / "bundle.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    settings = ReviewSettings(tolerance=0.05, resamples=200, seed=0)
    result = run_learned_review(config, evals, tmp / "report", settings=settings, now=NOW)
    return tmp, result


def test_the_proposal_passes_validate_with_its_artifact(reviewed: tuple[Path, Any]) -> None:
    _tmp, result = reviewed
    assert result.proposal_path is not None and not result.findings
    check = run_cli("validate", str(result.proposal_path), "--now", "2027-01-01", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    raw = yaml.safe_load(result.proposal_path.read_text())
    learned = raw["policies"]["qa-router"]["primary"]["learned"]
    assert (learned["strong"], learned["weak"]) == ("gpt-4-1106", "mixtral-8x7b")
    artifact = result.proposal_path.parent / learned["artifact"]
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == learned["sha256"]
    assert b"pickle" not in artifact.read_bytes() and json.loads(artifact.read_bytes())["format"]
    artifact.write_bytes(artifact.read_bytes().replace(b'"intercept":', b'"intercept": '))  # one byte more
    tampered = run_cli("validate", str(result.proposal_path), "--now", "2027-01-01", "--json")
    assert tampered.returncode == 1
    assert [f["code"] for f in json.loads(tampered.stdout)["findings"]] == ["artifact_mismatch"]
    artifact.write_bytes(artifact.read_bytes().replace(b'"intercept": ', b'"intercept":'))


def test_medical_classes_stay_on_the_strong_model_and_the_report_says_why(reviewed: tuple[Path, Any]) -> None:
    _tmp, result = reviewed
    raw = yaml.safe_load(result.proposal_path.read_text())
    held = raw["policies"]["qa-router--strong-only"]
    assert held["primary"] == "gpt-4-1106" and set(held["match"]["task_types"]) == MEDICAL
    (policy,) = result.report["policies"]
    assert {h["task_class"] for h in policy["held"]} == MEDICAL
    assert all("confidential" in h["why"] and "mixtral-8x7b" in h["why"] for h in policy["held"])
    replayed = {c["task_class"]: c for c in result.report["heldout"]["classes"]}
    assert all(replayed[c]["weak_share"] == 0 for c in MEDICAL)
    report_md = (result.report_dir / "report.md").read_text()
    assert "Classes that stay on the strong arm" in report_md and "anatomy" in report_md
    assert (result.report_dir / "report.html").is_file() and (result.report_dir / "curve-qa-router.png").is_file()


def test_the_threshold_keeps_the_lower_bound_within_tolerance_and_saves(reviewed: tuple[Path, Any]) -> None:
    _tmp, result = reviewed
    (policy,) = result.report["policies"]
    chosen = policy["chosen"]
    assert chosen["quality_kept"]["low"] >= 0.95 and chosen["cost_saving"]["value"] > 0.1
    assert policy["proposed"]["threshold"] == pytest.approx(chosen["threshold"], abs=1e-6)
    assert all({"threshold", "weak_share", "n", "quality_kept", "cost_saving"} <= set(c) for c in policy["curve"])
    heldout = result.report["heldout"]
    assert heldout["n"] == policy["tasks"]["heldback"] > 100
    assert set(heldout["served_by"]) == {"gpt-4-1106", "mixtral-8x7b"}
    assert heldout["cost_saving"]["value"] > 0.05


def test_the_router_under_the_proposal_routes_per_prompt(reviewed: tuple[Path, Any]) -> None:
    _tmp, result = reviewed
    router = Router.from_file(result.proposal_path)
    replayed = result.report["heldout"]["classes"]
    klass = max(replayed, key=lambda c: c["weak_share"])["task_class"]  # the class the proposal moves most
    with gzip.open(DATA, "rt", newline="") as fh:
        prompts = [r["prompt"] for r in csv.DictReader(fh) if r["task_class"] == klass][:200]
    models = {router.decide({"task_type": klass, "prompt": p}).model for p in prompts}
    assert models == {"gpt-4-1106", "mixtral-8x7b"}  # per prompt, not per class
    assert router.decide({"task_type": klass}).model == "gpt-4-1106"  # no prompt: strong
    medical = router.decide({"task_type": "anatomy", "prompt": prompts[0]})  # no data class given: still strong
    assert medical.model == "gpt-4-1106" and medical.policy == "qa-router--strong-only"


def test_the_command_line_runs_the_learned_review(reviewed: tuple[Path, Any]) -> None:
    tmp, _result = reviewed
    out = tmp / "cli-report"
    done = run_cli("review", "--learned", "--config", str(tmp / "bundle.yaml"), "--evals", str(tmp / "evals.csv"),
                   "--report", str(out), "--resamples", "100", "--no-charts", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    (policy,) = summary["policies"]
    assert policy["proposed"]["threshold"] > 0 and {h["task_class"] for h in policy["held"]} == MEDICAL
    assert summary["heldout"]["n"] > 100 and (out / "proposal.yaml").is_file()
    missing = run_cli("review", "--learned", "--config", str(tmp / "bundle.yaml"), "--evals",
                      str(tmp / "full.csv.gz").replace("full", "none"), "--report", str(out))
    assert missing.returncode == 2
