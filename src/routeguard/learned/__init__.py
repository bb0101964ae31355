"""Per-prompt scoring for a learned primary (CONTRACT §7), at the edge: the core only receives the score.

The artifact is plain data (JSON: hashed word n-gram features, IDF weights and a logistic-regression
coefficient vector); it is verified by SHA-256 before use and scored in pure Python (no numpy, no pickle),
so importing this package stays light. Training lives in ``routeguard.review.learned_train``.
"""

from routeguard.learned.artifact import ARTIFACT_FORMAT, ArtifactError, Scorer, file_sha256, load_scorer
from routeguard.learned.features import hashed_counts

__all__ = ["ARTIFACT_FORMAT", "ArtifactError", "Scorer", "file_sha256", "hashed_counts", "load_scorer"]
