"""The Router's deployment health (CONTRACT §1 ``deployments``, issue 16 item 4): each deployment of a model
has its own breaker — the tracker's, keyed ``model#deployment`` and judged with the calling policy's thresholds.

A mixin of :class:`routeguard.runtime.Router`, kept apart so each module holds one concept. It is the
:class:`~routeguard.execution.deployments.DeploymentHealth` port the executor's deployment sets use, names a
deployment in decisions for models that have them (weighted, region first, only healthy/degraded ones), and
feeds a deployment's health from outcomes that name it. The model-level pair only sees outcomes of calls that
no deployment could serve, so one failing deployment never ejects the model; all of them failing does.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import replace

from routeguard.core.decision import Decision
from routeguard.core.deployment import choose, deployment_key, split_key, spots, usable
from routeguard.core.events import HealthChanged
from routeguard.core.health import HealthTransition
from routeguard.core.health_fleet import FleetTracker
from routeguard.core.health_view import HealthState
from routeguard.core.health_window import OutcomeKind, classify_outcome
from routeguard.core.model import HealthConfig
from routeguard.core.outcome import Outcome
from routeguard.core.table import RoutingTable

__all__ = ["DeploymentControls"]

_ANY = HealthConfig()
_NAMED = (HealthState.HEALTHY, HealthState.DEGRADED, HealthState.STALE)  # a decision may name these


class DeploymentControls:
    _lock: threading.RLock
    _clock: Callable[[], float]
    _tracker: FleetTracker
    _tables: dict[str, RoutingTable]
    _users: dict[str, list[tuple[str, HealthConfig]]]
    _pairs: set[tuple[str, str]]
    _deployment_names: dict[str, tuple[str, ...]]  # model -> its deployments (``main`` first), set per publish
    _drained: set[str]  # deployment keys with weight 0: they serve nothing
    _deploy_rng = random.Random()

    # ----------------------------------------------------------------- the executor's port
    def deployment_usable(self, policy: str | None, model: str, deployment: str) -> bool:
        with self._lock:
            name, config = self._judge(policy, model)
            health = self._tracker.model_health(name, config, deployment_key(model, deployment), self._clock())
            return usable(health.state, health.probe_admitted)

    def deployment_take(self, policy: str | None, model: str, deployment: str) -> bool:
        with self._lock:
            name, _config = self._judge(policy, model)
            key = deployment_key(model, deployment)
            if self._tracker.peek_state(name, key) is not HealthState.PROBING:
                return True
            return self._tracker.begin_probe(name, key, self._clock())

    def deployment_record(self, policy: str | None, model: str, deployment: str, *, ok: bool,
                          error: str | None, latency_s: float, final: bool) -> None:
        """An attempt the deployment set moved on from; the final one arrives with the call's ``Outcome``."""
        if final:
            return
        with self._lock:
            self._record_deployment(model, deployment, ok, error, latency_s, self._clock())

    # ----------------------------------------------------------------- used by Router
    def _judge(self, policy: str | None, model: str) -> tuple[str, HealthConfig]:
        """The policy (and its thresholds) a deployment of ``model`` is judged under for this call."""
        users = self._users.get(model, ())
        for name, config in users:
            if name == policy:
                return name, config
        return users[0] if users else (policy or "deployments", _ANY)

    def _record_deployment(self, model: str, deployment: str, ok: bool, error: str | None,
                           latency_s: float | None, now: float) -> None:
        key = deployment_key(model, deployment)
        self._tracker.record(key, ok=ok, now=now, error_class=error, latency_s=latency_s)
        for policy, config in self._users.get(model, ()):
            self._tracker.model_health(policy, config, key, now)

    def _report_deployment(self, out: Outcome, now: float) -> bool:
        """Feed an outcome naming a deployment into that deployment's health; True when it also counts for the
        model: it succeeded (or was a client error), or no deployment of the model can serve now (one failing
        deployment never ejects the model; all of them failing does). A name the bundle does not hold counts
        for the model only."""
        names = self._deployment_names.get(out.model, ())
        if out.deployment not in names:
            return True
        latency = out.latency_ms / 1000 if out.latency_ms is not None else None
        self._record_deployment(out.model, out.deployment, out.ok, out.error, latency, now)
        if classify_outcome(out.ok, out.error) is not OutcomeKind.PROVIDER_FAILURE:
            return True  # a success, or a client error (it says nothing about the model but counts its request)
        policy, config = self._judge(out.policy, out.model)
        for name in names:
            if deployment_key(out.model, name) in self._drained:
                continue
            health = self._tracker.model_health(policy, config, deployment_key(out.model, name), now)
            if usable(health.state, health.probe_admitted):
                return False
        return True

    def _name_deployment(self, decision: Decision, table: RoutingTable, region: str | None, now: float
                         ) -> Decision:
        """The decision with the deployment it goes to, for a model that has deployments (None: none is
        healthy there; the executor's set still probes recovering ones)."""
        model = table.bundle.models.get(decision.model) if decision.model is not None else None
        if model is None or not model.deployments:
            return decision
        config = next((c for p, c in self._users.get(model.name, ()) if p == decision.policy), _ANY)

        def admits(name: str) -> bool:
            key = deployment_key(model.name, name)
            return self._tracker.model_health(decision.policy, config, key, now).state in _NAMED

        chosen = choose(spots(model), region, admits, self._deploy_rng.random())
        return replace(decision, deployment=chosen) if chosen is not None else decision

    def _deployment_event(self, t: HealthTransition) -> HealthChanged | None:
        """A transition of a deployment key, as the model's event naming the deployment."""
        model, deployment = split_key(t.model)
        if deployment is None or (t.policy, model) not in self._pairs:
            return None
        return HealthChanged(t.policy, model, t.from_state.value, t.to_state.value, t.detail, t.at, deployment)

    def deployments_of(self) -> dict[str, tuple[str, ...]]:
        """Every model with deployments (any live table) -> its deployment names, ``main`` first."""
        with self._lock:
            return dict(self._deployment_names)

    def _index_deployments(self) -> None:
        """After a publish: the deployments of every live table's models (the first table naming a model wins)."""
        names: dict[str, tuple[str, ...]] = {}
        drained: set[str] = set()
        for table in self._tables.values():
            for name, model in table.bundle.models.items():
                if model.deployments and name not in names:
                    found = spots(model)
                    names[name] = tuple(s.name for s in found)
                    drained.update(deployment_key(name, s.name) for s in found if s.weight <= 0)
        self._deployment_names, self._drained = names, drained

