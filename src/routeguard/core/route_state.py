"""Route state: which model actually serves each policy in each published scope, and when that changes.

Pure: the caller passes a *reference decision* (the policy's decision for a neutral request) and the time;
a change of the serving model becomes exactly one :class:`RouteChanged` (a canary ramp is one change plus
:class:`CanaryStepped` events). Probes of a recovering model are not changes; the switch back is.

A canary step is taken on evidence (CONTRACT §1): at most one per ``step``, and only when the new model
has at least ``min_samples`` judged outcomes since the last step and is healthy (its figures below the
degraded thresholds); otherwise the ramp holds at its share. The serving routes can be exported and
restored (a restart starts from them; a move the evidence then makes is an ordinary logged change).
"""

from __future__ import annotations

from dataclasses import dataclass

from routeguard.core.decision import Decision
from routeguard.core.engine import CanaryRamp
from routeguard.core.events import CanaryStepped, Event, RouteChanged, rfc3339
from routeguard.core.health_view import HealthState, HealthView
from routeguard.core.table import CompiledPolicy, RoutingTable

__all__ = ["RouteState", "ServingRoute"]


@dataclass(slots=True)
class ServingRoute:
    policy: str
    scope: str
    model: str | None  # None: the terminal action serves
    since: float
    reason: str
    version: int | None
    ramp: CanaryRamp | None = None
    ramp_percent: float = 0.0
    ramp_checked_at: float = 0.0  # when the ramp last stepped (or started)
    ramp_evidence: int = 0  # the new model's judged outcomes when the ramp last stepped

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "policy": self.policy,
            "scope": self.scope,
            "model": self.model,
            "since": rfc3339(self.since),
            "reason": self.reason,
            "policy_version": self.version,
        }
        if self.ramp is not None:
            out["canary"] = {
                "from_model": self.ramp.from_model,
                "to_model": self.ramp.to_model,
                "percent": self.ramp_percent,
            }
        return out


