"""Per task class: the policy that serves it (CONTRACT §1 resolution), its current model, and which models
may legally serve it. Privacy (clearance) and residency (regions) are hard constraints: a model that fails
them is never a candidate, whatever it costs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from routeguard.core.checks import approval_deadline, current_approval
from routeguard.core.model import Bundle, Policy
from routeguard.core.resolve import PolicyIndex, RequestKey
from routeguard.review.history import RecentChange

__all__ = ["CandidateCheck", "ClassContext", "build_contexts", "check_candidate"]

PRIVACY_REASONS = frozenset({"clearance_too_low", "region_not_allowed"})


@dataclass(frozen=True, slots=True)
class CandidateCheck:
    """Whether ``model`` may serve a class, and why not."""

    model: str
    eligible: bool
    reasons: tuple[str, ...]

    @property
    def privacy_blocked(self) -> bool:
        return bool(PRIVACY_REASONS & set(self.reasons))

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "eligible": self.eligible, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class ClassContext:
    """Everything about one task class that does not come from its evaluations."""

    task_class: str
    index: int
    policy: str | None
    profile: str | None
    current: str | None
    data_class: str | None  # effective: the more sensitive of the profile's and the observed one
    observed_data_class: str | None
    volume: float  # traffic share weight (telemetry count, else evaluated tasks)
    candidates: tuple[CandidateCheck, ...]
    blockers: tuple[str, ...]  # why the class cannot be re-routed at all (unrouted, ambiguous, A/B test)
    deprecation: str | None  # the current model is losing its approval, or is no longer allowed
    privacy_gap: str | None  # the class handles data its profile is not meant for
    budget_usd: float | None
    recent: RecentChange | None

    def check(self, model: str) -> CandidateCheck | None:
        return next((c for c in self.candidates if c.model == model), None)

    @property
    def eligible(self) -> tuple[str, ...]:
        return tuple(c.model for c in self.candidates if c.eligible)

    def to_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "profile": self.profile,
            "data_class": self.data_class,
            "observed_data_class": self.observed_data_class,
            "candidates": [c.to_dict() for c in self.candidates],
            "recent_change": self.recent.to_dict() if self.recent else None,
        }


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def check_candidate(
    bundle: Bundle, model: str, profile_name: str, data_class: str, now: float, expiry_window_s: float
) -> CandidateCheck:
    """Every governance reason ``model`` may not serve ``profile_name`` traffic of ``data_class``."""
    spec = bundle.models.get(model)
    profile = bundle.profiles.get(profile_name)
    if spec is None or profile is None:
        return CandidateCheck(model, False, ("not_in_bundle",) if spec is None else ("unknown_profile",))
    reasons: list[str] = []
    approval, valid = current_approval(bundle, model, profile_name, now)
    if approval is None:
        reasons.append("unapproved")
    elif not valid:
        reasons.append("approval_expired")
    elif approval_deadline(approval) < now + expiry_window_s:
        reasons.append("approval_expiring")
    if bundle.data_class_rank(spec.clearance) < bundle.data_class_rank(data_class):
        reasons.append("clearance_too_low")
    if profile.regions is not None and (spec.regions is None or not spec.regions <= profile.regions):
        reasons.append("region_not_allowed")
    if not profile.requires <= spec.capabilities:
        reasons.append("missing_required_capability")
    if profile.capabilities is not None and not spec.capabilities <= profile.capabilities:
        reasons.append("capability_exceeds_profile")
    return CandidateCheck(model, not reasons, tuple(reasons))


def _serving(index: PolicyIndex, agent: str | None, klass: str) -> tuple[Policy | None, str | None]:
    best = index.best(RequestKey(agent=agent, task_type=klass))
    if not best:
        return None, "unrouted: no policy matches this task class"
    if len(best) > 1:
        return None, "ambiguous: policies " + ", ".join(sorted(p.name for p in best)) + " match equally"
    return best[0], None


def build_contexts(
    bundle: Bundle,
    classes: Sequence[str],
    evaluated: Mapping[str, Sequence[str]],
    observed_data_class: Sequence[str | None],
    volume: Mapping[str, float],
    recent: Mapping[str, RecentChange],
    *,
    agent: str | None,
    now: float,
    expiry_window_s: float,
) -> list[ClassContext]:
    """One :class:`ClassContext` per class; ``evaluated`` maps a class to the models evaluated on it."""
    index = PolicyIndex(bundle.policies)
    out: list[ClassContext] = []
    for i, klass in enumerate(classes):
        policy, problem = _serving(index, agent, klass)
        blockers = [problem] if problem else []
        observed = observed_data_class[i]
        current = profile = data_class = deprecation = privacy_gap = None
        checks: list[CandidateCheck] = []
        if policy is not None:
            profile = policy.profile
            prof = bundle.profiles.get(profile)
            data_class = prof.data_class if prof else None
            if (
                observed
                and data_class
                and bundle.data_class_rank(observed) > bundle.data_class_rank(data_class)
            ):
                privacy_gap = (
                    f"evaluations carry {observed} data but profile {profile} is for {data_class}: "
                    "a privacy-tier change needs a human decision"
                )
                data_class = observed
            if len(policy.primary) != 1:
                blockers.append(f"policy {policy.name} runs an A/B test; review after it ends")
            current = policy.primary[0].model
            models = sorted({current, *evaluated.get(klass, ())})
            checks = [
                check_candidate(bundle, m, profile, data_class or "public", now, expiry_window_s)
                for m in models
            ]
            cur = next(c for c in checks if c.model == current)
            if not cur.eligible:
                approval, _ = current_approval(bundle, current, profile, now)
                until = (
                    f" (approval ends {_date(approval_deadline(approval))})"
                    if approval and approval.expires
                    else ""
                )
                deprecation = f"current model {current} is {', '.join(cur.reasons)}{until}"
        out.append(
            ClassContext(
                task_class=klass,
                index=i,
                policy=policy.name if policy else None,
                profile=profile,
                current=current,
                data_class=data_class,
                observed_data_class=observed,
                volume=float(volume.get(klass, 0.0)),
                candidates=tuple(checks),
                blockers=tuple(blockers),
                deprecation=deprecation,
                privacy_gap=privacy_gap,
                budget_usd=policy.budget_usd if policy else None,
                recent=recent.get(klass),
            )
        )
    return out
