"""Other spellings of the route request (CONTRACT §3): the PowerX Planner's task context and camelCase.

PowerX writes `{tenant, taskType, sla, budget, modality}`; `sla` is milliseconds or a duration string, `modality`
one string or a list. Every other field may be written in camelCase too (`dataClass`, `businessLine`, `traceId`,
`estimatedTokens`, `slaMs`, `budgetUsd`). `metadata.profile` is another name for `metadata.policy`. Two spellings
of one field with different values are refused: a request must not mean two things.

Pure and hand-written: a table of names and a few value conversions, applied only when a request uses a name that
is not the canonical one (the canonical path does no extra work).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from routeguard.core.durations import parse_duration

__all__ = ["AliasError", "normalize_request"]

class AliasError(ValueError):
    """Two spellings of one field disagree, or an alias holds a value of the wrong shape."""


def _sla_ms(value: object) -> object:
    """`sla`: a number is milliseconds; a string is a duration (`"2s"`, `"1500ms"`; bare digits: ms)."""
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return float(text)
        try:
            return parse_duration(text) * 1000.0
        except ValueError as exc:
            raise AliasError(f"sla: {exc}") from None
    return value


def _modalities(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _same(value: object) -> object:
    return value


# alias -> (canonical name, conversion)
_ALIASES: dict[str, tuple[str, Callable[[object], object]]] = {
    "taskType": ("task_type", _same),
    "sla": ("sla_ms", _sla_ms),
    "slaMs": ("sla_ms", _same),
    "budget": ("budget_usd", _same),
    "budgetUsd": ("budget_usd", _same),
    "modality": ("modalities", _modalities),
    "dataClass": ("data_class", _same),
    "businessLine": ("business_line", _same),
    "traceId": ("trace_id", _same),
    "estimatedTokens": ("estimated_tokens", _same),
}


def _agree(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool | type(None)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    return a == b


def normalize_request(data: Mapping[str, Any]) -> dict[str, Any]:
    """The request with every alias replaced by its canonical name; raises AliasError on a disagreement."""
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in data.items():
        name, convert = _ALIASES.get(key, (key, _same))
        converted = convert(value) if key != name else value
        if name in out and not _agree(out[name], converted):
            raise AliasError(f"{given_as[name]} and {key} disagree ({out[name]!r} vs {value!r}); give one of them")
        out.setdefault(name, converted)
        given_as.setdefault(name, key)
    metadata = out.get("metadata")
    if isinstance(metadata, Mapping) and "profile" in metadata:
        meta = dict(metadata)
        profile = meta.pop("profile")
        if "policy" in meta and not _agree(meta["policy"], profile):
            raise AliasError(
                f"metadata.policy and metadata.profile disagree ({meta['policy']!r} vs {profile!r}); give one of them"
            )
        meta.setdefault("policy", profile)
        out["metadata"] = meta
    return out
