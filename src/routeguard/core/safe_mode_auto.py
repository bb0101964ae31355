"""The automatic safe-mode trigger: fallback failure rate over a sliding window (pure, time passed in)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from routeguard.core.model import SafeModeAuto

__all__ = ["FallbackFailureWindow", "SafeModeVerdict"]


@dataclass(frozen=True, slots=True)
class SafeModeVerdict:
    breached: bool
    rate: float
    samples: int
    detail: str


class FallbackFailureWindow:
    """Counts requests that needed a fallback, and how many of them still failed (error or terminal)."""

    __slots__ = ("_config", "_events", "_failed")

    def __init__(self, config: SafeModeAuto) -> None:
        self._config = config
        self._events: deque[tuple[float, bool]] = deque()
        self._failed = 0

    def record(self, now: float, failed: bool) -> None:
        self._events.append((now, failed))
        self._failed += int(failed)
        self._expire(now)

    def verdict(self, now: float) -> SafeModeVerdict:
        self._expire(now)
        n = len(self._events)
        rate = self._failed / n if n else 0.0
        cfg = self._config
        breached = n >= cfg.min_samples and rate > cfg.fallback_failure_rate
        detail = (
            f"fallback failure rate {rate:.2f} > {cfg.fallback_failure_rate:.2f} over {cfg.window_s:g}s "
            f"({self._failed}/{n} fallbacks failed)"
        )
        return SafeModeVerdict(breached, rate, n, detail)

    def _expire(self, now: float) -> None:
        horizon = now - self._config.window_s
        events = self._events
        while events and events[0][0] < horizon:
            _, failed = events.popleft()
            self._failed -= int(failed)
