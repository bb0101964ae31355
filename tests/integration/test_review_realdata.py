"""The review loop on the real replay data (MMLU + GSM8K, Mixtral-8x7B vs GPT-4-1106).

The review is given one half of every class (which it splits again into learn and replay parts, and whose
replay it uses to adjust the proposal); the proposal is judged on the other half, which it never saw.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routeguard.config.load import load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.resolve import PolicyIndex, RequestKey
from routeguard.review.analyze import build_matrix, split_tasks
from routeguard.review.convert import convert_replay, replay_bundle_yaml
from routeguard.review.load import load_records
from routeguard.review.run import run_review
from routeguard.review.settings import ReviewSettings

DATA = Path(
    os.environ.get(
        "ROUTEGUARD_REPLAY_DATA",
        Path(__file__).resolve().parents[2] / "data" / "replay-mmlu-gsm8k.csv.gz",
    )
)
NOW = 1.8e9
SEED = 0


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("replay")
    converted = convert_replay(DATA, tmp / "evals.csv.gz")
    assert converted.tasks == 7747 and converted.contaminated_dropped == 7 and not converted.issues
    assert converted.rows_written == 2 * 7747 and converted.shared_prompts == 55
    (tmp / "bundle.yaml").write_text(replay_bundle_yaml(converted.classes))
    seen, _unseen = _halves(tmp / "evals.csv.gz")
    with gzip.open(tmp / "evals.csv.gz", "rt", newline="") as src, gzip.open(tmp / "seen.csv.gz", "wt") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=list(reader.fieldnames or ()))
        writer.writeheader()
        writer.writerows(row for row in reader if row["task_id"] in seen)
    shutil.copy(tmp / "evals.csv.gz.meta.json", tmp / "seen.csv.gz.meta.json")  # the stated assumptions
    settings = ReviewSettings(tolerance=0.04, seed=SEED, resamples=400)
    return run_review(
        tmp / "bundle.yaml", tmp / "seen.csv.gz", tmp / "out", settings=settings, now=NOW, charts=False
    )


def _halves(evals: Path) -> tuple[set[str], set[str]]:
    """Task ids of the half the review sees and of the half it never sees (stratified by class)."""
    matrix = build_matrix(load_records(evals, "evals").records, {}, {})
    seen, unseen = split_tasks(matrix, 0.5, SEED)
    return {matrix.task_ids[i] for i in seen}, {matrix.task_ids[i] for i in unseen}


def test_proposal_passes_every_governance_check(review: Any) -> None:
    assert review.proposal_path is not None
    loaded = load_bundle(review.proposal_path)
    assert check_bundle(loaded.bundle, NOW) == []
    assert review.report["proposal"]["valid"] and review.changes


def test_review_replay_keeps_95_percent_of_strong_quality_and_saves(review: Any) -> None:
    assert review.heldout_first_pass.kept.value >= 0.95  # as learnt, before any replay adjustment
    assert review.quality_kept >= 0.95
    assert review.cost_saving > 0.05


def test_independent_replay_of_the_proposed_bundle_on_the_unseen_half(review: Any) -> None:
    """Route every task of the half the review never saw through the proposed bundle (§1 resolution)."""
    evals = str(Path(review.report["inputs"]["evals"]["path"]).with_name("evals.csv.gz"))
    _, held_ids = _halves(Path(evals))
    index = PolicyIndex(load_bundle(review.proposal_path).bundle.policies)
    by_task: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    klass: dict[str, str] = {}
    with gzip.open(evals, "rt") as fh:
        for row in csv.DictReader(fh):
            if row["task_id"] in held_ids:
                by_task[row["task_id"]][row["model"]] = (float(row["quality"]), float(row["cost_usd"]))
                klass[row["task_id"]] = row["task_class"]
    routed, strong = [], []
    for task, models in by_task.items():
        policy = index.resolve(RequestKey(task_type=klass[task]))
        assert policy is not None
        routed.append(models[policy.primary_models[0]])
        strong.append(models["gpt-4-1106"])
    r, s = np.array(routed), np.array(strong)
    assert len(r) == len(held_ids) > 3800
    assert r[:, 0].mean() / s[:, 0].mean() >= 0.95
    assert r[:, 1].sum() < 0.85 * s[:, 1].sum()  # more than 15 % saved


def test_report_states_assumptions_and_per_class_evidence(review: Any) -> None:
    report = review.report
    assert any("characters / 4" in a for a in report["inputs"]["assumptions"])
    for entry in report["classes"]:
        assert entry["privacy_residency"]["clearance_ok"] and entry["privacy_residency"]["residency_ok"]
        if entry["proposed_model"]:
            assert entry["replay"] and entry["replay"][-1]["verdict"] == "pass"
            assert entry["quality"]["current"]["low"] is not None
