"""Training a learned primary's scorer (CONTRACT §7): TF-IDF over hashed n-grams + logistic regression.

The features are computed by :func:`routeguard.learned.features.hashed_counts` — the very function the edge
uses — and the vector transform here mirrors :class:`routeguard.learned.artifact.Scorer` exactly (an index
outside the kept vocabulary weighs in the norm with ``idf_default`` and has no coefficient), so a score
computed in training equals the score served. scikit-learn (the ``review`` extra) fits the linear model only;
the artifact is plain JSON. The label is "the weak arm answers at least as well as the strong one".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routeguard.learned.artifact import ARTIFACT_FORMAT
from routeguard.learned.features import DEFAULT_DIMS, TOKEN_PATTERN, hashed_counts

__all__ = [
    "Feats", "Vocabulary", "cross_fit", "featurize", "fit_document", "fit_vocabulary", "score_with_cost", "transform",
]


@dataclass(frozen=True, slots=True)
class Feats:
    """Hashed feature counts of many documents, as flat arrays (row, feature index, tf = 1 + ln count)."""

    rows: np.ndarray
    index: np.ndarray
    tf: np.ndarray
    n: int

    def __len__(self) -> int:
        return self.n

    def subset(self, docs: np.ndarray) -> Feats:
        """The documents ``docs`` (in that order), renumbered 0..len(docs)-1."""
        renumber = np.full(self.n, -1, dtype=np.int64)
        renumber[docs] = np.arange(len(docs))
        keep = renumber[self.rows] >= 0
        return Feats(renumber[self.rows[keep]], self.index[keep], self.tf[keep], len(docs))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The kept feature indices (document frequency >= min_df, sorted) with their IDF weights."""

    kept: np.ndarray  # sorted feature indices
    idf: np.ndarray  # per kept feature
    idf_default: float
    n_docs: int


def featurize(texts: Sequence[str], dims: int = DEFAULT_DIMS) -> Feats:
    rows: list[int] = []
    index: list[int] = []
    counts: list[int] = []
    for r, t in enumerate(texts):
        f = hashed_counts(t, dims)
        rows.extend([r] * len(f))
        index.extend(f.keys())
        counts.extend(f.values())
    tf = 1.0 + np.log(np.array(counts, dtype=np.float64)) if counts else np.zeros(0)
    return Feats(np.array(rows, dtype=np.int64), np.array(index, dtype=np.int64), tf, len(texts))


def fit_vocabulary(feats: Feats, min_df: int = 2) -> Vocabulary:
    uniq, df = np.unique(feats.index, return_counts=True)  # one entry per (doc, feature): df = count
    n = feats.n
    kept = uniq[df >= min_df]
    idf = np.log((1 + n) / (1 + df[df >= min_df])) + 1
    return Vocabulary(kept, idf.astype(np.float64), math.log(1 + n) + 1, n)


def transform(feats: Feats, vocab: Vocabulary) -> Any:
    """A CSR matrix of L2-normalised sublinear TF-IDF rows, as the scorer computes them."""
    from scipy.sparse import csr_matrix

    pos = np.searchsorted(vocab.kept, feats.index)
    pos = np.minimum(pos, max(len(vocab.kept) - 1, 0))
    hit = (vocab.kept[pos] == feats.index) if len(vocab.kept) else np.zeros(len(pos), dtype=bool)
    weight = np.where(hit, vocab.idf[pos] if len(vocab.kept) else 0.0, vocab.idf_default)
    v = feats.tf * weight
    norm = np.sqrt(np.bincount(feats.rows, weights=v * v, minlength=feats.n))
    norm[norm == 0] = 1.0
    data = v[hit] / norm[feats.rows[hit]]
    return csr_matrix((data, (feats.rows[hit], pos[hit])), shape=(feats.n, len(vocab.kept)))


@dataclass(frozen=True, slots=True)
class _Model:
    vocab: Vocabulary
    classes: tuple[str, ...]  # one-hot columns after the text features (value 1, outside the L2 norm)
    lr: Any  # the fitted LogisticRegression, or None when the training had one label only
    prior: float


