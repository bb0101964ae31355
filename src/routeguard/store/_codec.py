"""Canonical JSON and RFC 3339 timestamps shared by the store modules (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["canonical_json", "normalize_json", "parse_rfc3339", "rfc3339", "utc", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """Fixed-width RFC 3339 UTC (`2026-01-02T03:04:05.000006Z`): sortable as text, stable for hashing."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _default(value: object) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, no NaN; datetimes as RFC 3339, dates as ISO dates."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    )


def normalize_json(value: Any) -> Any:
    """The value as it reads back from storage (plain JSON types only)."""
    return json.loads(canonical_json(value))


INT4_MAX = 2**31 - 1  # the largest key an INTEGER column holds (PostgreSQL raises past it)


def fits_int4(value: int) -> bool:
    """Whether ``value`` can be a key of an INTEGER column: larger ones cannot exist, so are never queried."""
    return -INT4_MAX - 1 <= value <= INT4_MAX
