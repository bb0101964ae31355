"""The learned-primary artifact: a plain JSON document, verified by SHA-256, scored in pure Python.

Format (``routeguard.learned/v1``)::

    {"format": "routeguard.learned/v1",
     "features": {"kind": "hashed-ngrams", "hash": "crc32", "dims": 262144, "ngrams": [1, 2],
                  "token_pattern": "...", "lowercase": true, "tf": "sublinear", "norm": "l2"},
     "idf_default": 8.1, "intercept": -0.3,
     "weights": {"index": [...], "idf": [...], "coef": [...]},
     "class_coef": {"marketing": 0.8, "grade_school_math": -0.4},                         # optional
     "cost": {"input_saving_per_token": 9.4e-06, "output_saving_per_token": 2.9e-05, "scale_usd": 0.001,
              "chars_per_token": 4, "output_tokens": {"*": 5, "grade_school_math": 150}},   # optional
     "label": "...", "meta": {...}}

p(prompt) = sigmoid(intercept + class_coef[task class] + Σ coef[f] · x[f]) where x is the L2-normalised
(1 + ln count) · idf vector of the prompt's hashed n-grams (an index the training never saw takes ``idf_default``
and no coefficient): the belief that the weak arm answers as well as the strong one. Without ``cost`` the score is p.
With it, the score weighs the expected quality loss against the money the weak arm saves on this request:
score = saving / (saving + scale_usd · (1 − p)), saving = input tokens · input saving + output tokens · output
saving (tokens from the request's estimate, else prompt characters / chars_per_token and the class's typical
output), times the class's ``class_weight`` when it has one (a class held to its per-class quality limit).
Routing weak when the score clears a threshold is then routing the requests whose expected loss per dollar saved
is lowest first — what maximises the saving at a given quality.
No pickle and no code: a tampered or foreign file is refused, never executed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeguard.learned.features import TOKEN_PATTERN, hashed_counts

__all__ = [
    "ARTIFACT_FORMAT", "ArtifactError", "CostModel", "Scorer", "file_sha256", "load_scorer", "scorer_from_document",
]

ARTIFACT_FORMAT = "routeguard.learned/v1"
_MAX_BYTES = 64 << 20


class ArtifactError(ValueError):
    """An artifact that cannot be used: missing, a different hash than the bundle states, or malformed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Scorer:
    """Scores a prompt in [0, 1]: the model's belief that the weak arm does as well as the strong one."""

    dims: int
    weights: Mapping[int, tuple[float, float]]  # feature index -> (idf, coef)
    idf_default: float
    intercept: float
    sha256: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    cost: CostModel | None = None
    class_coef: Mapping[str, float] = field(default_factory=dict)  # a per-class term (the class's prior)

    def score(
        self,
        text: str,
        task_class: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> float:
        """The routing score of one request in [0, 1]: weak when it clears the policy's threshold."""
        p = self.probability(text, task_class)
        if self.cost is None:
            return p
        return self.cost.score(p, len(text), task_class, input_tokens, output_tokens)

    def probability(self, text: str, task_class: str | None = None) -> float:
        """p: the belief that the weak arm does as well as the strong one on this prompt."""
        counts = hashed_counts(text, self.dims)
        norm2 = dot = 0.0
        get = self.weights.get
        default = self.idf_default
        log = math.log
        for index, count in counts.items():
            entry = get(index)
            tf = 1.0 + log(count) if count > 1 else 1.0
            if entry is None:
                v = tf * default
            else:
                v = tf * entry[0]
                dot += v * entry[1]
            norm2 += v * v
        z = self.intercept + (dot / math.sqrt(norm2) if norm2 > 0 else 0.0)
        if task_class is not None:
            z += self.class_coef.get(task_class, 0.0)
        if z < -60:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True, slots=True)
class CostModel:
    """The money side of the score: what routing one request to the weak arm saves (see the module doc)."""

    input_saving_per_token: float
    output_saving_per_token: float
    scale_usd: float
    chars_per_token: float
    output_tokens: Mapping[str, float]
    class_weight: Mapping[str, float] = field(default_factory=dict)  # per-class damping of the saving (<= 1)

    def saving(self, chars: int, task_class: str | None, input_tokens: int | None, output_tokens: int | None) -> float:
        tin = float(input_tokens) if input_tokens else max(1.0, chars / self.chars_per_token)
        if output_tokens:
            tout = float(output_tokens)
        else:
            tout = self.output_tokens.get(task_class or "*", self.output_tokens.get("*", 0.0))
        return max(0.0, tin * self.input_saving_per_token + tout * self.output_saving_per_token)

    def score(
        self, p: float, chars: int, task_class: str | None, input_tokens: int | None, output_tokens: int | None
    ) -> float:
        saving = self.saving(chars, task_class, input_tokens, output_tokens)
        if task_class is not None and task_class in self.class_weight:
            saving *= self.class_weight[task_class]
        loss = self.scale_usd * (1.0 - p)
        return saving / (saving + loss) if saving + loss > 0 else 0.0


