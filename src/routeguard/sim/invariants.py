"""An independent oracle for the decision-time invariants of CONTRACT §2, applied to every simulated decision.

It re-checks each decision against the bundle itself (not the compiled table the engine used):
approvals at the virtual time, capabilities against every primary arm, clearance and residency,
safe mode, the terminal action, and that a request with nothing request-specific in play follows
the routing log (invariant 6: the serving model it was given had been logged).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from routeguard.core.checks import approval_deadline
from routeguard.core.context import RouteContext, SafeMode
from routeguard.core.decision import Decision, DecisionStatus
from routeguard.core.model import Bundle

__all__ = ["InvariantChecker", "Violation"]

# rejection reasons that depend on the request, not on the policy's state: such a decision may differ
# from the logged serving model without any routing change
_REQUEST_SPECIFIC = frozenset(
    {
        "region_not_allowed",
        "language",
        "modality",
        "context_window",
        "over_budget",
        "sla",
        "missing_capability",
        "clearance_too_low",
        "attempt_failed",
        "canary_hold",
        "quota_exhausted",
    }
)


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: int
    at: float
    trace_id: str
    policy: str
    model: str | None
    detail: str


@dataclass(slots=True)
class InvariantChecker:
    """Feed it ``(context, decision, safe_mode, now)``; it keeps the violations it finds."""

    bundle: Bundle
    violations: list[Violation] = field(default_factory=list)
    checked: int = 0
    serving: dict[str, str | None] = field(default_factory=dict)  # policy -> logged serving model
    _deadlines: dict[tuple[str, str], float] = field(default_factory=dict)
    _ranks: dict[str, int] = field(default_factory=dict)
    _static_cache: dict[tuple[str, str], tuple[float, list[tuple[int, str]], int, frozenset[str], bool]] = (
        field(default_factory=dict)
    )

    def __post_init__(self) -> None:
        for a in self.bundle.approvals:
            key = (a.model, a.profile)
            self._deadlines[key] = max(self._deadlines.get(key, float("-inf")), approval_deadline(a))
        for name, policy in self.bundle.policies.items():
            self.serving[name] = policy.primary[0].model
        self._ranks = {name: i for i, name in enumerate(self.bundle.data_classes)}

    def approved(self, model: str, profile: str, now: float) -> bool:
        return now < self._deadlines.get((model, profile), float("-inf"))

    def logged(self, policy: str, model: str | None) -> None:
        """A routing change was logged (feed it every RouteChanged of the stable scope)."""
        self.serving[policy] = model

    def _fail(self, n: int, now: float, ctx: RouteContext, d: Decision, detail: str) -> None:
        self.violations.append(Violation(n, now, ctx.trace_id, d.policy, d.model, detail))

    def _static(
        self, policy: str, model: str
    ) -> tuple[float, list[tuple[int, str]], int, frozenset[str], bool]:
        """What holds for every request of ``policy`` served by ``model``: (approval deadline, problems,
        clearance rank, regions, trusted). Cached: the bundle does not change during a run."""
        key = (policy, model)
        found = self._static_cache.get(key)
        if found is not None:
            return found
        p = self.bundle.policies[policy]
        m = self.bundle.models.get(model)
        profile = self.bundle.profiles.get(p.profile)
        problems: list[tuple[int, str]] = []
        if m is None or profile is None:
            found = (float("-inf"), [(1, "model or profile unknown to the bundle")], -1, frozenset(), False)
            self._static_cache[key] = found
            return found
        if model not in p.primary_models:
            for arm in p.primary:
                primary = self.bundle.models.get(arm.model)
                if primary is None or not m.capabilities <= primary.capabilities:
                    problems.append((2, f"{model} has capabilities beyond primary {arm.model}"))
        regions = m.regions or frozenset()
        if profile.regions is not None and not regions <= profile.regions:
            problems.append((3, f"{model} runs outside the profile's regions"))
        rank = self._ranks.get(m.clearance, -1)
        if rank < self._ranks.get(profile.data_class, len(self._ranks)):
            problems.append((3, f"clearance {m.clearance} below the profile's {profile.data_class}"))
        deadline = self._deadlines.get((model, profile.name), float("-inf"))
        found = (deadline, problems, rank, regions, m.trusted)
        self._static_cache[key] = found
        return found

    def check(self, ctx: RouteContext, d: Decision, safe: SafeMode, now: float) -> None:
        self.checked += 1
        if d.policy not in self.bundle.policies:
            self._fail(1, now, ctx, d, f"decision names unknown policy {d.policy}")
            return
        if d.model is None:
            if d.status is not DecisionStatus.TERMINAL or d.terminal is None:
                self._fail(5, now, ctx, d, "no model, but the decision is not the terminal action")
            return
        if d.status is DecisionStatus.TERMINAL:
            self._fail(5, now, ctx, d, "a terminal decision names a model")
        deadline, problems, rank, regions, trusted = self._static(d.policy, d.model)
        for n, detail in problems:
            self._fail(n, now, ctx, d, detail)
        if now >= deadline:
            self._fail(1, now, ctx, d, f"{d.model} has no current approval for the policy's profile")
        if ctx.data_class is not None and rank < self._ranks.get(ctx.data_class, len(self._ranks)):
            self._fail(3, now, ctx, d, f"clearance below the request's {ctx.data_class}")
        if ctx.region is not None and ctx.region not in regions:
            self._fail(3, now, ctx, d, f"{d.model} does not run in the request's region {ctx.region}")
        if not trusted and safe.active_for(ctx.tenant):
            self._fail(4, now, ctx, d, f"safe mode is on and {d.model} is not trusted")
        self._check_logged(ctx, d, now)

    def _check_logged(self, ctx: RouteContext, d: Decision, now: float) -> None:
        if d.probe or ctx.failures or any(r.reason in _REQUEST_SPECIFIC for r in d.rejected):
            return
        policy = self.bundle.policies[d.policy]
        if (
            len(policy.primary) > 1
            or policy.canary is not None
            or (
                ctx.data_class is not None
                and (ctx.data_class != self.bundle.profiles[policy.profile].data_class)
            )
        ):
            return
        serving = self.serving.get(d.policy)
        if serving != d.model:
            self._fail(6, now, ctx, d, f"served {d.model} while the routing log says {serving}")
