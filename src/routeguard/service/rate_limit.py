"""Per-principal request rates (`rate: 200/s` on an auth entry, CONTRACT §3): a token bucket per principal.

Hand-written: a token bucket is a dozen lines. Past the rate a caller gets 429 with `Retry-After`.
Fleet-wide (`serve --redis`): the Redis link ships this replica's grants (`drain_taken`) to the other
replicas, which take them from their own buckets (`absorb`), so a principal's rate holds across the fleet
up to what was granted within one propagation delay (~0.1 s) on several replicas at once.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "parse_rate"]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(text: object) -> float:
    """``"200/s"`` → 200.0 requests per second; ValueError otherwise."""
    match = _RATE.match(str(text))
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"rate must look like '200/s', '600/m' or '1000/h', not {text!r}")
    return float(match.group(1)) / _UNIT_S[match.group(2)]


class RateLimiter:
    """Token buckets by principal: ``rate`` per second, bursts up to one second's worth (at least 1)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._lock = threading.Lock()
        self._taken: dict[str, tuple[int, float]] = {}  # grants since the last drain, and the rate (for the fleet)

    def take(self, name: str, rate: float) -> float | None:
        """Take one token; None when granted, else the seconds until one is free (the Retry-After)."""
        burst = max(1.0, rate)
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(name, (burst, now))
            tokens = max(-burst, min(burst, tokens + (now - at) * rate))  # below 0: other replicas' grants
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                self._taken[name] = (self._taken.get(name, (0, rate))[0] + 1, rate)
                return None
            self._buckets[name] = (tokens, now)
            return max(0.001, (1.0 - tokens) / rate)

    def drain_taken(self) -> dict[str, tuple[int, float]]:
        """This replica's grants per principal since the last drain, with the principal's rate."""
        with self._lock:
            taken, self._taken = self._taken, {}
            return taken

    def absorb(self, name: str, count: int, rate: float) -> None:
        """Another replica granted ``count`` requests of ``name`` (whose rate is ``rate``): they come out of
        this replica's bucket too (a full one when it has none yet)."""
        if count <= 0 or not rate > 0:
            return
        burst = max(1.0, rate)
        with self._lock:
            tokens, at = self._buckets.get(name, (burst, self._clock()))
            self._buckets[name] = (max(-burst, tokens - count), at)

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
