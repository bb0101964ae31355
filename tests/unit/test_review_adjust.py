"""The replay's adjust pass and the empirical-Bayes shrinkage behind the order of moves.

Outcomes are written per split, so each class's learn and replay halves say exactly what the test needs:
``late`` looks too lossy on the learn half only (moved in on learn + replay evidence), ``fader`` looks free
on the learn half and fails its replay (reverted, and its model never comes back even though the combined
evidence alone would allow it), ``steady_*`` lose a little on both halves.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from routeguard.review.analyze import build_matrix, split_tasks
from routeguard.review.load import load_records
from routeguard.review.run import run_review
from routeguard.review.settings import ReviewSettings
from routeguard.review.shrink import Observed, shrink, standard_errors

NOW = 1.8e9
CLASSES = ("steady_a", "steady_b", "steady_c", "late", "fader")
TASKS = 200


def _bundle() -> dict[str, Any]:
    model = {
        "provider": "acme",
        "endpoint": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
        "capabilities": ["text"],
        "clearance": "internal",
        "regions": ["eu-west-1"],
    }
    return {
        "data_classes": ["public", "internal"],
        "models": {
            "big": {**model, "cost": {"input_per_1m": 10.0, "output_per_1m": 30.0}},
            "small": {**model, "cost": {"input_per_1m": 0.5, "output_per_1m": 1.5}},
        },
        "profiles": {"qa": {"requires": ["text"], "data_class": "internal", "regions": ["eu-west-1"]}},
        "approvals": [
            {"model": m, "profile": "qa", "by": "board", "evidence": f"EV-{m}", "expires": "2030-01-01"}
            for m in ("big", "small")
        ],
        "policies": {"qa": {"profile": "qa", "match": {"task_types": list(CLASSES)}, "primary": "big"}},
    }


def _small_right(klass: str, learn: bool, j: int) -> bool:
    """Whether ``small`` is right on the j-th task of its split (``big`` is right unless j % 10 == 0)."""
    if j % 10 == 0:
        return False
    if klass == "late":
        return not learn or j % 3 != 1  # learn: 0.60 vs 0.90 (-33 %); replay: no loss
    if klass == "fader":
        return learn or j % 2 == 0  # learn: no loss; replay: 0.40 vs 0.90 (-56 %, significant)
    return j % 25 != 1  # steady: 0.86 vs 0.90 on both halves


def _write(path: Path, learn_ids: set[str] | None) -> Path:
    rows = []
    position: dict[tuple[str, bool], int] = {}
    for klass in CLASSES:
        for i in range(TASKS):
            task = f"{klass}-{i:03d}"
            in_learn = learn_ids is None or task in learn_ids
            j = position.get((klass, in_learn), 0)
            position[(klass, in_learn)] = j + 1
            for model, right in (("big", j % 10 != 0), ("small", _small_right(klass, in_learn, j))):
                rows.append(
                    {
                        "task_id": task,
                        "task_class": klass,
                        "model": model,
                        "quality": int(right),
                        "input_tokens": 400,
                        "output_tokens": 100,
                    }
                )
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def adjusted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("adjust")
    settings = ReviewSettings(tolerance=0.10, resamples=300)
    # the review's own split depends only on task ids and classes: find it, then write the outcomes by split
    matrix = build_matrix(load_records(_write(tmp / "ids.csv", None), "evals").records, {}, {})
    learn, _ = split_tasks(matrix, settings.holdout, settings.seed)
    evals = _write(tmp / "evals.csv", {matrix.task_ids[i] for i in learn})
    (tmp / "bundle.yaml").write_text(yaml.safe_dump(_bundle(), sort_keys=False))
    result = run_review(tmp / "bundle.yaml", evals, tmp / "out", settings=settings, now=NOW, charts=False)
    return result, {c["task_class"]: c for c in result.report["classes"]}


def test_adjust_moves_in_a_class_the_learn_half_alone_held_back(adjusted: Any) -> None:
    result, classes = adjusted
    late = classes["late"]
    assert late["status"] == "move_cheaper" and late["proposed_model"] == "small"
    assert late["evidence"] == "learn + replay" and late["n"]["decision"] == TASKS
    assert "learn split: kept" in late["reasons"]
    assert [r["verdict"] for r in late["replay"]] == ["pass"]  # replayed once, after the adjustment
    assert "late: moved to small on learn + replay evidence" in result.report["summary"]["notes"]


def test_a_failed_replay_rules_the_model_out_for_the_class(adjusted: Any) -> None:
    _, classes = adjusted
    fader = classes["fader"]
    assert fader["status"] == "failed_verification" and fader["proposed_model"] is None
    assert [r["verdict"] for r in fader["replay"]] == ["fail"]
    assert fader["reasons"][-1].startswith("failed verification")


def test_every_move_is_replayed_at_most_twice_and_passes(adjusted: Any) -> None:
    result, classes = adjusted
    for name in ("steady_a", "steady_b", "steady_c"):
        assert classes[name]["status"] == "move_cheaper"
    for entry in classes.values():
        assert len(entry["replay"]) <= 2
        if entry["proposed_model"]:
            assert entry["replay"][-1]["verdict"] == "pass"
            assert entry["replay"][-1]["model"] == entry["proposed_model"]
    assert result.report["summary"]["adjusted"]["evidence"] == "learn + replay"
    assert result.verification_passed


def test_shrinkage_pulls_noisy_classes_furthest_toward_the_pool() -> None:
    observed = {
        "precise": Observed(-0.02, 0.1, 2000),
        "noisy": Observed(-0.02, 0.1, 20),
        "a": Observed(-0.15, 0.1, 200),
        "b": Observed(-0.20, 0.1, 200),
        "c": Observed(-0.10, 0.1, 200),
    }
    out = shrink(observed, min_classes=3)
    assert out["precise"].own_weight > out["noisy"].own_weight
    assert out["noisy"].value < out["precise"].value < -0.02 + 1e-9  # both toward the pooled loss
    assert all(o.raw == observed[k].mean for k, o in out.items())
    assert {k: o.value for k, o in shrink(observed, min_classes=6).items()} == {
        k: o.mean for k, o in observed.items()
    }  # too few classes to pool: unchanged


def test_shrinkage_of_identical_classes_and_of_a_class_with_no_disagreement() -> None:
    same = shrink({k: Observed(-0.05, 0.2, 100) for k in "abcd"}, min_classes=3)
    assert all(o.value == pytest.approx(-0.05) for o in same.values())
    se2 = standard_errors({"none": Observed(0.0, 0.0, 50), "some": Observed(-0.1, 0.2, 50)})
    assert 0.0 < se2["none"] < se2["some"]  # one pseudo-task at the pooled variance
    out = shrink({"none": Observed(0.0, 0.0, 50), "x": Observed(-0.1, 0.2, 50), "y": Observed(-0.3, 0.2, 50)}, 3)
    assert all(-0.3 <= o.value <= 0.0 for o in out.values())
