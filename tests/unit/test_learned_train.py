"""Training mirrors serving: the artifact a review writes scores exactly as the fitted model predicted."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from routeguard.learned import load_scorer
from routeguard.review.learned_calibrate import CurvePoint, Outcomes, bootstrap_weights, choose, curve
from routeguard.review.learned_train import _fit, _predict, cross_fit, featurize, fit_document, score_with_cost

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]


def corpus(n: int, seed: int = 3) -> tuple[list[str], list[str], np.ndarray]:
    rng = random.Random(seed)
    texts, classes, labels = [], [], []
    for _ in range(n):
        easy = rng.random() < 0.5
        words = rng.choices(WORDS, k=12) + (["simple"] if easy else ["tricky", "proof"])
        texts.append(" ".join(words))
        classes.append(rng.choice(["a", "b"]))
        labels.append(int(easy if rng.random() < 0.9 else not easy))
    return texts, classes, np.array(labels)


def test_the_written_artifact_scores_what_the_model_predicted(tmp_path: Path) -> None:
    texts, classes, y = corpus(300)
    feats = featurize(texts)
    doc = fit_document(feats, np.array(classes), y, c=3.0, min_df=2)
    data = json.dumps(doc).encode()
    (tmp_path / "a.json").write_bytes(data)
    scorer = load_scorer(tmp_path / "a.json", hashlib.sha256(data).hexdigest())
    model = _fit(feats, np.array(classes), y, 3.0, 2)
    expected = _predict(model, featurize(texts[:40]), np.array(classes[:40]))
    served = [scorer.score(t, c) for t, c in zip(texts[:40], classes[:40], strict=True)]
    assert served == pytest.approx(expected.tolist(), abs=1e-4)
    assert scorer.score("simple alpha") > 0.7 > 0.3 > scorer.score("tricky proof alpha")


def test_out_of_fold_scores_come_from_models_that_never_saw_the_task() -> None:
    texts, classes, y = corpus(200)
    oof = cross_fit(featurize(texts), np.array(classes), y, folds=4, seed=0)
    assert oof.shape == (200,) and ((oof > 0) & (oof < 1)).all()
    assert float(np.corrcoef(oof, y)[0, 1]) > 0.5  # still informative on unseen tasks


def test_the_cost_aware_score_prefers_big_savings_at_equal_belief() -> None:
    p = np.array([0.8, 0.8, 0.5])
    s = score_with_cost(p, np.array([0.01, 0.001, 0.01]), scale_usd=0.005)
    assert s[0] > s[1] and s[0] > s[2]
    assert score_with_cost(p, np.zeros(3), None).tolist() == p.tolist()


def test_the_chosen_threshold_meets_the_lower_bound_and_saves_most() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    qs = (rng.random(n) < 0.8).astype(float)
    qw = np.where(rng.random(n) < 0.5, qs, (rng.random(n) < 0.6).astype(float))
    out = Outcomes(qs, qw, np.full(n, 1.0), np.full(n, 0.1))
    scores = np.where(qw >= qs, rng.uniform(0.4, 1.0, n), rng.uniform(0.0, 0.7, n))
    eligible = np.ones(n, dtype=bool)
    eligible[:100] = False  # a held class: never weak, whatever its score
    points = curve(out, scores, eligible, bootstrap_weights(n, 200, rng))
    best = choose(points, 0.05)
    assert isinstance(best, CurvePoint)
    assert best.quality_kept.low >= 0.95
    assert all(p.cost_saving.value <= best.cost_saving.value for p in points if p.quality_kept.low >= 0.95)
    assert all(p.weak_share <= 0.95 for p in points)  # the held tasks never count as weak
    assert choose(points, 0.0001) is None or choose(points, 0.0001).quality_kept.low >= 0.9999


def test_a_class_s_own_limit_caps_its_loss_and_leaves_the_others_to_the_default() -> None:
    from routeguard.review.learned_calibrate import ClassCap

    rng = np.random.default_rng(1)
    n = 1000
    classes = np.array(["math"] * 500 + ["trivia"] * 500)
    qs = np.ones(n)
    qw = (rng.random(n) < 0.7).astype(float)  # the weak arm loses 30 % of every class's quality
    out = Outcomes(qs, qw, np.full(n, 1.0), np.full(n, 0.1))
    ratio = rng.random(n)
    weak = np.ones(n, dtype=bool)
    scores = np.ones(n)
    w = bootstrap_weights(n, 50, rng)

    def class_loss(point_caps: ClassCap, klass: str) -> float:
        from routeguard.review.learned_calibrate import _cap

        moved, _ = _cap(out, weak, point_caps)
        mask = classes == klass
        return float((qs - np.where(moved, qw, qs))[mask].sum() / qs[mask].sum())

    default = ClassCap(classes, ratio, 0.15)
    own = ClassCap(classes, ratio, 0.15, {"math": 0.05})
    assert 0.10 < class_loss(default, "math") <= 0.15
    assert class_loss(own, "math") <= 0.05  # the owner's stricter limit for math
    assert class_loss(own, "trivia") == class_loss(default, "trivia")  # the other class keeps the default
    assert {"math", "trivia"} <= set(curve(out, scores, weak, w, own)[0].caps)


def test_settings_give_each_class_its_own_limit_or_the_default() -> None:
    from routeguard.review.settings import ReviewSettings

    s = ReviewSettings(tolerance=0.05, class_limits=(("grade_school_math", 0.05),))
    assert s.limit_for("grade_school_math") == 0.05
    assert s.limit_for("marketing") == pytest.approx(0.15)
    assert s.to_dict()["class_limits"] == {"grade_school_math": 0.05}
    with pytest.raises(ValueError, match="class limit of x"):
        ReviewSettings(class_limits=(("x", 1.5),))
