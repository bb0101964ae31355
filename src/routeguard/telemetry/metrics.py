"""Prometheus metrics (CONTRACT §5) on a dedicated registry, fed by the service.

Labels are bounded by the bundle: `policy`, `model` (and small enums: status, result, action, outcome,
state, scope, notifier). Never a tenant id or a trace id. Encodings:

- `agent_routing_hit_rate{policy}`: share of requests served by the first model their decision chose, over
  the requests of the last `hit_window_s` (300 s), at most the last `hit_window_max` (10,000) per policy. A
  terminal first decision, a fallback and a failed request are misses. No requests in the window: no series.
- `agent_routing_model_health{policy,model}`: 0 healthy, 1 degraded, 1 stale (treated as degraded),
  2 probing, 3 unhealthy.
- `agent_routing_safe_mode_active{scope="global"}` 0/1; `{scope="tenants"}` the count of tenants in it.
- `agent_routing_requests_total{policy,model,outcome}`: outcome `primary` (served by the first choice),
  `fallback` (served by another model), `terminal`, `error`; `model` is the serving model, or `none`.
- `agent_routing_fallback_total{policy,from_model,result}`: one per request that left its first model;
  `result` `succeeded` when another model served it, `failed` when it ended terminal or in an error.
- `agent_routing_terminal_total{policy,action}` counts `agent.routing.terminal` events.
- Deployments (CONTRACT §1): `agent_routing_deployment_requests_total{policy,model,deployment}` counts requests
  served by each deployment of a model that has them; `agent_routing_deployment_health{policy,model,deployment}`
  is a deployment's own breaker (codes as above). `deployment` comes from the bundle, so it stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from routeguard.core.events import (
    Event,
    FallbackUsed,
    HealthChanged,
    RouteChanged,
    SafeModeChanged,
    TerminalEngaged,
)

if TYPE_CHECKING:
    from routeguard.core.context import SafeMode
    from routeguard.core.decision import Decision
    from routeguard.execution.executor import Served

__all__ = ["DECISION_BUCKETS", "HEALTH_CODES", "PUBLISH_BUCKETS", "HitRateWindow", "RoutingMetrics"]

DECISION_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.2, 0.5, 1.0,
)
PUBLISH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HEALTH_CODES: Mapping[str, int] = {"healthy": 0, "degraded": 1, "stale": 1, "probing": 2, "unhealthy": 3}
NO_MODEL = "none"


class HitRateWindow:
    """Per policy, (time, hit) of recent requests; thread-safe. `rates()` drops entries past the window."""

    def __init__(self, window_s: float, max_requests: int, clock: Callable[[], float]) -> None:
        self.window_s, self.max_requests, self._clock = window_s, max_requests, clock
        self._entries: dict[str, deque[tuple[float, bool]]] = {}
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, policy: str, hit: bool) -> None:
        now = self._clock()
        with self._lock:
            entries = self._entries.setdefault(policy, deque())
            entries.append((now, hit))
            self._hits[policy] = self._hits.get(policy, 0) + int(hit)
            if len(entries) > self.max_requests:
                self._drop_oldest(policy, entries)

    def _drop_oldest(self, policy: str, entries: deque[tuple[float, bool]]) -> None:
        _t, hit = entries.popleft()
        self._hits[policy] -= int(hit)

    def rates(self) -> dict[str, float]:
        horizon = self._clock() - self.window_s
        out: dict[str, float] = {}
        with self._lock:
            for policy, entries in list(self._entries.items()):
                while entries and entries[0][0] < horizon:
                    self._drop_oldest(policy, entries)
                if entries:
                    out[policy] = self._hits[policy] / len(entries)
                else:
                    del self._entries[policy]
                    del self._hits[policy]
        return out


class _HitRateCollector(Collector):
    NAME = "agent_routing_hit_rate"
    HELP = "Share of requests served by the first model their decision chose (sliding window)."

    def __init__(self, window: HitRateWindow) -> None:
        self._window = window

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["policy"])
        for policy, rate in sorted(self._window.rates().items()):
            family.add_metric([policy], rate)
        yield family

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.NAME, self.HELP, labels=["policy"])]


class RoutingMetrics:
    """Everything `GET /metrics` shows. Methods are cheap, thread-safe and never raise on odd input."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        hit_window_s: float = 300.0,
        hit_window_max: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "agent_routing_decisions_total", "Route decisions, by resolved policy and status.",
            ["policy", "status"], registry=r)
        self.decision_latency = Histogram(
            "agent_routing_decision_latency_seconds", "Time to make one route decision.",
            ["policy"], buckets=DECISION_BUCKETS, registry=r)
        self.fallbacks = Counter(
            "agent_routing_fallback_total", "Requests that left their first model, by how they ended.",
            ["policy", "from_model", "result"], registry=r)
        self.fallback_hops = Counter(
            "agent_routing_fallback_hops_total", "Failed tries that moved a request to the next model.",
            ["policy", "from_model", "error_class"], registry=r)
        self.hit_window = HitRateWindow(hit_window_s, hit_window_max, clock)
        r.register(_HitRateCollector(self.hit_window))
        self.safe_mode = Gauge(
            "agent_routing_safe_mode_active", "Safe mode: global 0/1; tenants: how many tenants.",
            ["scope"], registry=r)
        self.publish_latency = Histogram(
            "agent_routing_policy_publish_latency_seconds",
            "Time from a publish request to it taking effect.", buckets=PUBLISH_BUCKETS, registry=r)
        self.publish_failures = Counter(
            "agent_routing_policy_publish_failures_total", "Publishes that failed.", registry=r)
        self.model_health = Gauge(
            "agent_routing_model_health",
            "Model health under a policy: 0 healthy, 1 degraded or stale, 2 probing, 3 unhealthy.",
            ["policy", "model"], registry=r)
        self.outbox_age = Gauge(
            "agent_routing_notification_outbox_age_seconds",
            "How long the oldest undelivered notification has waited (0: none).", registry=r)
        self.notifications = Counter(
            "agent_routing_notification_attempts_total", "Notification delivery attempts.",
            ["notifier", "result"], registry=r)
        self.routing_changes = Counter(
            "agent_routing_routing_changes_total", "Changes of the model serving a policy.",
            ["policy"], registry=r)
        self.terminals = Counter(
            "agent_routing_terminal_total", "Requests that got the policy's terminal action.",
            ["policy", "action"], registry=r)
        self.requests = Counter(
            "agent_routing_requests_total", "Requests run to an end, by serving model and outcome.",
            ["policy", "model", "outcome"], registry=r)
        self.deployment_requests = Counter(
            "agent_routing_deployment_requests_total", "Requests served, by the deployment of the model that answered.",
            ["policy", "model", "deployment"], registry=r)
        self.deployment_health = Gauge(
            "agent_routing_deployment_health",
            "A deployment's own health under a policy: 0 healthy, 1 degraded or stale, 2 probing, 3 unhealthy.",
            ["policy", "model", "deployment"], registry=r)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}  # hot-path label children, by values
        self._safe_global = False
        self._safe_tenants: set[str] = set()  # held in memory for the count only, never exported
        self._lock = threading.Lock()
        self.safe_mode.labels(scope="global").set(0)
        self.safe_mode.labels(scope="tenants").set(0)
        self.outbox_age.set(0)

    # ------------------------------------------------------------------ decisions and requests
    def _child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, memoised: labels() validates and locks on every call (per request here)."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def observe_decision(self, decision: Decision, seconds: float) -> None:
        self._child(self.decisions, decision.policy, decision.status.value).inc()
        self._child(self.decision_latency, decision.policy).observe(max(0.0, seconds))

    def observe_served(self, served: Served) -> None:
        """An `Executor` observer: a request ended served (by a model) or with the terminal action."""
        first = served.decision
        if served.model is None:
            outcome = "terminal"
        elif served.model == first.model:
            outcome = "primary" if not served.fell_back else "fallback"
        else:
            outcome = "fallback"
        self._child(self.requests, first.policy, served.model or NO_MODEL, outcome).inc()
        if served.deployment is not None and served.model is not None:
            self._child(self.deployment_requests, first.policy, served.model, served.deployment).inc()
        self.hit_window.record(first.policy, outcome == "primary")
        if first.model is not None and (served.fell_back or served.model != first.model):
            result = "succeeded" if served.model is not None else "failed"
            self.fallbacks.labels(policy=first.policy, from_model=first.model, result=result).inc()

    def observe_failed(self, policy: str, first_model: str | None, *, fell_back: bool = False) -> None:
        """A request that ended in an error the caller saw (no `Served` exists for it)."""
        self.requests.labels(policy=policy, model=NO_MODEL, outcome="error").inc()
        self.hit_window.record(policy, False)
        if fell_back and first_model is not None:
            self.fallbacks.labels(policy=policy, from_model=first_model, result="failed").inc()

    # ------------------------------------------------------------------ events (a Router sink)
    def observe_event(self, event: Event) -> None:
        if isinstance(event, RouteChanged):
            self.routing_changes.labels(policy=event.policy).inc()
        elif isinstance(event, TerminalEngaged):
            self.terminals.labels(policy=event.policy, action=event.action).inc()
        elif isinstance(event, FallbackUsed):
            self.fallback_hops.labels(
                policy=event.policy, from_model=event.from_model, error_class=event.error_class).inc()
        elif isinstance(event, HealthChanged):
            self.set_model_health(event.policy, event.model, event.to_state, event.deployment)
        elif isinstance(event, SafeModeChanged):
            with self._lock:
                if event.tenant is None:
                    self._safe_global = event.enabled
                elif event.enabled:
                    self._safe_tenants.add(event.tenant)
                else:
                    self._safe_tenants.discard(event.tenant)
                self._export_safe_mode()

    def __call__(self, event: Event) -> None:
        self.observe_event(event)

    # ------------------------------------------------------------------ state set by the service
    def set_model_health(self, policy: str, model: str, state: str, deployment: str | None = None) -> None:
        code = HEALTH_CODES.get(str(getattr(state, "value", state)))
        if code is None:
            return
        if deployment is None:
            self.model_health.labels(policy=policy, model=model).set(code)
        else:
            self.deployment_health.labels(policy=policy, model=model, deployment=deployment).set(code)

    def sync_health(self, health: Mapping[str, Any]) -> None:
        """From `Router.health()`: `{model: {"policies": {policy: {"state": ...}}}}`."""
        for model, entry in health.items():
            for policy, view in ((entry or {}).get("policies") or {}).items():
                self.set_model_health(policy, model, (view or {}).get("state", ""))
            for deployment, found in ((entry or {}).get("deployments") or {}).items():
                for policy, view in ((found or {}).get("policies") or {}).items():
                    self.set_model_health(policy, model, (view or {}).get("state", ""), deployment)

    def set_safe_mode(self, state: SafeMode) -> None:
        with self._lock:
            self._safe_global = state.global_on
            self._safe_tenants = set(state.tenants)
            self._export_safe_mode()

    def _export_safe_mode(self) -> None:
        self.safe_mode.labels(scope="global").set(1 if self._safe_global else 0)
        self.safe_mode.labels(scope="tenants").set(len(self._safe_tenants))

    def observe_publish(self, seconds: float, ok: bool) -> None:
        if ok:
            self.publish_latency.observe(max(0.0, seconds))
        else:
            self.publish_failures.inc()

    def set_outbox_age(self, seconds: float | None) -> None:
        self.outbox_age.set(max(0.0, seconds or 0.0))

    def observe_notification(self, notifier: str, ok: bool) -> None:
        self.notifications.labels(notifier=notifier, result="delivered" if ok else "failed").inc()

    # ------------------------------------------------------------------ exposition
    def render(self) -> tuple[bytes, str]:
        """The body and content type of `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def sample_names(self) -> set[str]:
        """Every series name this registry can expose (`*_total`, `*_bucket`, …), for rule checks."""
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                    "gauge": ("",), "summary": ("_sum", "_count", "_created")}
        names: set[str] = set()
        for family in self.registry.collect():  # every family is listed, with or without samples
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        return names
