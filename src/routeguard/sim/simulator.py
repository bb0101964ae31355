"""The simulator: scenario traffic through the REAL Router, Executor, engine, health tracker and route state.

Nothing here decides or falls back: every request runs ``Executor.complete_served`` /
``Executor.stream_served`` against :class:`~routeguard.sim.models.SimulatedModel` providers, in
virtual time (:class:`~routeguard.sim.clock.Scheduler` is the router's clock and the executor's
``sleep``). The simulator only watches: it times each ``Router.decide`` on the real clock, collects
the router's events, re-checks every decision against CONTRACT §2 (:mod:`routeguard.sim.invariants`)
and tallies what each caller saw.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from routeguard.config.load import LoadedBundle, load_bundle
from routeguard.core.context import RouteContext, RoutingError, SafeMode
from routeguard.core.decision import Decision, DecisionStatus
from routeguard.core.engine import resolve_policy
from routeguard.core.errors import ProviderError
from routeguard.core.events import (
    CanaryStepped,
    Event,
    FallbackUsed,
    HealthChanged,
    RouteChanged,
    SafeModeChanged,
    TerminalEngaged,
)
from routeguard.core.exceptions import PartialOutputError, TerminalAction
from routeguard.core.health_view import HealthState
from routeguard.core.model import Bundle
from routeguard.core.outcome import Outcome
from routeguard.core.table import compile_bundle
from routeguard.execution.executor import Executor, Served
from routeguard.execution.health_checks import ActiveChecker
from routeguard.runtime import STABLE_SCOPE, Router
from routeguard.sim.clock import Scheduler
from routeguard.sim.invariants import InvariantChecker
from routeguard.sim.models import ModelCounters, SimulatedModel
from routeguard.sim.scenario import (
    ClientReport,
    SafeModeSwitch,
    Scenario,
    ScenarioError,
    SignalSpec,
    today_utc,
)
from routeguard.sim.tally import FAILED, OK, TERMINAL, Tally
from routeguard.sim.traffic import PoissonTraffic, ReplayTraffic

__all__ = ["DecisionHook", "SimRun", "Simulation", "simulate"]

DecisionHook = Callable[[RouteContext, Decision, SafeMode, float], None]
_REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "simulated task"}]}


class _SimRouter(Router):
    """The real Router; ``decide`` is timed on the real clock and shown to the simulator."""

    latency_ns: list[int]
    watch: Callable[[RouteContext, Decision], None] | None
    untraced: bool = False  # the scenario's clients report outcomes without trace ids

    def report(self, outcome: Outcome | Mapping[str, Any]) -> None:
        if self.untraced and isinstance(outcome, Outcome) and outcome.trace_id is not None:
            outcome = dataclasses.replace(outcome, trace_id=None)
        super().report(outcome)

    def decide(self, context: Mapping[str, Any] | RouteContext) -> Decision:
        start = time.perf_counter_ns()
        decision = super().decide(context)
        self.latency_ns.append(time.perf_counter_ns() - start)
        if self.watch is not None and isinstance(context, RouteContext):
            self.watch(context, decision)
        return decision


@dataclass(slots=True)
class _Request:
    first: Decision | None = None
    failovers: int = 0


@dataclass(slots=True)
class SimRun:
    """Everything a report is built from (see :func:`routeguard.sim.report.build_report`)."""

    scenario: Scenario
    bundle: Bundle
    bundle_hash: str
    epoch: float
    duration_s: float
    tally: Tally
    route_changes: list[RouteChanged] = field(default_factory=list)
    health_changes: list[HealthChanged] = field(default_factory=list)
    safe_mode_changes: list[SafeModeChanged] = field(default_factory=list)
    notifications: Counter[str] = field(default_factory=Counter)
    terminal_events: int = 0
    fallback_events: int = 0
    canary_steps: int = 0
    counters: dict[str, ModelCounters] = field(default_factory=dict)
    decision_latency_ns: list[int] = field(default_factory=list)
    checker: InvariantChecker | None = None
    wall_s: float = 0.0
    human_queue: int = 0
    # requests that reached a recovering model before its switch back was logged, one entry per recovery
    probes: list[dict[str, Any]] = field(default_factory=list)
    probing: dict[tuple[str, str], int] = field(default_factory=dict)  # (policy, model) -> probes so far


class Simulation:
    """One scenario on one bundle. ``run()`` does it all; ``start``/``advance``/``finish`` step it (demo)."""

    def __init__(
        self,
        bundle: LoadedBundle | Mapping[str, Any] | str | Path,
        scenario: Scenario,
        *,
        check_invariants: bool = True,
        on_decision: DecisionHook | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        loaded = bundle if isinstance(bundle, LoadedBundle) else load_bundle(bundle)
        self.scenario = scenario
        self.scheduler = Scheduler(scenario.start if scenario.start is not None else today_utc())
        table = compile_bundle(loaded.bundle, content_hash=loaded.content_hash)
        root = Path(loaded.source).parent if loaded.source else None  # learned artifacts sit next to the bundle
        router = _SimRouter(table, clock=self.scheduler.now, artifact_root=root)
        router.latency_ns, router.watch = [], self._watch
        router.untraced = not scenario.clients_report_trace_ids
        self.router: Router = router
        self._latency = router.latency_ns
        seed = scenario.seed
        self.models = {
            name: SimulatedModel(
                name,
                scenario.model_spec(name),
                scenario.faults,
                self.scheduler,
                random.Random(f"{seed}:model:{name}"),
            )
            for name in loaded.bundle.models
        }
        self.executor = Executor(
            router, providers=self.models, sleep=self.scheduler.sleep, rng=random.Random(f"{seed}:executor")
        )
        self.active = ActiveChecker(router, self.executor.providers.get)  # models' health_check, virtual time
        self.checker = InvariantChecker(loaded.bundle)
        self._check = check_invariants
        self._on_decision, self._on_event = on_decision, on_event
        self._inflight: dict[str, _Request] = {}
        self._fields: dict[int, dict[str, Any]] = {}  # template id -> its fields but the trace id
        self._decisions = 0
        self._ticked_at = -1
        self._count = 0
        self._wall = 0.0
        bucket_s = max(10.0, round(scenario.duration_s / 180.0))
        self.run_data = SimRun(
            scenario,
            loaded.bundle,
            loaded.content_hash,
            self.scheduler.epoch,
            scenario.duration_s,
            Tally(bucket_s=bucket_s),
            checker=self.checker,
        )
        router.subscribe(self._sink)
        self._profiles = {name: p.profile for name, p in loaded.bundle.policies.items()}
        self._traffic: PoissonTraffic | ReplayTraffic
        if scenario.replay is not None:
            self._traffic = ReplayTraffic(scenario.replay)
        else:
            self._traffic = PoissonTraffic(scenario.traffic, seed)
        self._check_traffic(loaded.bundle)

    def _check_traffic(self, bundle: Bundle) -> None:
        if isinstance(self._traffic, PoissonTraffic):
            for i, template in enumerate(self._traffic.templates):
                try:
                    resolve_policy(template, self.router.table)
                except RoutingError as exc:
                    raise ScenarioError(f"traffic[{i}]: {exc.message} in this bundle") from exc
        unknown = sorted({f.model for f in self.scenario.faults} - set(bundle.models))
        if unknown:
            raise ScenarioError(f"faults name model(s) not in the bundle: {', '.join(unknown)}")

    # ------------------------------------------------------------------ watching
    def _watch(self, ctx: RouteContext, decision: Decision) -> None:
        self._decisions += 1
        req = self._inflight.get(ctx.trace_id)
        if req is not None:
            if req.first is None:
                req.first = decision
            else:
                req.failovers += 1
        now = self.scheduler.now()
        if (decision.probe and decision.model is not None
                and self.router.tracker.peek_state(decision.policy, decision.model) is HealthState.PROBING):
            key = (decision.policy, decision.model)  # a recovering (ejected, now probing) model's probe
            self.run_data.probing[key] = self.run_data.probing.get(key, 0) + 1
        if self._check:
            self.checker.check(ctx, decision, self.router.safe_mode, now)
        if self._on_decision is not None:
            self._on_decision(ctx, decision, self.router.safe_mode, now)

    def _sink(self, event: Event) -> None:
        run = self.run_data
        if isinstance(event, RouteChanged):
            if event.scope == STABLE_SCOPE:
                run.route_changes.append(event)
                self.checker.logged(event.policy, event.to_model)
                if event.to_model is not None and (event.policy, event.to_model) in run.probing:
                    count = run.probing.pop((event.policy, event.to_model))
                    run.probes.append({"policy": event.policy, "model": event.to_model, "requests": count,
                                       "t_s": round(event.at - self.scheduler.epoch, 3)})
            run.notifications[event.event] += len(event.notify)
        elif isinstance(event, TerminalEngaged):
            run.terminal_events += 1
            run.notifications[event.event] += len(event.notify)
        elif isinstance(event, HealthChanged) and event.deployment is None:  # a model's, not a deployment's
            run.health_changes.append(event)
            if event.to_state == "unhealthy":  # a new probing period starts with its own budget
                run.probing.pop((event.policy, event.model), None)
        elif isinstance(event, SafeModeChanged):
            run.safe_mode_changes.append(event)
            run.notifications[event.event] += len(run.bundle.notifiers)
        elif isinstance(event, FallbackUsed):
            run.fallback_events += 1
        elif isinstance(event, CanaryStepped):
            run.canary_steps += 1
        if self._on_event is not None:
            self._on_event(event)

    # ------------------------------------------------------------------ requests
    def _submit(self, template: RouteContext, stream: bool, line: int) -> None:
        self._count += 1
        fields = self._fields.get(id(template))
        if fields is None:
            fields = self._fields[id(template)] = {
                f.name: getattr(template, f.name) for f in dataclass_fields(template) if f.name != "trace_id"
            }
        ctx = RouteContext(trace_id=f"sim-{self._count:07d}", **fields)
        self.scheduler.spawn(self._request(ctx, stream))

    async def _request(self, ctx: RouteContext, stream: bool) -> None:
        sched = self.scheduler
        t0 = sched.t
        req = self._inflight[ctx.trace_id] = _Request()
        kind, detail, served_model, output_from = FAILED, None, None, None
        try:
            served = await (self._stream(ctx) if stream else self._complete(ctx))
            if served.model is None:
                kind, detail = TERMINAL, served.terminal
            else:
                kind, served_model = OK, served.model
                output_from = served.model
        except TerminalAction as exc:
            kind, detail = TERMINAL, exc.action
        except PartialOutputError as exc:
            detail, output_from = "partial_output", exc.model
            self.run_data.tally.partial_outputs += 1
        except ProviderError as exc:
            detail = exc.error_class.value
        except RoutingError as exc:
            detail = exc.code
        finally:
            del self._inflight[ctx.trace_id]
        first = req.first
        policy = first.policy if first is not None else "-"
        tally = self.run_data.tally
        if output_from is not None and not self.checker.approved(
            output_from, self._profiles[policy], sched.now()
        ):
            tally.record_unapproved(sched.t, policy, output_from, ctx.trace_id)
        needed = req.failovers > 0 or (first is not None and first.status is DecisionStatus.FALLBACK)
        tally.add(
            t_s=t0,
            end_s=sched.t,
            policy=policy,
            first_model=first.model if first is not None else None,
            needed_fallback=needed,
            served=served_model,
            kind=kind,
            detail=detail,
        )

    async def _complete(self, ctx: RouteContext) -> Served:
        _completion, served = await self.executor.complete_served(ctx, _REQUEST)
        return served

    async def _stream(self, ctx: RouteContext) -> Served:
        served: Served | None = None
        async for item in self.executor.stream_served(ctx, _REQUEST):
            if isinstance(item, Served):
                served = item
        assert served is not None
        return served

    # ------------------------------------------------------------------ scenario timeline
    def _schedule_timeline(self) -> None:
        sched, end = self.scheduler, self.scenario.duration_s
        t = 0.0
        while t < end:
            sched.call_at(t, self._tick)
            t += self.scenario.tick_s
        for spec in self.scenario.signals:
            self._schedule_signal(spec, end)
        for report in self.scenario.reports:
            self._schedule_reports(report, end)
        for switch in self.scenario.safe_mode:
            sched.call_at(switch.at_s, self._switch(switch))

    def _tick(self) -> None:
        """Re-check every route, as a service's ticker would — unless a decision did it since the last tick
        (``Router.decide`` refreshes every route at most once a virtual second)."""
        if self._decisions == self._ticked_at:
            self.router.refresh()
        self._ticked_at = self._decisions
        for model in self.active.due(self.scheduler.now()):
            self.scheduler.spawn(self.active.check(model))

    def _switch(self, switch: SafeModeSwitch) -> Callable[[], None]:
        def apply() -> None:
            self.router.set_safe_mode(
                switch.enabled, tenant=switch.tenant, reason=switch.reason, by="scenario"
            )

        return apply

    def _schedule_signal(self, spec: SignalSpec, end: float) -> None:
        until = min(end, spec.until_s) if spec.until_s is not None else end
        at = spec.at_s
        while at < until:
            self.scheduler.call_at(
                at, lambda: self.router.signal(spec.model, spec.status, ttl_s=spec.ttl_s, source=spec.source)
            )
            if spec.every_s is None or spec.every_s <= 0:
                break
            at += spec.every_s

    def _schedule_reports(self, spec: ClientReport, end: float) -> None:
        until = min(end, spec.until_s) if spec.until_s is not None else end
        outcome = Outcome(
            model=spec.model,
            ok=spec.ok,
            error=None if spec.ok else (spec.error or "server_error"),
            latency_ms=spec.latency_ms,
        )
        gap, at = 1.0 / spec.rps, spec.at_s
        while at < until:
            self.scheduler.call_at(at, lambda: self.router.report(outcome))
            at += gap

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Schedule the traffic and the timeline (t = 0)."""
        self._schedule_timeline()
        self._traffic.start(self.scheduler, self.scenario.duration_s, self._submit)

    def advance(self, t_s: float) -> None:
        """Run virtual time up to ``t_s`` seconds since the start."""
        began = time.perf_counter()
        self.scheduler.run_until(t_s)
        self._wall += time.perf_counter() - began

    def finish(self) -> SimRun:
        """Let the requests still in flight finish; the run's data."""
        self.advance(self.scenario.duration_s)
        began = time.perf_counter()
        self.scheduler.run_until(None)
        self._wall += time.perf_counter() - began
        run = self.run_data
        run.counters = {name: m.counters for name, m in self.models.items()}
        run.decision_latency_ns = self._latency
        run.wall_s = self._wall
        items = getattr(self.executor.queue, "items", None)
        run.human_queue = len(items()) if callable(items) else 0
        return run

    def run(self, progress: Callable[[float, float], None] | None = None) -> SimRun:
        """The whole scenario; ``progress(t_s, duration_s)`` is called as virtual time advances."""
        self.start()
        duration = self.scenario.duration_s
        step = max(self.scenario.tick_s, duration / 200.0)
        t = 0.0
        while t < duration:
            t = min(duration, t + step)
            self.advance(t)
            if progress is not None:
                progress(t, duration)
        return self.finish()


def simulate(
    bundle: LoadedBundle | Mapping[str, Any] | str | Path, scenario: Scenario, **options: Any
) -> dict[str, Any]:
    """Run ``scenario`` on ``bundle`` and return the report (CONTRACT §7 keys and more)."""
    from routeguard.sim.report import build_report

    return build_report(Simulation(bundle, scenario, **options).run())