def _cost_model(value: object) -> CostModel | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ArtifactError("artifact_invalid", "cost: expected a mapping")
    nums = [value.get(k) for k in ("input_saving_per_token", "output_saving_per_token", "scale_usd")]
    chars = value.get("chars_per_token", 4)
    outs = value.get("output_tokens", {})
    if not all(_finite(n) for n in [*nums, chars]) or not _finite(value.get("scale_usd")) or float(chars) <= 0:
        raise ArtifactError("artifact_invalid", "cost: savings, scale_usd and chars_per_token must be numbers")
    if not isinstance(outs, Mapping) or not all(isinstance(k, str) and _finite(v) for k, v in outs.items()):
        raise ArtifactError("artifact_invalid", "cost.output_tokens: expected {task class: tokens}")
    weights = value.get("class_weight", {})
    if not isinstance(weights, Mapping) or not all(
        isinstance(k, str) and _finite(v) and v >= 0 for k, v in weights.items()
    ):
        raise ArtifactError("artifact_invalid", "cost.class_weight: expected {task class: weight >= 0}")
    return CostModel(
        input_saving_per_token=float(nums[0]),  # type: ignore[arg-type]
        output_saving_per_token=float(nums[1]),  # type: ignore[arg-type]
        scale_usd=float(nums[2]),  # type: ignore[arg-type]
        chars_per_token=float(chars),
        output_tokens={k: float(v) for k, v in outs.items()},
        class_weight={k: float(v) for k, v in weights.items()},
    )


def scorer_from_document(doc: object, sha256: str = "") -> Scorer:
    """A scorer from an artifact's parsed JSON; ArtifactError (``artifact_invalid``) naming what is wrong."""
    if not isinstance(doc, Mapping) or doc.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError("artifact_invalid", f"not a {ARTIFACT_FORMAT} artifact")
    feats = doc.get("features")
    if not isinstance(feats, Mapping) or feats.get("hash") != "crc32" or feats.get("token_pattern") != TOKEN_PATTERN:
        raise ArtifactError("artifact_invalid", "features: unsupported feature recipe")
    dims = feats.get("dims")
    if not isinstance(dims, int) or dims <= 0 or dims & (dims - 1):
        raise ArtifactError("artifact_invalid", "features.dims: expected a power of two")
    weights = doc.get("weights")
    if not isinstance(weights, Mapping):
        raise ArtifactError("artifact_invalid", "weights: expected {index, idf, coef}")
    index, idf, coef = weights.get("index"), weights.get("idf"), weights.get("coef")
    if not (isinstance(index, list) and isinstance(idf, list) and isinstance(coef, list)) or not (
        len(index) == len(idf) == len(coef)
    ):
        raise ArtifactError("artifact_invalid", "weights: index, idf and coef must be lists of one length")
    table: dict[int, tuple[float, float]] = {}
    for i, w_idf, w_coef in zip(index, idf, coef, strict=True):
        if not isinstance(i, int) or not 0 <= i < dims or not _finite(w_idf) or not _finite(w_coef):
            raise ArtifactError("artifact_invalid", f"weights: bad entry for feature {i!r}")
        table[i] = (float(w_idf), float(w_coef))
    idf_default, intercept = doc.get("idf_default"), doc.get("intercept")
    if not _finite(idf_default) or not _finite(intercept):
        raise ArtifactError("artifact_invalid", "idf_default and intercept must be finite numbers")
    meta = doc.get("meta")
    class_coef = doc.get("class_coef", {})
    if not isinstance(class_coef, Mapping) or not all(isinstance(k, str) and _finite(v) for k, v in class_coef.items()):
        raise ArtifactError("artifact_invalid", "class_coef: expected {task class: number}")
    return Scorer(
        dims=dims,
        weights=table,
        idf_default=float(idf_default),  # type: ignore[arg-type]
        intercept=float(intercept),  # type: ignore[arg-type]
        sha256=sha256,
        meta=dict(meta) if isinstance(meta, Mapping) else {},
        cost=_cost_model(doc.get("cost")),
        class_coef={k: float(v) for k, v in class_coef.items()},
    )


def load_scorer(path: str | Path, sha256: str) -> Scorer:
    """Read ``path``, refuse it unless its SHA-256 is ``sha256``, then parse it (never executes anything)."""
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_BYTES:
            raise ArtifactError("artifact_invalid", f"{p} is larger than {_MAX_BYTES >> 20} MiB")
        data = p.read_bytes()
    except OSError as exc:
        raise ArtifactError("artifact_mismatch", f"cannot read artifact {p}: {exc.strerror}") from exc
    actual = hashlib.sha256(data).hexdigest()
    expected = sha256.lower().removeprefix("sha256:")
    if actual != expected:
        raise ArtifactError("artifact_mismatch", f"artifact {p} has sha256 {actual}, the bundle states {expected}")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError("artifact_invalid", f"artifact {p} is not JSON: {exc}") from exc
    return scorer_from_document(doc, actual)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
