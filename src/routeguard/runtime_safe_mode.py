"""The Router's safe mode (CONTRACT §2 invariant 4, §3): manual switches (global or per tenant), restoring it at
start, and the automatic trigger fed by how requests that needed a fallback ended.

A mixin of :class:`routeguard.runtime.Router`, kept apart so each module holds one concept; it works on the
Router's lock, clock and tables, and emits what it causes through the Router's event bus.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from routeguard.core.context import SafeMode
from routeguard.core.decision import Decision, DecisionStatus
from routeguard.core.events import Event, SafeModeChanged
from routeguard.core.safe_mode_auto import FallbackFailureWindow
from routeguard.core.table import RoutingTable

__all__ = ["SafeModeControls"]

_TRACE_MEMORY = 10_000  # fallback decisions remembered until their outcome is reported


class SafeModeControls:
    _lock: threading.RLock
    _clock: Callable[[], float]
    _safe: SafeMode
    _auto: FallbackFailureWindow | None
    _fallback_traces: dict[str, str]

    def table_for(
        self, tenant: str | None, business_line: str | None = None
    ) -> tuple[str, RoutingTable]:  # pragma: no cover - defined by Router
        raise NotImplementedError

    def _refresh(self, now: float, force: bool = False) -> list[Event]:  # pragma: no cover - Router
        raise NotImplementedError

    def _emit_all(self, events: list[Event]) -> None:  # pragma: no cover - Router
        raise NotImplementedError

    def note_decision(self, decision: Decision) -> None:
        """A decision handed to a caller who will call the model itself (the decision API, not the executor).

        Feeds automatic safe mode: the caller's reported outcome for a fallback decision (same trace id) says
        whether the fallback served; a terminal decision of a policy with fallbacks is a failed fallback.
        """
        if self._auto is None:
            return
        if decision.status is DecisionStatus.FALLBACK:
            with self._lock:
                if len(self._fallback_traces) >= _TRACE_MEMORY:
                    self._fallback_traces.pop(next(iter(self._fallback_traces)))
                self._fallback_traces[decision.trace_id] = decision.policy
        elif decision.status is DecisionStatus.TERMINAL:
            table = self.table_for(decision.tenant)[1]
            compiled = table.policies.get(decision.policy)
            if compiled is not None and (compiled.policy.fallbacks or compiled.n_arms > 1):
                self.record_fallback_result(True)

    def record_fallback_result(self, failed: bool) -> None:
        """A request that needed a fallback ended (``failed``: error or terminal) — feeds auto safe mode."""
        events: list[Event] = []
        with self._lock:
            if self._auto is None or self._safe.global_on:
                return
            now = self._clock()
            self._auto.record(now, failed)
            verdict = self._auto.verdict(now)
            if verdict.breached:
                self._safe = SafeMode(True, self._safe.tenants)
                events.append(
                    SafeModeChanged(True, f"automatic: {verdict.detail}", now, automatic=True,
                                    figures={"rate": verdict.rate, "samples": verdict.samples})
                )
                events += self._refresh(now, force=True)
        self._emit_all(events)

    # ----------------------------------------------------------------- safe mode
    @property
    def safe_mode(self) -> SafeMode:
        return self._safe

    def set_safe_mode(
        self, enabled: bool, *, tenant: str | None = None, reason: str = "", by: str = "operator"
    ) -> None:
        with self._lock:
            now = self._clock()
            before = self._safe
            if tenant is None:
                self._safe = SafeMode(enabled, self._safe.tenants)
            else:
                tenants = set(self._safe.tenants)
                (tenants.add if enabled else tenants.discard)(tenant)
                self._safe = SafeMode(self._safe.global_on, frozenset(tenants))
            if self._safe == before:
                return  # nothing changed: no event, no routing change
            text = reason or ("on" if enabled else "off")
            events: list[Event] = [SafeModeChanged(enabled, text, now, tenant, by)]
            events += self._refresh(now, force=True)
        self._emit_all(events)

    def load_safe_mode(self, state: SafeMode) -> None:
        """Restore persisted safe mode without emitting events (service start)."""
        with self._lock:
            self._safe = state

