"""The pure decision engine: ``decide(context, table, health, safe_mode, now) -> Decision``.

No I/O, no clock, no randomness: the same inputs (and trace id) give the same decision.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from routeguard.core.context import RouteContext, RoutingError, SafeMode
from routeguard.core.decision import Decision, DecisionStatus, Rejection
from routeguard.core.health_view import HealthState, HealthView, ModelHealth
from routeguard.core.resolve import RequestKey
from routeguard.core.table import Candidate, CompiledPolicy, RoutingTable

__all__ = ["CanaryRamp", "bucket", "canary_percent", "decide", "decide_policy", "resolve_policy"]

_NO_SAFE_MODE = SafeMode()
_UNAVAILABLE = frozenset({"unavailable"})
_DEGRADED = frozenset({"degraded"})
_NEG_INF = float("-inf")
_NOT_BACKUPS = (HealthState.UNHEALTHY, HealthState.PROBING)
_SOFT = frozenset({"degraded", "stale", "quality", "trigger_not_met", "canary_hold"})  # a canary may wait these out


@dataclass(frozen=True, slots=True)
class CanaryRamp:
    """A ramp of a policy's traffic from ``from_model`` onto ``to_model`` that began at ``started_at``."""

    from_model: str
    to_model: str
    started_at: float
    percent: float | None = None  # the share the ramp has reached (route state); None: from the time alone


def bucket(key: str, buckets: int = 10_000) -> int:
    """A stable bucket for sticky splits (the same in every process)."""
    return zlib.crc32(key.encode("utf-8")) % buckets