class RouteState:
    """Serving model per (policy, scope). Not thread-safe; the runtime holds a lock around it."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], ServingRoute] = {}

    def routes(self) -> list[ServingRoute]:
        return list(self._routes.values())

    def get(self, policy: str, scope: str) -> ServingRoute | None:
        return self._routes.get((policy, scope))

    def ramp(self, policy: str, scope: str) -> CanaryRamp | None:
        route = self._routes.get((policy, scope))
        return route.ramp if route is not None else None

    def publish(self, table: RoutingTable, scope: str, now: float) -> None:
        """A version went live for ``scope``: every policy starts on its primary."""
        for key in [k for k in self._routes if k[1] == scope]:
            del self._routes[key]
        for name, compiled in table.policies.items():
            self._routes[(name, scope)] = ServingRoute(
                name, scope, compiled.policy.primary[0].model, now, "published", table.version
            )

    def retire(self, scope: str) -> None:
        for key in [k for k in self._routes if k[1] == scope]:
            del self._routes[key]

    def observe(
        self,
        compiled: CompiledPolicy,
        table: RoutingTable,
        scope: str,
        reference: Decision,
        health: HealthView,
        now: float,
    ) -> list[Event]:
        """Compare the reference decision with the serving model; return the events it causes."""
        policy = compiled.policy
        route = self._routes.get((policy.name, scope))
        if route is None:
            route = ServingRoute(policy.name, scope, policy.primary[0].model, now, "published", table.version)
            self._routes[(policy.name, scope)] = route
        events: list[Event] = self._step_ramp(route, compiled, health, now)
        target = reference.model
        if reference.probe or _same_route(compiled, route.model, target):
            return events
        old = route.model
        reason = _reason(reference, old, target)
        expected = None
        if old is not None:
            h = health.model_health(policy.name, policy.health, old, now)
            expected = h.cooldown_left_s
            forced = h.state in (HealthState.UNHEALTHY, HealthState.PROBING) or _hard_rejected(reference, old)
        else:
            forced = True
        ramp = None
        if policy.canary is not None and old is not None and target is not None and not forced:
            ramp = CanaryRamp(old, target, now, policy.canary.percent)
        cand = table.candidate(policy.name, target) if target is not None else None
        verification = (
            cand.verification()
            if cand is not None
            else {
                "approved": None,
                "approval_ref": None,
                "capabilities_within_primary": None,
                "clearance_ok": None,
                "residency_ok": None,
            }
        )
        route.model, route.since, route.reason, route.version = target, now, reason, table.version
        route.ramp, route.ramp_checked_at = ramp, now
        route.ramp_evidence = health.total_judged(target) if target is not None else 0
        route.ramp_percent = policy.canary.percent if ramp is not None and policy.canary is not None else 0.0
        events.append(
            RouteChanged(
                policy=policy.name,
                scope=scope,
                from_model=old,
                to_model=target,
                reason=reason,
                verification=verification,
                expected_duration_s=expected,
                at=now,
                policy_version=table.version,
                terminal_action=policy.terminal.action.value if target is None else None,
                canary_percent=route.ramp_percent if ramp is not None else None,
                notify=policy.notify,
            )
        )
        return events

    def _step_ramp(self, route: ServingRoute, compiled: CompiledPolicy, health: HealthView, now: float) -> list[Event]:
        ramp, canary = route.ramp, compiled.policy.canary
        if ramp is None or canary is None:
            return []
        cfg = compiled.policy.health
        h = health.model_health(route.policy, cfg, ramp.to_model, now)
        evidence = health.total_judged(ramp.to_model) - route.ramp_evidence
        if now - route.ramp_checked_at < canary.step_s or h.state is not HealthState.HEALTHY:
            return []
        if evidence < cfg.min_samples:
            return []  # canary_hold: no step without the evidence that the new model serves well
        percent = min(100.0, route.ramp_percent * 2)
        route.ramp_percent, route.ramp_checked_at = percent, now
        route.ramp_evidence += evidence
        route.ramp = None if percent >= 100 else CanaryRamp(ramp.from_model, ramp.to_model, ramp.started_at, percent)
        return [CanaryStepped(route.policy, route.scope, ramp.to_model, percent, now)]

    # ----------------------------------------------------------------- durable state
    def export_routes(self) -> list[dict[str, object]]:
        """The serving model per (policy, scope) as plain data, for the store."""
        return [
            {"policy": r.policy, "scope": r.scope, "model": r.model, "since": r.since, "reason": r.reason,
             "version": r.version}
            for r in self._routes.values()
        ]

    def import_routes(self, routes: list[dict[str, object]]) -> int:
        """Restore exported routes whose policy, scope and version are live now; how many were restored."""
        restored = 0
        for item in routes:
            key = (str(item.get("policy")), str(item.get("scope")))
            route = self._routes.get(key)
            if route is None or route.version != item.get("version"):
                continue
            model = item.get("model")
            route.model = str(model) if model is not None else None
            route.since = float(item.get("since", route.since))  # type: ignore[arg-type]
            route.reason = str(item.get("reason", route.reason))
            restored += 1
        return restored


def _same_route(compiled: CompiledPolicy, serving: str | None, target: str | None) -> bool:
    if serving == target:
        return True
    arms = compiled.policy.primary_models
    return len(arms) > 1 and serving in arms and target in arms  # arms together are the primary


_SOFT_REASONS = frozenset({"degraded", "stale", "quality", "trigger_not_met", "canary_hold"})


def _hard_rejected(reference: Decision, model: str) -> bool:
    """``model`` was refused for something a canary must not wait out (health, governance, safe mode)."""
    return any(r.model == model and r.reason not in _SOFT_REASONS for r in reference.rejected)


def _reason(reference: Decision, old: str | None, target: str | None) -> str:
    for r in reference.rejected:
        if r.model == old:
            return f"{old} {r.reason}: {r.detail}" if r.detail and r.detail != r.reason else f"{old} {r.reason}"
    if target is None:
        return reference.terminal_reason or "no eligible model"
    if old is None:
        return f"{target} available again"
    return f"{target} preferred again (healthy)"