def _design(feats: Feats, classes: np.ndarray, m: _Model | tuple[Vocabulary, tuple[str, ...]]) -> Any:
    from scipy.sparse import csr_matrix, hstack

    vocab, names = (m.vocab, m.classes) if isinstance(m, _Model) else m
    column = {c: i for i, c in enumerate(names)}
    hits = [(r, column[c]) for r, c in enumerate(classes.tolist()) if c in column]
    onehot = csr_matrix(
        (np.ones(len(hits)), ([h[0] for h in hits], [h[1] for h in hits])), shape=(feats.n, len(names))
    )
    return hstack([transform(feats, vocab), onehot]).tocsr()


def _fit(feats: Feats, classes: np.ndarray, y: np.ndarray, c: float, min_df: int) -> _Model:
    from sklearn.linear_model import LogisticRegression

    vocab = fit_vocabulary(feats, min_df)
    names = tuple(sorted(set(classes.tolist())))
    prior = min(max(float(y.mean()) if len(y) else 0.5, 1e-6), 1 - 1e-6)
    if len(set(y.tolist())) < 2:  # one label only: a constant model (intercept), no coefficients
        return _Model(vocab, names, None, prior)
    lr = LogisticRegression(C=c, solver="liblinear", max_iter=2000)
    lr.fit(_design(feats, classes, (vocab, names)), y)
    return _Model(vocab, names, lr, prior)


def _predict(m: _Model, feats: Feats, classes: np.ndarray) -> np.ndarray:
    if m.lr is None:
        return np.full(feats.n, m.prior)
    return np.asarray(m.lr.predict_proba(_design(feats, classes, m))[:, 1], dtype=np.float64)


def cross_fit(
    feats: Feats, classes: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0, c: float = 3.0,
    min_df: int = 2,
) -> np.ndarray:
    """Out-of-fold probabilities: each task scored by a model that never saw it (for calibration)."""
    n = feats.n
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=np.float64)
    for k in range(folds):
        test = order[k::folds]
        mask = np.ones(n, dtype=bool)
        mask[test] = False
        train = np.flatnonzero(mask)
        model = _fit(feats.subset(train), classes[train], y[train], c, min_df)
        out[test] = _predict(model, feats.subset(test), classes[test])
    return out


def fit_document(
    feats: Feats,
    classes: np.ndarray,
    y: np.ndarray,
    *,
    c: float = 3.0,
    min_df: int = 2,
    cost: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    dims: int = DEFAULT_DIMS,
) -> dict[str, Any]:
    """Fit on every task and return the artifact document (plain JSON data)."""
    m = _fit(feats, classes, y, c, min_df)
    n_text = len(m.vocab.kept)
    if m.lr is None:
        coef = np.zeros(n_text + len(m.classes))
        intercept = math.log(m.prior / (1 - m.prior))
    else:
        coef, intercept = m.lr.coef_[0], float(m.lr.intercept_[0])
    keep = np.flatnonzero(coef[:n_text] != 0)
    index = m.vocab.kept.tolist()
    doc: dict[str, Any] = {
        "format": ARTIFACT_FORMAT,
        "features": {
            "kind": "hashed-ngrams", "hash": "crc32", "dims": dims, "ngrams": [1, 2],
            "token_pattern": TOKEN_PATTERN, "lowercase": True, "tf": "sublinear", "norm": "l2",
        },
        "idf_default": round(m.vocab.idf_default, 6),
        "intercept": round(intercept, 6),
        "weights": {
            "index": [index[j] for j in keep],
            "idf": [round(float(m.vocab.idf[j]), 5) for j in keep],
            "coef": [round(float(coef[j]), 6) for j in keep],
        },
        "class_coef": {name: round(float(coef[n_text + i]), 6) for i, name in enumerate(m.classes)},
        "label": "p = P(weak arm's quality >= strong arm's quality)",
        "meta": {"n_train": feats.n, "c": c, "min_df": min_df, **(meta or {})},
    }
    if cost is not None:
        doc["cost"] = dict(cost)
    return doc


def score_with_cost(p: np.ndarray, saving_usd: np.ndarray, scale_usd: float | None) -> np.ndarray:
    """The served score for probabilities ``p`` and per-request savings (see the artifact's module doc)."""
    if scale_usd is None:
        return p
    loss = scale_usd * (1.0 - p)
    total = saving_usd + loss
    return np.where(total > 0, saving_usd / np.where(total > 0, total, 1.0), 0.0)