def canary_percent(percent: float, step_s: float, started_at: float, now: float) -> float:
    """p, 2p, 4p … 100 %, one step per ``step_s``."""
    steps = max(0, int((now - started_at) // step_s)) if step_s > 0 else 64
    return min(100.0, percent * float(2 ** min(steps, 64)))


def resolve_policy(context: RouteContext, table: RoutingTable) -> CompiledPolicy:
    """The policy a request resolves to, after a permitted ``metadata.policy`` override."""
    policy = table.index.fast(context.agent, context.task_type) if context.agent is not None else None
    if policy is None:
        key = RequestKey(context.agent, context.task_type, context.tenant, context.tags, context.business_line)
        policy = table.index.resolve(key)
        if policy is None:
            if context.agent is not None and not table.index.knows_agent(context.agent):
                raise RoutingError("unknown_agent", f"no policy serves agent {context.agent!r}", 404)
            raise RoutingError("no_matching_policy", f"no policy matches this request ({_describe(key)})", 404)
    compiled = table.policies[policy.name]
    override = context.policy_override
    if override is not None and override != policy.name:
        if override not in policy.overrides or override not in table.policies:
            raise RoutingError(
                "override_not_allowed",
                f"policy {policy.name!r} does not allow metadata.policy={override!r}",
                403,
            )
        compiled = table.policies[override]
    return compiled


def decide(
    context: RouteContext,
    table: RoutingTable,
    health: HealthView,
    safe_mode: SafeMode = _NO_SAFE_MODE,
    now: float = 0.0,
    canary: CanaryRamp | None = None,
) -> Decision:
    """Choose a model for ``context`` under ``table``'s policy, or the policy's terminal action."""
    return decide_policy(resolve_policy(context, table), context, table, health, safe_mode, now, canary)


def decide_policy(
    compiled: CompiledPolicy,
    context: RouteContext,
    table: RoutingTable,
    health: HealthView,
    safe_mode: SafeMode = _NO_SAFE_MODE,
    now: float = 0.0,
    canary: CanaryRamp | None = None,
) -> Decision:
    """The decision under one already-resolved policy (used by route state for the serving model)."""
    policy = compiled.policy
    profile = compiled.profile
    rank = _request_rank(context, table, compiled)
    if context.capabilities and profile is not None and profile.capabilities is not None:
        outside = context.capabilities - profile.capabilities
        if outside:
            raise RoutingError(
                "capability_not_allowed",
                f"capabilities {', '.join(sorted(outside))} are outside the ceiling of profile {profile.name}",
            )
    safe = safe_mode.active_for(context.tenant)
    arm_index = _learned_arm(compiled, context) if policy.learned is not None else _pick_arm(compiled, context)
    chain = compiled.chain_for_arm(arm_index)
    budget = context.budget_usd
    if policy.budget_usd is not None:
        budget = policy.budget_usd if budget is None else min(budget, policy.budget_usd)
    walk = _Walk(context, compiled, health, now, safe, rank, budget)
    selected = walk.run(chain)
    if selected is not None and canary is not None and policy.canary is not None:
        selected = walk.apply_canary(selected, canary)
    return walk.decision(table, selected, chain, arm_index, safe)


class _Walk:
    """One pass over a policy's chain; kept as a small object so the steps stay readable."""

    __slots__ = ("budget", "compiled", "context", "degraded_skip", "health", "now", "probe", "rank", "rejected",
                 "safe", "selected_health")

    def __init__(
        self,
        context: RouteContext,
        compiled: CompiledPolicy,
        health: HealthView,
        now: float,
        safe: bool,
        rank: int,
        budget: float | None,
    ) -> None:
        self.context = context
        self.compiled = compiled
        self.health = health
        self.now = now
        self.safe = safe
        self.rank = rank
        self.budget = budget
        self.rejected: list[Rejection] = []
        self.degraded_skip: Candidate | None = None
        self.probe: Candidate | None = None  # a degraded model chosen for this request as a probe
        self.selected_health: ModelHealth | None = None

    def model_health(self, cand: Candidate) -> ModelHealth:
        policy = self.compiled.policy
        return self.health.model_health(policy.name, policy.health, cand.name, self.now)

    def run(self, chain: tuple[Candidate, ...]) -> Candidate | None:
        trouble: frozenset[str] = _UNAVAILABLE
        trouble_since = _NEG_INF
        for i, cand in enumerate(chain):
            fb = cand.fallback
            if i > 0 and fb is not None:
                if not (fb.on & trouble):
                    needs, have = "/".join(sorted(fb.on)), "/".join(sorted(trouble))
                    self.reject(cand, "trigger_not_met", f"needs {needs}; have {have}")
                    continue
                lasted = self.now - trouble_since
                if lasted < fb.after_s:
                    self.reject(cand, "trigger_not_met", f"trouble has lasted {lasted:.0f}s < after {fb.after_s:g}s")
                    break
            reason, detail = self.request_reason(cand)
            if reason is not None:
                self.reject(cand, reason, detail)
                trouble, trouble_since = _UNAVAILABLE, _NEG_INF
                continue
            verdict = self.health_verdict(cand, chain, i)
            if verdict is None:
                return cand  # health_verdict kept the health it judged in selected_health
            trouble, trouble_since = verdict
        if self.degraded_skip is not None:
            cand = self.degraded_skip
            self.rejected = [r for r in self.rejected if r.model != cand.name]
            self.selected_health = self.model_health(cand)
            return cand
        return None

    def request_reason(self, cand: Candidate) -> tuple[str | None, str]:
        """Governance and the request's own constraints, cheapest first."""
        if cand.static_reason is not None:
            return cand.static_reason, cand.static_detail
        if self.now >= cand.approval_deadline:
            return "approval_expired", f"approval {cand.approval_ref} has expired"
        model = cand.model
        ctx = self.context
        if self.safe and not model.trusted:
            return "safe_mode", "safe mode allows only trusted models"
        if cand.rank < self.rank:
            return "clearance_too_low", f"cleared for {model.clearance}, request is {ctx.data_class}"
        if ctx.region is not None and (model.regions is None or ctx.region not in model.regions):
            return "region_not_allowed", f"does not run in {ctx.region}"
        if ctx.language is not None and model.languages is not None and ctx.language not in model.languages:
            return "language", f"does not support language {ctx.language}"
        if ctx.modalities is not None and not ctx.modalities <= model.modalities:
            return "modality", f"lacks modality {', '.join(sorted(ctx.modalities - model.modalities))}"
        if ctx.capabilities and not ctx.capabilities <= model.capabilities:
            return "missing_capability", f"lacks {', '.join(sorted(ctx.capabilities - model.capabilities))}"
        tokens = ctx.input_tokens + ctx.output_tokens
        if model.context_window is not None and tokens > model.context_window:
            return "context_window", f"{tokens} tokens > context window {model.context_window}"
        if self.budget is not None:
            cost = ctx.input_tokens * cand.cost_in + ctx.output_tokens * cand.cost_out
            if cost > self.budget:
                return "over_budget", f"estimated ${cost:.6f} > budget ${self.budget:.6f}"
        return None, ""

    def health_verdict(
        self, cand: Candidate, chain: tuple[Candidate, ...], i: int
    ) -> tuple[frozenset[str], float] | None:
        """None to select ``cand``; otherwise the trouble it passes on to the next candidate."""
        h = self.selected_health = self.model_health(cand)
        ctx = self.context
        failed = ctx.failures.get(cand.name) if ctx.failures else None
        if failed is not None:
            self.reject(cand, "attempt_failed", f"failed this request with {failed}")
            kinds = {failed}
            if failed in self.compiled.policy.retry.on:
                kinds.add("retryable")
            if h.state is HealthState.UNHEALTHY:
                kinds.add("unavailable")
            since = h.failing_since if h.state is not HealthState.HEALTHY else self.now
            return frozenset(kinds), since
        over = self.limit_reason(cand, h)
        if over is not None:
            self.reject(cand, *over)
            return _UNAVAILABLE, _NEG_INF
        state = h.state
        if state is HealthState.HEALTHY:
            return None
        if state is HealthState.UNHEALTHY:
            self.reject(cand, "unhealthy", h.detail or "unhealthy")
            return _UNAVAILABLE, h.failing_since
        if state is HealthState.PROBING:
            if h.probe_admitted:
                return None
            self.reject(cand, "unhealthy", h.detail or "recovering: waiting for probes")
            return _UNAVAILABLE, h.failing_since
        # degraded or stale: move on only if a later fallback is admitted by `degraded` now
        if self._degraded_admitted_later(chain, i, h.failing_since):
            if state is HealthState.DEGRADED and h.probe_admitted:
                self.probe = cand  # its window lacks the evidence to judge it: this request probes it
                return None
            reason = "quality" if h.by_quality else state.value
            self.reject(cand, reason, h.detail or state.value)
            if self.degraded_skip is None:
                self.degraded_skip = cand
            return _DEGRADED, h.failing_since
        return None

    def _degraded_admitted_later(self, chain: tuple[Candidate, ...], i: int, since: float) -> bool:
        if i + 1 >= len(chain):
            return False
        nxt = chain[i + 1]
        if nxt.fallback is None:
            return True  # another primary arm
        return "degraded" in nxt.fallback.on and self.now - since >= nxt.fallback.after_s

    def apply_canary(self, selected: Candidate, ramp: CanaryRamp) -> Candidate:
        """While a ramp onto ``selected`` runs, requests past its share stay on the model it replaces —
        only while that model is eligible for this request in every respect (governance, the request's
        constraints, quotas, sla, this request's failures, and not unhealthy or probing)."""
        canary = self.compiled.policy.canary
        if canary is None or ramp.to_model != selected.name:
            return selected
        percent = ramp.percent
        if percent is None:
            percent = canary_percent(canary.percent, canary.step_s, ramp.started_at, self.now)
        if percent >= 100 or bucket(self.context.trace_id, 100) < percent:
            return selected
        for cand in self.compiled.candidates:
            if cand.name != ramp.from_model:
                continue
            if self.request_reason(cand)[0] is not None or self.context.failures.get(cand.name):
                return selected
            h = self.model_health(cand)
            if h.state in (HealthState.UNHEALTHY, HealthState.PROBING) or self.limit_reason(cand, h) is not None:
                return selected  # a canary never keeps traffic on a model that is unhealthy or over quota
            if any(r.model == cand.name and r.reason not in _SOFT for r in self.rejected):
                return selected
            self.rejected = [r for r in self.rejected if r.model != cand.name]
            self.reject(selected, "canary_hold", f"canary at {percent:g}% of traffic")
            self.selected_health = h
            return cand
        return selected

    def limit_reason(self, cand: Candidate, h: ModelHealth) -> tuple[str, str] | None:
        """``(quota_exhausted | sla, detail)`` when ``cand`` is over its rpm/tpm quota or slower than the request's
        sla; None otherwise. The walk and the canary hold judge limits the same way."""
        ctx = self.context
        limits = cand.model.limits
        if limits is not None and (
            (limits.rpm is not None and h.requests_last_min >= limits.rpm)
            or (limits.tpm is not None and h.tokens_last_min + ctx.input_tokens + ctx.output_tokens > limits.tpm)
        ):
            return "quota_exhausted", f"{h.requests_last_min} req / {h.tokens_last_min} tokens in the last minute"
        if ctx.sla_ms is not None and h.p95_latency_s is not None and h.p95_latency_s * 1000 > ctx.sla_ms:
            return "sla", f"observed p95 {h.p95_latency_s * 1000:.0f}ms > sla {ctx.sla_ms:.0f}ms"
        return None

    def reject(self, cand: Candidate, reason: str, detail: str) -> None:
        self.rejected.append(Rejection(cand.name, reason, detail))

    def decision(
        self,
        table: RoutingTable,
        selected: Candidate | None,
        chain: tuple[Candidate, ...],
        arm_index: int,
        safe: bool,
    ) -> Decision:
        compiled = self.compiled
        policy = compiled.policy
        ctx = self.context
        arm = policy.primary[arm_index].model if compiled.n_arms > 1 else None
        if selected is None:
            reasons = "; ".join(f"{r.model}: {r.reason}" for r in self.rejected) or "no candidates"
            return Decision(
                trace_id=ctx.trace_id, policy=policy.name, policy_version=table.version,
                policy_hash=table.content_hash, status=DecisionStatus.TERMINAL, model=None, arm=arm,
                backups=(), degraded=False, safe_mode=safe, terminal=policy.terminal,
                terminal_reason=f"no eligible model ({reasons})", cost_estimate_usd=None,
                rejected=tuple(self.rejected), tenant=ctx.tenant,
                score=ctx.score if policy.learned is not None else None,
            )
        h = self.selected_health
        state = h.state if h is not None else HealthState.HEALTHY
        # positional arguments: keyword calls of a 16-field dataclass cost ~1.4 µs more on the hot path
        return Decision(
            ctx.trace_id,  # trace_id
            policy.name,  # policy
            table.version,  # policy_version
            table.content_hash,  # policy_hash
            DecisionStatus.PRIMARY if selected.is_arm else DecisionStatus.FALLBACK,  # status
            selected.name,  # model
            arm,  # arm
            self._backups(chain, selected),  # backups
            state is HealthState.DEGRADED or state is HealthState.STALE,  # degraded
            safe,  # safe_mode
            None,  # terminal
            None,  # terminal_reason
            ctx.input_tokens * selected.cost_in + ctx.output_tokens * selected.cost_out,  # cost_estimate_usd
            tuple(self.rejected),  # rejected
            state is HealthState.PROBING or selected is self.probe,  # probe
            ctx.tenant,  # tenant
            ctx.score if policy.learned is not None else None,  # score
        )

    def _backups(self, chain: tuple[Candidate, ...], selected: Candidate) -> tuple[str, ...]:
        """Later candidates this request could still fail over to (governance and health permitting)."""
        out: list[str] = []
        start = chain.index(selected) + 1 if selected in chain else len(chain)
        policy_name = self.compiled.policy.name
        for cand in chain[start:]:
            if cand.name in out or cand.name == selected.name:
                continue
            if self.request_reason(cand)[0] is not None:
                continue
            if self.health.peek_state(policy_name, cand.name) in _NOT_BACKUPS:
                continue
            out.append(cand.name)
        return tuple(out)


def _request_rank(context: RouteContext, table: RoutingTable, compiled: CompiledPolicy) -> int:
    if context.data_class is None:
        profile = compiled.profile
        return table.data_class_rank.get(profile.data_class, 0) if profile is not None else 0
    rank = table.data_class_rank.get(context.data_class)
    if rank is None:
        known = ", ".join(table.bundle.data_classes)
        raise RoutingError("unknown_data_class", f"unknown data class {context.data_class!r} (known: {known})")
    return rank


def _pick_arm(compiled: CompiledPolicy, context: RouteContext) -> int:
    if compiled.n_arms == 1:
        return 0
    key = context.tenant if context.tenant is not None else context.trace_id
    point = bucket(key, compiled.arm_total) if compiled.arm_total > 0 else 0
    for i, bound in enumerate(compiled.arm_bounds):
        if point < bound:
            return i
    return compiled.n_arms - 1


def _learned_arm(compiled: CompiledPolicy, context: RouteContext) -> int:
    """A learned primary's arm (invariant 8): 1 (weak) when the edge's score clears the threshold, else 0 (strong).

    Only the arm tried first depends on the score: the chosen arm is then judged like any candidate (approval,
    data class, region, safe mode, health), and when it is refused the other arm and the fallbacks follow.
    """
    learned = compiled.policy.learned
    score = context.score
    if learned is None or score is None or score != score:  # no score (or NaN): strong
        return 0
    return 1 if score >= learned.threshold else 0


def _describe(key: RequestKey) -> str:
    parts = [f"{k}={v}" for k, v in (("agent", key.agent), ("task_type", key.task_type), ("tenant", key.tenant)) if v]
    return ", ".join(parts) or "no agent, task type, tenant or tags"
