"""Helpers for learned-primary tests: a tiny hand-made artifact and a bundle that uses it."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from bundles import approve, model

from routeguard.learned.artifact import ARTIFACT_FORMAT
from routeguard.learned.features import DEFAULT_DIMS, TOKEN_PATTERN, hashed_counts

Raw = dict[str, Any]


def artifact_document(easy: float = 6.0, hard: float = -6.0, intercept: float = 0.0) -> Raw:
    """Prompts with the word "easy" score high (weak), with "hard" low (strong); others sigmoid(intercept)."""
    index: list[int] = []
    coef: list[float] = []
    for word, weight in (("easy", easy), ("hard", hard)):
        (i,) = hashed_counts(word)
        index.append(i)
        coef.append(weight)
    return {
        "format": ARTIFACT_FORMAT,
        "features": {"kind": "hashed-ngrams", "hash": "crc32", "dims": DEFAULT_DIMS, "ngrams": [1, 2],
                     "token_pattern": TOKEN_PATTERN, "lowercase": True, "tf": "sublinear", "norm": "l2"},
        "idf_default": 1.0,
        "intercept": intercept,
        "weights": {"index": index, "idf": [1.0] * len(index), "coef": coef},
        "label": "test",
        "meta": {},
    }


def write_artifact(path: Path, doc: Raw | None = None) -> str:
    data = json.dumps(doc or artifact_document()).encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def learned_bundle(artifact: str = "qa.json", sha256: str = "0" * 64, threshold: float = 0.5) -> Raw:
    """strong (cleared restricted, trusted) and weak (cleared internal, untrusted) as a learned primary."""
    return copy.deepcopy(
        {
            "models": {
                "strong": model("text", clearance="restricted", trusted=True,
                                cost={"input_per_1m": 10.0, "output_per_1m": 30.0}),
                "weak": model("text", clearance="internal", trusted=False,
                              cost={"input_per_1m": 0.6, "output_per_1m": 0.6}),
            },
            "profiles": {"p": {"requires": ["text"], "capabilities": ["text"], "data_class": "internal",
                               "regions": ["eu"]}},
            "approvals": [approve("strong"), approve("weak")],
            "policies": {
                "agent": {
                    "profile": "p",
                    "primary": {"learned": {"strong": "strong", "weak": "weak", "artifact": artifact,
                                            "sha256": sha256, "threshold": threshold}},
                }
            },
        }
    )
