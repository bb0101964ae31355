"""The Router façade (CONTRACT §8): holds the routing table(s), the health tracker and the route state.

Used by library users, the service, the proxy and the simulator alike. Safe to call from many threads
or tasks: one lock guards the tracker and the route state; decisions themselves are pure.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routeguard.config.legacy import LEGACY_POLICY, legacy_bundle
from routeguard.config.load import LoadedBundle, load_bundle
from routeguard.core.context import RouteContext, SafeMode
from routeguard.core.decision import Decision
from routeguard.core.engine import CanaryRamp, decide, decide_policy, resolve_policy
from routeguard.core.events import Event, EventSink, HealthChanged
from routeguard.core.health import HealthTracker
from routeguard.core.health_fleet import FleetTracker
from routeguard.core.health_view import HealthState
from routeguard.core.model import Bundle, HealthConfig
from routeguard.core.outcome import Outcome
from routeguard.core.route_state import RouteState
from routeguard.core.safe_mode_auto import FallbackFailureWindow
from routeguard.core.table import RoutingTable, compile_bundle, content_hash
from routeguard.event_bus import EventBus
from routeguard.runtime_deployments import DeploymentControls
from routeguard.runtime_fleet import FleetControls, FleetPort, ProbeGate
from routeguard.runtime_health import HealthControls
from routeguard.runtime_learned import LearnedScorers
from routeguard.runtime_safe_mode import SafeModeControls
from routeguard.runtime_views import WithoutProbes, health_snapshot

if TYPE_CHECKING:
    from routeguard.execution.executor import Executor

__all__ = ["STABLE_SCOPE", "Router"]

STABLE_SCOPE = "all"
_REFRESH_EVERY_S = 1.0


def _new_trace_id() -> str:
    """128 random bits as 32 hex digits (like ``uuid4().hex``, at a fifth of the cost)."""
    return os.urandom(16).hex()


class Router(FleetControls, HealthControls, DeploymentControls, SafeModeControls):
    """Decide, report outcomes, watch routing changes; ``complete``/``stream`` call the models."""

    def __init__(
        self,
        table: RoutingTable,
        *,
        clock: Callable[[], float] = time.time,
        legacy: bool = False,
        executor_options: Mapping[str, Any] | None = None,
        artifact_root: str | Path | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._learned = LearnedScorers(artifact_root)  # learned primaries' scorers (CONTRACT §7)
        self._clock = clock
        self._legacy = legacy
        self._tables: dict[str, RoutingTable] = {}
        self._scope_of: Callable[[str | None, str | None], str] = lambda _tenant, _line: STABLE_SCOPE
        self._tracker = FleetTracker()
        self._routes = RouteState()
        self._bus = EventBus()
        self._safe = SafeMode()
        self._auto: FallbackFailureWindow | None = None
        self._fallback_traces: dict[str, str] = {}  # trace id -> policy, for decisions served as fallbacks
        self._users: dict[str, list[tuple[str, HealthConfig]]] = {}  # model -> policies whose chain names it
        self._next_refresh = float("-inf")
        self._pairs: set[tuple[str, str]] = set()
        self._canary_scopes: set[str] = set()
        self._no_probes = WithoutProbes(self._tracker)
        self._executor: Executor | None = None
        self._fleet_port: FleetPort | None = None  # with `serve --redis`: health shared with the fleet
        self._gate: ProbeGate | None = None
        self._adopted: set[tuple[str, str]] = set()
        self._executor_options = dict(executor_options or {})
        self._deployment_names: dict[str, tuple[str, ...]] = {}
        self._drained: set[str] = set()
        self.set_tables({STABLE_SCOPE: table})

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Router:
        kwargs.setdefault("artifact_root", Path(path).parent)  # learned artifacts sit next to the bundle
        return cls.from_bundle(load_bundle(Path(path)), **kwargs)

    @classmethod
    def from_bundle(cls, obj: Bundle | LoadedBundle | Mapping[str, Any] | str, **kwargs: Any) -> Router:
        """From a typed bundle, a loaded one, plain data, or YAML/JSON text."""
        if isinstance(obj, Bundle):
            return cls(compile_bundle(obj, content_hash=""), **kwargs)
        loaded = obj if isinstance(obj, LoadedBundle) else load_bundle(obj)
        return cls(compile_bundle(loaded.bundle, content_hash=loaded.content_hash), **kwargs)

    @classmethod
    def from_env(cls, **kwargs: Any) -> Router:
        """Legacy single-model mode from ``ROUTEGUARD_PROVIDER/MODEL/BASE_URL``."""
        raw = legacy_bundle()
        loaded = load_bundle(raw)
        return cls(compile_bundle(loaded.bundle, content_hash=content_hash(raw)), legacy=True, **kwargs)

    # ----------------------------------------------------------------- tables and scopes
    def set_tables(
        self,
        tables: Mapping[str, RoutingTable],
        scope_of: Callable[[str | None, str | None], str] | None = None,  # (tenant, business line) -> scope
    ) -> None:
        """Replace the live tables (scope -> table); a scope whose version changed starts on its primaries."""
        with self._lock:
            now = self._clock()
            for scope in list(self._tables):
                if scope not in tables:
                    self._routes.retire(scope)
            for scope, table in tables.items():
                old = self._tables.get(scope)
                if old is None or old.content_hash != table.content_hash or old.version != table.version:
                    self._routes.publish(table, scope, now)
            self._tables = dict(tables)
            self._index_deployments()
            self._canary_scopes = {
                scope for scope, table in tables.items()
                if any(cp.policy.canary is not None for cp in table.policies.values())
            }
            if scope_of is not None:
                self._scope_of = scope_of
            self._learned.load(self._tables)
            configs = {}
            self._pairs = {
                (name, cand.name)
                for table in self._tables.values()
                for name, cp in table.policies.items()
                for cand in cp.candidates
            }
            for table in self._tables.values():
                configs.update({name: cp.policy.health for name, cp in table.policies.items()})
            self._tracker.configure(configs)
            users: dict[str, list[tuple[str, HealthConfig]]] = {}
            for table in self._tables.values():
                for name, cp in table.policies.items():
                    for cand in cp.candidates:
                        users.setdefault(cand.name, []).append((name, cp.policy.health))
            self._users = users
            stable = self._tables.get(STABLE_SCOPE) or next(iter(self._tables.values()))
            auto = stable.bundle.safe_mode_auto
            self._auto = FallbackFailureWindow(auto) if auto is not None else None
            self._next_refresh = float("-inf")

    @property
    def table(self) -> RoutingTable:
        return self._tables.get(STABLE_SCOPE) or next(iter(self._tables.values()))

    def table_for(self, tenant: str | None, business_line: str | None = None) -> tuple[str, RoutingTable]:
        scope = self._scope_of(tenant, business_line)
        table = self._tables.get(scope)
        if table is None:
            return STABLE_SCOPE, self.table
        return scope, table

    @property
    def tracker(self) -> HealthTracker:
        return self._tracker

    @property
    def legacy(self) -> bool:
        return self._legacy

    def now(self) -> float:
        return self._clock()

    # ----------------------------------------------------------------- decisions and outcomes
    def context(self, context: Mapping[str, Any] | RouteContext) -> RouteContext:
        """A typed context with a trace id (and, in legacy mode, the single policy's agent)."""
        if isinstance(context, RouteContext):
            ctx = context
        else:  # the new trace id goes straight in: dataclasses.replace costs more than the whole parse
            given = context.get("trace_id") if isinstance(context, Mapping) else None
            ctx = RouteContext.from_dict(context, trace_id=None if given else _new_trace_id())
        changes: dict[str, Any] = {}
        if not ctx.trace_id:
            changes["trace_id"] = _new_trace_id()
        if self._legacy and ctx.agent != LEGACY_POLICY:
            changes["agent"] = LEGACY_POLICY
        if changes:
            ctx = replace(ctx, **changes)
        if ctx.prompt is not None and ctx.score is None and self._learned.scopes:
            scope, table = self.table_for(ctx.tenant)
            ctx = self._learned.score(ctx, scope, table)
        return ctx

    def scorer_errors(self) -> dict[str, str]:
        """scope/policy -> why its learned primary's artifact could not be loaded (its requests go to strong)."""
        return {f"{scope}/{policy}": why for (scope, policy), why in self._learned.errors.items()}

    def decide(self, context: Mapping[str, Any] | RouteContext) -> Decision:
        """The decision for one task context (CONTRACT §3). Raises RoutingError on a bad request."""
        ctx = self.context(context)
        with self._lock:
            now = self._clock()
            scope, table = self.table_for(ctx.tenant, ctx.business_line)
            view = self._gate if self._gate is not None else self._tracker
            decision = decide(ctx, table, view, self._safe, now, self._ramp_for(ctx, table, scope))
            if decision.model in self._deployment_names:
                decision = self._name_deployment(decision, table, ctx.region, now)
            # the decision carries its permit: taken under the same lock that judged it admitted
            if (decision.probe and decision.model is not None
                    and self._tracker.begin_probe(decision.policy, decision.model, now)):
                self._fleet_probe(decision, now)
            events = self._refresh(now)
        self._emit_all(events)
        return decision

    def _ramp_for(self, ctx: RouteContext, table: RoutingTable, scope: str) -> CanaryRamp | None:
        if scope not in self._canary_scopes:  # computed once per publish, not per decision
            return None
        try:
            policy = resolve_policy(ctx, table).name
        except ValueError:
            return None
        return self._routes.ramp(policy, scope)

    def report(self, outcome: Outcome | Mapping[str, Any]) -> None:
        """Feed one call outcome (from your own call, or a served one) into health."""
        out = outcome if isinstance(outcome, Outcome) else Outcome.from_dict(outcome)
        with self._lock:
            now = self._clock()
            fallback = self._fallback_traces.pop(out.trace_id, None) if out.trace_id else None
            # an outcome naming a deployment feeds that deployment's breaker, and the model's only when it
            # succeeded or no deployment of the model can serve any more (CONTRACT §1 deployments)
            if out.deployment is None or self._report_deployment(out, now):
                self._tracker.record(
                    out.model,
                    ok=out.ok,
                    now=now,
                    error_class=out.error,
                    latency_s=out.latency_ms / 1000 if out.latency_ms is not None else None,
                    tokens=out.input_tokens + out.output_tokens,
                    quality=out.quality,
                )
            if self._fleet_port is not None:
                self._fleet_port.put({"k": "o", "m": out.model, "ok": out.ok, "e": out.error, "q": out.quality,
                                      "l": out.latency_ms / 1000 if out.latency_ms is not None else None,
                                      "t": out.input_tokens + out.output_tokens})
            # judge this model under every policy that names it: a health transition caused by this
            # outcome is taken now, and then every route is re-checked (the full refresh runs on a
            # transition, else at most once a second — not on every outcome). A good outcome of a healthy
            # pair cannot move it (it is neither slow nor poorly scored): it is judged lazily, when asked.
            tracker = self._tracker
            healthy = HealthState.HEALTHY
            for policy, config in self._users.get(out.model, ()):
                if out.ok and tracker.peek_state(policy, out.model) is healthy and _harmless(out, config):
                    continue
                tracker.model_health(policy, config, out.model, now)
            events = self._refresh(now)
        self._emit_all(events)
        if fallback is not None:
            self.record_fallback_result(not out.ok)

    # ----------------------------------------------------------------- route state
    def refresh(self) -> None:
        """Re-judge health and the serving model of every policy now (a tick)."""
        with self._lock:
            now = self._clock()
            self._tracker.states(now)
            events = self._refresh(now, force=True)
        self._emit_all(events)

    def _refresh(self, now: float, force: bool = False) -> list[Event]:
        events: list[Event] = self._health_events()
        if not events and not force and now < self._next_refresh:
            return events
        self._next_refresh = now + _REFRESH_EVERY_S
        changes: list[Event] = []
        for scope, table in self._tables.items():
            for compiled in table.policies.values():
                ref_ctx = RouteContext(trace_id="routeguard:reference", agent=compiled.policy.agent)
                reference = decide_policy(compiled, ref_ctx, table, self._no_probes, self._safe, now)
                changes += self._routes.observe(compiled, table, scope, reference, self._tracker, now)
        return events + self._health_events() + changes

    def _health_events(self) -> list[Event]:
        """Health transitions of models a policy actually routes to (the tracker judges every pair)."""
        events: list[Event] = []
        for t in self._tracker.drain_transitions():
            if (t.policy, t.model) in self._pairs:
                events.append(HealthChanged(t.policy, t.model, t.from_state.value, t.to_state.value, t.detail, t.at))
            elif self._deployment_names and (named := self._deployment_event(t)) is not None:
                events.append(named)  # a deployment's own breaker moved (CONTRACT §1 deployments)
        if self._fleet_port is not None:
            for event in events:
                if isinstance(event, HealthChanged) and event.to_state == "unhealthy" and event.deployment is None:
                    self._fleet_ejected(event.policy, event.model)
        return events

    def routes(self) -> list[dict[str, Any]]:
        with self._lock:
            self._refresh(self._clock())
            return [r.to_dict() for r in self._routes.routes()]

    def health(self) -> dict[str, Any]:
        """Every model with its figures, and its state under each policy."""
        with self._lock:
            models: set[str] = set()
            for table in self._tables.values():
                models.update(table.bundle.models)
            return health_snapshot(self._tracker.states(self._clock()), models, self._deployment_names)

    # ----------------------------------------------------------------- events
    def subscribe(self, sink: EventSink) -> Callable[[], None]:
        """Call ``sink(event)`` for every event; returns a function that unsubscribes it."""
        return self._bus.subscribe(sink)

    def emit(self, event: Event) -> None:
        self._bus.publish((event,))

    def _emit_all(self, events: list[Event]) -> None:
        if events:
            self._bus.publish(events)

    # ----------------------------------------------------------------- execution (CONTRACT §8)
    @property
    def executor(self) -> Executor:
        if self._executor is None:
            from routeguard.execution.executor import Executor

            self._executor = Executor(self, **self._executor_options)
        return self._executor

    async def complete(
        self, context: Mapping[str, Any] | RouteContext, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Route, call, retry and fall back safely; an OpenAI chat completion dict."""
        return await self.executor.complete(self.context(context), dict(request))

    def stream(
        self, context: Mapping[str, Any] | RouteContext, request: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Like :meth:`complete`, as OpenAI chunk dicts; never falls back after the first chunk."""
        return self.executor.stream(self.context(context), dict(request))

    async def aclose(self) -> None:
        if self._executor is not None:
            await self._executor.aclose()


def _harmless(out: Outcome, config: HealthConfig) -> bool:
    """A successful outcome that no threshold of ``config`` can turn against a healthy model."""
    if config.p95_latency_s is not None and (out.latency_ms is None or out.latency_ms >= config.p95_latency_s * 1000):
        return False
    return config.quality_min is None or out.quality is None or out.quality >= config.quality_min
