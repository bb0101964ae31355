"""The smallest safe change (issue 15 §4): among proposals within the tolerance, fewer moved classes; the
savings frontier is reported so an owner can pick another point."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_review_synthetic import NOW, bundle, case, evals_rows

from routeguard.review.run import run_review
from routeguard.review.settings import ReviewSettings

# one big over-served class and two small ones: the big move alone gives ~96 % of the saving
CLASSES = {
    "faq": (1200, {"small": 0.95, "large": 0.95}),
    "summaries": (30, {"small": 0.95, "large": 0.95}),
    "rare": (30, {"small": 0.95, "large": 0.95}),
}


def _review(tmp_path: Path, share: float) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg, evals = case(tmp_path, bundle(), evals_rows(CLASSES, seed=3))
    settings = ReviewSettings(tolerance=0.05, resamples=200, min_class_n=5, min_saving_share=share)
    return run_review(cfg, evals, tmp_path / "out", settings=settings, now=NOW, charts=False).report


def test_fewer_moves_when_they_give_nearly_all_the_saving(tmp_path: Path) -> None:
    full = _review(tmp_path / "full", 1.0)
    small = _review(tmp_path / "small", 0.95)
    moved_full = {c["task_class"] for c in full["classes"] if c["proposed_model"]}
    moved_small = {c["task_class"] for c in small["classes"] if c["proposed_model"]}
    assert len(moved_full) >= 2, "the synthetic data should move several classes"
    assert moved_small == {"faq"} and set(small["savings_frontier"]["withdrawn"]) == moved_full - {"faq"}
    steps = small["savings_frontier"]["steps"]
    assert [s["moves"] for s in steps] == list(range(len(moved_full) + 1)) and steps[1]["added"] == "faq"
    savings = [s["cost_saving"] for s in steps]
    assert savings == sorted(savings) and savings[1] >= 0.95 * savings[-1]
    rare = next(c for c in small["classes"] if c["task_class"] in moved_full - {"faq"})
    assert any("smallest safe change" in r for r in rare["reasons"])
    assert small["summary"]["heldout_final"]["cost_saving"]["value"] == pytest.approx(savings[1], abs=0.05)
    assert "Savings frontier" in (tmp_path / "small" / "out" / "report.md").read_text()
