"""Tasks without a class are clustered by their text and named by top terms."""

from __future__ import annotations

import pytest

from routeguard.review.cluster import assign_clusters
from routeguard.review.load import Record

pytest.importorskip("sklearn")

BILLING = [
    "refund my invoice payment",
    "invoice charged twice payment",
    "payment failed invoice refund",
    "billing invoice refund request",
    "refund the duplicate payment invoice",
    "invoice payment overdue",
]
CODING = [
    "python function raises exception",
    "exception in python loop function",
    "python import error function",
    "function returns none python exception",
    "debug python exception stack",
    "python function type error",
]


def _records() -> list[Record]:
    out = []
    for i, text in enumerate(BILLING + CODING):
        for model in ("a", "b"):
            out.append(
                Record(task_id=f"t{i}", task_class=None, model=model, quality=1.0, text=text, line=i + 2)
            )
    out.append(Record(task_id="known", task_class="faq", model="a", quality=1.0))
    return out


def test_unlabeled_tasks_are_clustered_and_named_by_top_terms() -> None:
    records, clusters, issues = assign_clusters(_records(), seed=0, k=2)
    assert not issues and len(clusters) == 2
    names = {r.task_id: r.task_class for r in records}
    assert names["known"] == "faq"
    billing = {names[f"t{i}"] for i in range(6)}
    coding = {names[f"t{i}"] for i in range(6, 12)}
    assert len(billing) == 1 and len(coding) == 1 and billing != coding
    assert all(c.name.startswith("auto-") for c in clusters)
    by_name = {c.name: c for c in clusters}
    assert {"invoice", "payment", "refund"} & set(by_name[billing.pop()].top_terms)
    assert {"python", "function", "exception"} & set(by_name[coding.pop()].top_terms)


def test_deterministic_for_a_seed() -> None:
    a = assign_clusters(_records(), seed=3)
    b = assign_clusters(_records(), seed=3)
    assert [r.task_class for r in a[0]] == [r.task_class for r in b[0]]
