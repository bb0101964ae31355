"""The Router's side of fleet-wide health (CONTRACT §6 "Fleets", with ``routeguard serve --redis``).

A mixin of :class:`routeguard.runtime.Router`. With a :class:`FleetPort` attached (the service's Redis link):

* **out** — every local outcome, external signal, withdrawal, active-check result, probe permit and
  ejection is put on the port as a small JSON-able item (an append to a queue: the decision path never
  waits on Redis); the port ships them in batches;
* **in** — :meth:`FleetControls.apply_fleet` replays another replica's items into this tracker (outcomes,
  signals and checks as if seen here; permits and ejections through :class:`FleetTracker`), judges the
  models they touch and emits what follows (a routing change is deduplicated fleet-wide by the store);
* **probe gate** — decisions see the tracker through :class:`ProbeGate`: a *probing* pair admits probes
  only on the replica holding that pair's lease (taken in Redis by the port, off the decision path). A
  replica that wanted a probe it could not take says so in ``wanted``; the port then tries to take the
  lease for it. While the link is down the gate is inactive: each replica probes on its own budget.

Item kinds: ``o`` outcome, ``s`` signal, ``w`` withdrawal, ``c`` check, ``p`` probe permit, ``x`` ejection.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from routeguard.core.decision import Decision
from routeguard.core.events import Event
from routeguard.core.health_fleet import FleetTracker
from routeguard.core.health_view import HealthState, ModelHealth
from routeguard.core.model import HealthConfig

__all__ = ["FleetControls", "FleetPort", "ProbeGate"]

log = logging.getLogger("routeguard.fleet")
_PROBING = HealthState.PROBING
_FORCING = frozenset("swcx")  # kinds that may move a state at once: re-judge every route


class FleetPort(Protocol):
    """Where the Router puts what other replicas must hear of (must not block)."""

    def put(self, item: dict[str, Any]) -> None: ...


class ProbeGate:
    """The tracker as a fleet replica's decisions see it: a probing pair probes only under this replica's lease."""

    __slots__ = ("_tracker", "active", "leased", "used", "wanted")

    def __init__(self, tracker: FleetTracker) -> None:
        self._tracker = tracker
        self.active = False  # on while the link is up
        self.leased: frozenset[tuple[str, str]] = frozenset()  # (policy, model) pairs whose probes are ours
        self.wanted: dict[tuple[str, str], float] = {}  # pairs a decision wanted to probe, and when
        self.used: dict[tuple[str, str], float] = {}  # pairs we took a permit of, and when

    def peek_state(self, policy: str, model: str) -> HealthState:
        return self._tracker.peek_state(policy, model)

    def total_judged(self, model: str) -> int:
        return self._tracker.total_judged(model)

    def model_health(self, policy: str, config: HealthConfig, model: str, now: float) -> ModelHealth:
        health = self._tracker.model_health(policy, config, model, now)
        if health.probe_admitted and health.state is _PROBING and self.active and (policy, model) not in self.leased:
            self.wanted[(policy, model)] = now
            return dataclasses.replace(health, probe_admitted=False)
        return health


class FleetControls:
    _lock: threading.RLock
    _clock: Callable[[], float]
    _tracker: FleetTracker
    _users: dict[str, list[tuple[str, HealthConfig]]]
    _fleet_port: FleetPort | None
    _gate: ProbeGate | None
    _adopted: set[tuple[str, str]]

    def _refresh(self, now: float, force: bool = False) -> list[Event]:  # pragma: no cover - Router
        raise NotImplementedError

    def _emit_all(self, events: list[Event]) -> None:  # pragma: no cover - Router
        raise NotImplementedError

    def attach_fleet(self, port: FleetPort | None) -> ProbeGate | None:
        """Share this Router's health through ``port`` (None detaches); returns the probe gate to drive."""
        with self._lock:
            self._fleet_port = port
            self._gate = ProbeGate(self._tracker) if port is not None else None
            return self._gate

    @property
    def probe_gate(self) -> ProbeGate | None:
        return self._gate

    def _fleet_put(self, item: dict[str, Any]) -> None:
        port = self._fleet_port
        if port is not None:
            port.put(item)

    def _fleet_probe(self, decision: Decision, now: float) -> None:
        """A decision took a probe permit: the fleet counts it, and the lease it used stays ours."""
        if self._fleet_port is None or decision.model is None:
            return
        self._fleet_port.put({"k": "p", "p": decision.policy, "m": decision.model})
        if self._gate is not None:
            self._gate.used[(decision.policy, decision.model)] = now

    def _fleet_ejected(self, policy: str, model: str) -> None:
        """A local transition to unhealthy: tell the fleet (not for one adopted from it, nor a signal's)."""
        if self._fleet_port is None or (policy, model) in self._adopted:
            return
        breaker = self._tracker.breaker(policy, model)
        if breaker is None or breaker.signal_ejected or breaker.state is not HealthState.UNHEALTHY:
            return
        self._fleet_port.put({"k": "x", "p": policy, "m": model, "cu": breaker.cooldown_until,
                              "n": breaker.ejections, "d": breaker.detail})

    def apply_fleet(self, items: Sequence[Mapping[str, Any]], origin: str) -> int:
        """Replay another replica's items into this tracker; returns how many were applied."""
        applied, force = 0, False
        with self._lock:
            now = self._clock()
            touched: set[str] = set()
            for item in items:
                try:
                    model = self._apply_one(item, origin, now)
                except Exception as exc:  # a malformed item, or one of a newer release: skip it
                    log.debug("fleet item from %s skipped: %s", origin, exc)
                    continue
                applied += 1
                touched.add(model)
                force = force or item.get("k") in _FORCING
            for model in touched:
                for policy, config in self._users.get(model, ()):
                    self._tracker.model_health(policy, config, model, now)
            try:
                events = self._refresh(now, force=force)
            finally:
                self._adopted.clear()
        self._emit_all(events)
        return applied

    def _apply_one(self, item: Mapping[str, Any], origin: str, now: float) -> str:
        kind, model, tracker = item["k"], str(item["m"]), self._tracker
        if kind == "o":
            tracker.record(model, ok=bool(item["ok"]), now=now, error_class=item.get("e"),
                           latency_s=_num(item.get("l")), tokens=int(item.get("t") or 0), quality=_num(item.get("q")))
        elif kind == "s":
            ttl = _num(item.get("ttl"))
            if ttl is not None:
                ttl = min(max(0.0, ttl - max(0.0, now - float(item["at"]))), ttl)
            tracker.signal(model, str(item["st"]), now, ttl_s=ttl, source=str(item["src"]),
                           override=bool(item.get("ov")))
        elif kind == "w":
            tracker.withdraw(model, str(item["src"]))
        elif kind == "c":
            tracker.check_result(model, bool(item["ok"]), now, str(item.get("e") or "failure"), float(item["iv"]))
        elif kind == "p":
            tracker.note_probe(str(item["p"]), model, now)
        elif kind == "x":
            policy = str(item["p"])
            if tracker.adopt_ejection(policy, model, now, cooldown_until=float(item["cu"]), ejections=int(item["n"]),
                                      detail=f"{item.get('d') or 'ejected'} (seen by replica {origin})"):
                self._adopted.add((policy, model))
        else:
            raise ValueError(f"unknown kind {kind!r}")
        return model


def _num(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
