"""The Router's health controls (CONTRACT §1 "Who may move health", "Health survives restarts"): external
signals per source, withdrawal, operator overrides, active-check results, and the durable health state.

A mixin of :class:`routeguard.runtime.Router`, kept apart so each module holds one concept; it works on the
Router's tracker, route state and lock, and emits what it causes through the Router's event bus.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from routeguard.core.events import Event
from routeguard.core.health_fleet import FleetTracker
from routeguard.core.model import HealthConfig, Model
from routeguard.core.route_state import RouteState
from routeguard.core.table import RoutingTable

__all__ = ["HealthControls"]


class HealthControls:
    _lock: threading.RLock
    _clock: Callable[[], float]
    _tracker: FleetTracker
    _routes: RouteState
    _tables: dict[str, RoutingTable]
    _users: dict[str, list[tuple[str, HealthConfig]]]

    @property
    def table(self) -> RoutingTable:  # pragma: no cover - defined by Router
        raise NotImplementedError

    def _refresh(self, now: float, force: bool = False) -> list[Event]:  # pragma: no cover - Router
        raise NotImplementedError

    def _emit_all(self, events: list[Event]) -> None:  # pragma: no cover - Router
        raise NotImplementedError

    def _fleet_put(self, item: dict[str, Any]) -> None:  # pragma: no cover - FleetControls
        raise NotImplementedError

    def signal(
        self,
        model: str,
        status: str,
        *,
        ttl_s: float | None = None,
        source: str = "external",
        override: bool = False,
    ) -> None:
        """An external health signal from ``source``: ``up``, ``degraded`` or ``down``, valid for ``ttl_s``
        (at most 24 h). The worst unexpired signal of any source wins; ``override`` with ``up`` ends a cooldown."""
        with self._lock:
            now = self._clock()
            self._tracker.signal(model, status, now, ttl_s=ttl_s, source=source, override=override)
            self._fleet_put({"k": "s", "m": model, "st": status, "ttl": ttl_s, "src": source, "ov": override,
                             "at": now})
            events = self._refresh(now, force=True)
        self._emit_all(events)

    def withdraw_signal(self, model: str, source: str) -> bool:
        """Withdraw one source's signal; False when that source had none."""
        with self._lock:
            now = self._clock()
            found = self._tracker.withdraw(model, source)
            if found:
                self._fleet_put({"k": "w", "m": model, "src": source})
            events = self._refresh(now, force=True) if found else []
        self._emit_all(events)
        return found

    def check_result(self, model: str, ok: bool, *, error: str = "failure", interval_s: float = 15.0) -> None:
        """An active health check of ``model`` ended (a success ends its cooldown and counts as a probe)."""
        with self._lock:
            now = self._clock()
            self._tracker.check_result(model, ok, now, error, interval_s)
            self._fleet_put({"k": "c", "m": model, "ok": ok, "e": error, "iv": interval_s})
            events = self._refresh(now, force=True)
        self._emit_all(events)

    def models_out(self) -> set[str]:
        """Models unhealthy or probing under some policy (the ones active health checks look after)."""
        with self._lock:
            now = self._clock()
            out: set[str] = set()
            for model, users in self._users.items():
                for policy, config in users:
                    state = self._tracker.model_health(policy, config, model, now).state
                    if state.value in ("unhealthy", "probing"):
                        out.add(model)
            return out

    def catalogue(self) -> dict[str, Model]:
        """Every model of every live table, by name (the stable table's entry first)."""
        with self._lock:
            out: dict[str, Model] = {}
            for table in (self.table, *self._tables.values()):
                for name, model in table.bundle.models.items():
                    out.setdefault(name, model)
            return out

    def export_health(self) -> dict[str, Any]:
        """Signals, ejections and the serving model per policy and scope, as plain data (durable health)."""
        with self._lock:
            data = dict(self._tracker.export_state())
            data["routes"] = self._routes.export_routes()
            return data

    def import_health(self, data: Mapping[str, Any]) -> None:
        """Restore :meth:`export_health` after a restart; a move the evidence then makes is a logged change."""
        with self._lock:
            now = self._clock()
            self._tracker.import_state(data, now)
            routes = data.get("routes")
            if isinstance(routes, list):
                self._routes.import_routes(routes)
            events = self._refresh(now, force=True)
        self._emit_all(events)

