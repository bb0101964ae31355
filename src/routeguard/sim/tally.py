"""Per-request accumulation during a run (kept small: an hour at 50 rps is 180,000 requests)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["FAILED", "OK", "TERMINAL", "Tally"]

OK, FAILED, TERMINAL = "ok", "failed", "terminal"


@dataclass(slots=True)
class Tally:
    """Counts by outcome, model, minute and time bucket; see :mod:`routeguard.sim.report` for definitions."""

    bucket_s: float = 10.0
    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    hits: int = 0
    fallback_requests: int = 0
    fallback_succeeded: int = 0
    partial_outputs: int = 0
    unapproved_served: int = 0
    terminal: Counter[str] = field(default_factory=Counter)
    served_by: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unapproved: list[dict[str, object]] = field(default_factory=list)
    # minute -> [succeeded, succeeded through a fallback, terminal, failed]
    minutes: dict[int, list[int]] = field(default_factory=dict)
    # (policy, bucket index) -> outcome label (a model, "terminal:<action>", "failed") -> count
    buckets: dict[tuple[str, int], Counter[str]] = field(default_factory=dict)
    # (end time, failed) of every request that needed a fallback: the safe-mode oracle reads it
    fallback_results: list[tuple[float, bool]] = field(default_factory=list)

    def add(
        self,
        *,
        t_s: float,
        end_s: float,
        policy: str,
        first_model: str | None,
        needed_fallback: bool,
        served: str | None,
        kind: str,
        detail: str | None = None,
    ) -> None:
        """One finished request. ``kind``: OK (``served`` answered), FAILED (``detail``: error), TERMINAL
        (``detail``: the action)."""
        self.requests += 1
        minute = self.minutes.get(int(t_s // 60))
        if minute is None:
            minute = self.minutes[int(t_s // 60)] = [0, 0, 0, 0]
        key = (policy, int(t_s // self.bucket_s))
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Counter()
        if kind == OK:
            assert served is not None
            self.succeeded += 1
            self.served_by[served] += 1
            bucket[served] += 1
            minute[0] += 1
            if served == first_model:
                self.hits += 1
            if needed_fallback:
                minute[1] += 1
        elif kind == TERMINAL:
            action = detail or "suspend"
            self.terminal[action] += 1
            bucket["terminal:" + action] += 1
            minute[2] += 1
        else:
            self.failed += 1
            self.errors[detail or "error"] += 1
            bucket["failed"] += 1
            minute[3] += 1
        if needed_fallback:
            self.fallback_requests += 1
            self.fallback_succeeded += kind == OK
            self.fallback_results.append((end_s, kind != OK))

    def record_unapproved(self, t_s: float, policy: str, model: str, trace_id: str) -> None:
        self.unapproved_served += 1
        if len(self.unapproved) < 20:
            self.unapproved.append(
                {"t_s": round(t_s, 3), "policy": policy, "model": model, "trace_id": trace_id}
            )
