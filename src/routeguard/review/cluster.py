"""Task classes for tasks that carry none: TF-IDF of their text, k-means, clusters named by their top terms.

Needs scikit-learn (the ``cluster`` extra). A clustered class is named ``auto-<term>-<term>``; routing it
in production needs the agent to send that name as ``task_type``, which the report says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from routeguard.review.load import Record, RowIssue

__all__ = ["ClusterInfo", "assign_clusters"]


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    name: str
    tasks: int
    top_terms: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "tasks": self.tasks, "top_terms": list(self.top_terms)}


def _k_for(n: int) -> int:
    return max(2, min(20, round(math.sqrt(n / 10))))


def assign_clusters(
    records: Sequence[Record], *, seed: int, k: int | None = None, label: str = "evals"
) -> tuple[list[Record], list[ClusterInfo], list[RowIssue]]:
    """Records with every missing ``task_class`` filled from a cluster of its task's text."""
    texts: dict[str, str] = {}
    for rec in records:
        if rec.task_class is None and rec.text and rec.task_id not in texts:
            texts[rec.task_id] = rec.text
    if not texts:
        return list(records), [], []
    unlabeled = [r for r in records if r.task_class is None]
    if len(texts) < 4:
        issues = [
            RowIssue(label, r.line, "task_class", "no class and too few unlabeled tasks to cluster")
            for r in unlabeled
        ]
        return [r for r in records if r.task_class is not None], [], issues
    try:
        from sklearn.cluster import KMeans
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError:
        issues = [
            RowIssue(label, r.line, "task_class", "no class, and scikit-learn is not installed to cluster it")
            for r in unlabeled
        ]
        return [r for r in records if r.task_class is not None], [], issues
    ids = sorted(texts)
    docs = [texts[i] for i in ids]
    vectorizer = TfidfVectorizer(
        stop_words="english",
        max_features=5000,
        min_df=2 if len(docs) >= 50 else 1,
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
    )
    matrix = vectorizer.fit_transform(docs)
    n_clusters = min(k or _k_for(len(docs)), len(docs))
    model = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    labels = model.fit_predict(matrix)
    terms = vectorizer.get_feature_names_out()
    names: dict[int, str] = {}
    infos: list[ClusterInfo] = []
    for c in range(n_clusters):
        order = model.cluster_centers_[c].argsort()[::-1][:3]
        top = tuple(str(terms[i]) for i in order)
        base = "auto-" + "-".join(re.sub(r"[^a-z0-9]+", "", t.lower()) for t in top[:2])
        name, n = base, 2
        while name in names.values():
            name, n = f"{base}-{n}", n + 1
        names[c] = name
        infos.append(ClusterInfo(name, int((labels == c).sum()), top))
    by_task = {task: names[int(lab)] for task, lab in zip(ids, labels, strict=True)}
    out = [r if r.task_class is not None else replace(r, task_class=by_task.get(r.task_id)) for r in records]
    dropped = [r for r in out if r.task_class is None]
    issues = [RowIssue(label, r.line, "task_class", "no class and no text to cluster by") for r in dropped]
    return [r for r in out if r.task_class is not None], infos, issues
