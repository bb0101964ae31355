"""Recent health history for the console's sparklines, kept in memory.

Each time the console reads health (at most once a second, whoever is watching) it samples every model's
error rate, p95 latency and worst state under any policy; the last `KEEP` samples per model are kept. The
sparkline is an inline SVG polyline computed here (no chart library, no script): hand-written because it is
a few lines of arithmetic. History starts when the process does and is not shared between replicas.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KEEP", "STATE_RANK", "HealthHistory", "Sample", "Sparkline", "worst_state"]

KEEP = 120
MIN_GAP_S = 1.0
CEILINGS = (0.1, 0.25, 0.5, 1.0)
STATE_RANK = {"healthy": 0, "probing": 1, "degraded": 2, "stale": 2, "unhealthy": 3}


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    error_rate: float
    p95_latency_s: float | None
    state: str


@dataclass(frozen=True, slots=True)
class Sparkline:
    """What the template draws: a polyline (`points`), the last value and the worst state seen."""

    points: str
    width: int
    height: int
    last: float | None
    worst: str
    samples: int
    label: str
    ceiling: float


def worst_state(policies: Mapping[str, Any]) -> str:
    states = [str(p.get("state", "healthy")) for p in policies.values() if isinstance(p, Mapping)]
    return max(states, key=lambda s: STATE_RANK.get(s, 1), default="healthy")


def _sample(at: float, view: Mapping[str, Any]) -> Sample:
    figures = view.get("figures") or {}
    rate = figures.get("error_rate") if isinstance(figures, Mapping) else None
    p95 = figures.get("p95_latency_s") if isinstance(figures, Mapping) else None
    return Sample(
        at,
        float(rate) if isinstance(rate, int | float) else 0.0,
        float(p95) if isinstance(p95, int | float) else None,
        worst_state(view.get("policies") or {}),
    )


class HealthHistory:
    def __init__(self, keep: int = KEEP, min_gap_s: float = MIN_GAP_S) -> None:
        self._keep = keep
        self._min_gap_s = min_gap_s
        self._series: dict[str, deque[Sample]] = {}
        self._last_at: float | None = None
        self._lock = threading.Lock()

    def observe(self, at: float, health: Mapping[str, Mapping[str, Any]]) -> None:
        """Add one sample per model, unless the last sample is younger than `min_gap_s`."""
        with self._lock:
            if self._last_at is not None and at - self._last_at < self._min_gap_s:
                return
            self._last_at = at
            for model, view in health.items():
                series = self._series.setdefault(model, deque(maxlen=self._keep))
                series.append(_sample(at, view))

    def samples(self, model: str) -> list[Sample]:
        with self._lock:
            return list(self._series.get(model, ()))

    def sparkline(self, model: str, width: int = 140, height: int = 30) -> Sparkline:
        """Error rate over the kept samples, oldest on the left; 0 at the bottom and, at the top, the smallest of
        10 %, 25 %, 50 % and 100 % that holds every sample (so a small rate is still visible)."""
        samples = self.samples(model)
        if not samples:
            return Sparkline("", width, height, None, "healthy", 0, "no samples yet", 1.0)
        peak = max(s.error_rate for s in samples)
        ceiling = next(c for c in CEILINGS if peak <= c or c == CEILINGS[-1])
        step = width / max(1, self._keep - 1)
        offset = width - step * (len(samples) - 1)
        pad = 2
        coords = []
        for i, s in enumerate(samples):
            x = offset + step * i
            y = pad + (height - 2 * pad) * (1.0 - min(1.0, max(0.0, s.error_rate / ceiling)))
            coords.append(f"{x:.1f},{y:.1f}")
        worst = max((s.state for s in samples), key=lambda st: STATE_RANK.get(st, 1))
        last = samples[-1].error_rate
        label = (
            f"error rate over the last {len(samples)} samples (scale 0–{ceiling:.0%}), now {last:.0%}; "
            f"worst state {worst}"
        )
        return Sparkline(" ".join(coords), width, height, last, worst, len(samples), label, ceiling)
