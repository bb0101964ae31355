"""Statistics of the review loop against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routeguard.review.stats import (
    bootstrap_class_means,
    is_binary,
    mcnemar_exact,
    mean_interval,
    paired_difference,
    wilson_interval,
)


def test_wilson_matches_reference_values() -> None:
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_mcnemar_exact_is_a_two_sided_binomial_test() -> None:
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_exact(200, 300) < 1e-5  # large counts stay finite


def test_mean_interval_picks_wilson_for_rates_and_bootstrap_for_scores() -> None:
    rng = np.random.default_rng(0)
    assert mean_interval(np.array([1.0, 0.0, 1.0, 1.0]), rng, 200).method == "wilson"
    scores = mean_interval(np.array([0.2, 0.4, 0.9, 0.7, 0.5]), rng, 500)
    assert scores.method == "bootstrap" and scores.low < scores.value < scores.high
    assert is_binary(np.array([0.0, 1.0, np.nan])) and not is_binary(np.array([0.5]))


def test_paired_difference_counts_discordant_pairs() -> None:
    base = np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 1], dtype=float)
    prop = np.array([1, 0, 0, 1, 0, 1, 1, 1, 1, 1], dtype=float)
    p = paired_difference(base, prop, np.random.default_rng(1), 300)
    assert p.n == 10 and p.discordant == (2, 1)
    assert p.difference.value == pytest.approx(-0.1)
    assert p.mcnemar_p == pytest.approx(1.0)


def test_bootstrap_class_means_is_paired_and_seeded() -> None:
    m = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, np.nan], [0.0, 1.0]])
    a = bootstrap_class_means(m, np.random.default_rng(3), 100)
    b = bootstrap_class_means(m, np.random.default_rng(3), 100)
    assert a.shape == (100, 2) and np.array_equal(a, b, equal_nan=True)
