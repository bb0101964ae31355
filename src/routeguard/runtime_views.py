"""Read-only views the Router builds on its tracker: the route state's probe-blind view, the health snapshot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from routeguard.core.deployment import deployment_key, split_key
from routeguard.core.health import HealthTracker, ModelStatus
from routeguard.core.health_view import HealthState, ModelHealth
from routeguard.core.model import HealthConfig

__all__ = ["WithoutProbes", "health_snapshot"]


def health_snapshot(states: Mapping[str, ModelStatus], models: set[str],
                    deployments: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """``GET /v1/health``: every model with its figures, its signals (the effective one and each source's), and
    its state under each policy (the breaker: state, detail, cooldown left, probe budget left, ejections).
    A model with deployments also lists each deployment's own figures and breaker per policy (``deployments``)."""
    out: dict[str, Any] = {}
    for name in sorted(models | {m for m in states if split_key(m)[1] is None}):
        status = states.get(name)
        out[name] = {
            "figures": dataclasses.asdict(status.figures) if status is not None and status.figures else None,
            "signal": dataclasses.asdict(status.signal) if status is not None and status.signal else None,
            "signals": {src: dataclasses.asdict(sig) for src, sig in (status.signals or {}).items()}
            if status is not None else {},
            "policies": _policies(status),
        }
        names = (deployments or {}).get(name)
        if names:
            out[name]["deployments"] = {
                d: {"figures": dataclasses.asdict(found.figures) if found is not None and found.figures else None,
                    "policies": _policies(found)}
                for d in names
                for found in (states.get(deployment_key(name, d)),)
            }
    return out


def _policies(status: ModelStatus | None) -> dict[str, Any]:
    if status is None:
        return {}
    breakers = status.breakers or {}
    return {
        p: {
            "state": h.state.value,
            "detail": h.detail,
            "cooldown_left_s": h.cooldown_left_s,
            "probes_left": h.probes_left,
            "ejections": breakers[p].ejections if p in breakers else 0,
            "reason": "quality" if h.by_quality else None,
        }
        for p, h in status.policies.items()
    }


class WithoutProbes:
    """The tracker as route state sees it: a probing model serves probes, not the policy's traffic."""

    __slots__ = ("_tracker",)

    def __init__(self, tracker: HealthTracker) -> None:
        self._tracker = tracker

    def peek_state(self, policy: str, model: str) -> HealthState:
        return self._tracker.peek_state(policy, model)

    def total_judged(self, model: str) -> int:
        return self._tracker.total_judged(model)

    def model_health(self, policy: str, config: HealthConfig, model: str, now: float) -> ModelHealth:
        health = self._tracker.model_health(policy, config, model, now)
        if health.probe_admitted:
            return dataclasses.replace(health, probe_admitted=False)
        return health
