"""Write learned primaries into a complete bundle (CONTRACT §7).

The policy keeps its match and everything else; its ``primary`` becomes ``{learned: {strong, weak, artifact,
sha256, threshold}}`` and fallbacks that are one of the two arms are dropped (the other arm already stands in).
Classes that must stay on the strong arm (their data class) move out of the policy into one policy
``<policy>--strong-only`` for the same agent, pinned to the strong model: resolution sends them there even when a
request forgets its data class, so the score can never route them to the weak arm.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from routeguard.core.model import Bundle

__all__ = ["LearnedChange", "apply_learned"]


@dataclass(frozen=True, slots=True)
class LearnedChange:
    policy: str
    strong: str
    weak: str
    artifact: str  # relative to the proposal file
    sha256: str
    threshold: float
    held: tuple[str, ...]  # classes kept on strong
    classes: tuple[str, ...]  # every class the policy serves in the evaluations


def apply_learned(raw: Mapping[str, Any], bundle: Bundle, changes: Sequence[LearnedChange], label: str) -> (
    dict[str, Any]
):
    out: dict[str, Any] = copy.deepcopy(dict(raw))
    policies: dict[str, Any] = out["policies"]
    for ch in changes:
        pol, raw_p = bundle.policies[ch.policy], policies[ch.policy]
        listed = pol.match.task_types
        if ch.held:
            key = f"{ch.policy}--strong-only"
            n = 2
            while key in policies:
                key, n = f"{ch.policy}--strong-only-{n}", n + 1
            match_q: dict[str, Any] = {"agent": pol.agent, "task_types": sorted(ch.held)}
            raw_match = raw_p.get("match") if isinstance(raw_p.get("match"), Mapping) else {}
            for dim in ("tenants", "tags"):
                if raw_match.get(dim) is not None:
                    match_q[dim] = copy.deepcopy(raw_match[dim])
            rest = {k: copy.deepcopy(v) for k, v in raw_p.items() if k not in ("match", "primary", "description")}
            policies[key] = {
                "description": f"review {label}: classes held on {ch.strong} (data class): {', '.join(ch.held)}",
                "profile": rest.pop("profile"),
                "match": match_q,
                "primary": ch.strong,
                **rest,
            }
            if listed is not None:
                raw_p.setdefault("match", {})["task_types"] = [t for t in raw_p["match"]["task_types"]
                                                               if t not in ch.held]
        raw_p["primary"] = {
            "learned": {
                "strong": ch.strong,
                "weak": ch.weak,
                "artifact": ch.artifact,
                "sha256": ch.sha256,
                "threshold": round(ch.threshold, 6),
            }
        }
        fallbacks = [f for f in raw_p.get("fallbacks") or [] if _fallback_model(f) not in (ch.strong, ch.weak)]
        if fallbacks:
            raw_p["fallbacks"] = fallbacks
        else:
            raw_p.pop("fallbacks", None)
        raw_p["description"] = (
            f"review {label}: learned primary {ch.strong} / {ch.weak} at threshold {ch.threshold:.4f}"
        )
    return out


def _fallback_model(entry: object) -> object:
    return entry.get("model") if isinstance(entry, Mapping) else entry
