"""The feature map shared by training and scoring: lower-cased word uni- and bigrams hashed with CRC-32.

Hand-written (not scikit-learn's HashingVectorizer) so that the edge can compute exactly the features the
training saw with nothing but the standard library, and so the artifact names the whole recipe.
"""

from __future__ import annotations

import re
import zlib

__all__ = ["DEFAULT_DIMS", "TOKEN_PATTERN", "hashed_counts"]

DEFAULT_DIMS = 1 << 18
TOKEN_PATTERN = r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]"
_TOKEN = re.compile(TOKEN_PATTERN)
_MAX_CHARS = 20_000  # a prompt is scored on its first 20k characters (bounded cost per request)


def hashed_counts(text: str, dims: int = DEFAULT_DIMS) -> dict[int, int]:
    """Feature index -> count for ``text`` (uni- and bigrams of its tokens, hashed into ``dims`` buckets)."""
    tokens = _TOKEN.findall(text[:_MAX_CHARS].lower())
    mask = dims - 1
    crc = zlib.crc32
    counts: dict[int, int] = {}
    get = counts.get
    prev = ""
    for tok in tokens:
        raw = tok.encode()
        i = crc(raw) & mask
        counts[i] = get(i, 0) + 1
        if prev:
            j = crc(raw, crc(prev.encode() + b" ")) & mask  # crc32 of "prev tok", without joining strings
            counts[j] = get(j, 0) + 1
        prev = tok
    return counts
