"""Outcomes bound to the decisions that offered them (CONTRACT §1 "Who may move health").

Over HTTP, an outcome that carries a ``trace_id`` counts only for a model that decision offered (its
selected model or a backup), at most ``retry.attempts`` times per model; an outcome without a trace id,
or with one this service did not issue, needs the ``signaler`` role. That keeps a router token from
ejecting a model for every tenant with a handful of invented failures.

The book is a bounded map in memory (oldest decisions forgotten first), hand-written because it is an
``OrderedDict`` with a cap: nothing to take from a library.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from routeguard.core.decision import Decision
from routeguard.core.outcome import Outcome
from routeguard.service.errors import ApiError

__all__ = ["TraceBook"]


class TraceBook:
    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._offers: OrderedDict[str, dict[str, int]] = OrderedDict()  # trace -> model -> outcomes left
        self._lock = threading.Lock()

    def note(self, decision: Decision, attempts: int) -> None:
        """A decision was handed out: its models may each report ``attempts`` outcomes."""
        if decision.model is None:
            return
        offered = {name: attempts for name in (decision.model, *decision.backups)}
        with self._lock:
            self._offers[decision.trace_id] = offered
            self._offers.move_to_end(decision.trace_id)
            while len(self._offers) > self._capacity:
                self._offers.popitem(last=False)

    def admit(self, outcomes: Sequence[Outcome], may_signal: bool, listed: bool) -> None:
        """Check a whole batch before any of it takes effect, then count it; ApiError 403 / 422 otherwise."""
        with self._lock:
            used: dict[tuple[str, str], int] = {}
            for i, outcome in enumerate(outcomes):
                where = f"outcome[{i}]" if listed else "outcome"
                offered = self._offers.get(outcome.trace_id) if outcome.trace_id else None
                if offered is None:
                    if not may_signal:
                        raise ApiError(
                            403, "forbidden",
                            f"{where}: an outcome without a trace id this service issued needs the signaler role",
                        )
                    continue
                left = offered.get(outcome.model)
                if left is None:
                    raise ApiError(
                        422, "invalid_request",
                        f"{where}.model: decision {outcome.trace_id} did not offer {outcome.model!r}",
                    )
                key = (str(outcome.trace_id), outcome.model)
                used[key] = used.get(key, 0) + 1
                if used[key] > left:
                    raise ApiError(
                        422, "invalid_request",
                        f"{where}: decision {outcome.trace_id} already has its {left + used[key] - 1} "
                        f"outcome(s) for {outcome.model!r} (retry.attempts)",
                    )
            for (trace, model), count in used.items():
                offered = self._offers.get(trace)
                if offered is not None:
                    offered[model] -= count
