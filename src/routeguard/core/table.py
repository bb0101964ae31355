"""Compile a bundle into an immutable RoutingTable: everything static is evaluated once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from routeguard.core.checks import approval_deadline
from routeguard.core.model import Bundle, Endpoint, Fallback, Model, Policy, Profile
from routeguard.core.resolve import PolicyIndex

__all__ = ["Candidate", "CompiledPolicy", "RoutingTable", "compile_bundle", "content_hash"]

_NO_ENDPOINT = Endpoint(type="openai")


def content_hash(raw: object) -> str:
    """``sha256:`` over the canonical JSON form of the bundle's plain data."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry of a policy's chain with its static verdict pre-evaluated."""

    model: Model
    name: str
    position: int  # 0-based place in the policy's chain (arms first)
    is_arm: bool
    fallback: Fallback | None  # None for primary arms
    static_reason: str | None  # a rejection reason that holds for every request, or None
    static_detail: str
    approval_ref: str | None
    approval_deadline: float  # epoch seconds; -inf when never approved
    capabilities_within_primary: bool
    clearance_ok: bool
    residency_ok: bool
    rank: int  # clearance rank of the model in the bundle's data classes
    cost_in: float  # USD per token
    cost_out: float

    def verification(self) -> dict[str, object]:
        """The governance figures recorded with a routing change (CONTRACT §5)."""
        return {
            "approved": self.approval_ref is not None and self.static_reason not in ("unapproved",),
            "approval_ref": self.approval_ref,
            "capabilities_within_primary": self.capabilities_within_primary,
            "clearance_ok": self.clearance_ok,
            "residency_ok": self.residency_ok,
        }


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    policy: Policy
    profile: Profile | None
    candidates: tuple[Candidate, ...]
    n_arms: int
    arm_bounds: tuple[int, ...]  # cumulative arm weights
    arm_total: int

    @property
    def name(self) -> str:
        return self.policy.name

    def chain_for_arm(self, arm: int) -> tuple[Candidate, ...]:
        if self.n_arms == 1:
            return self.candidates
        arms = list(self.candidates[: self.n_arms])
        chosen = arms.pop(arm)
        arms.sort(key=lambda c: -self.policy.primary[c.position].weight)
        return (chosen, *arms, *self.candidates[self.n_arms :])


@dataclass(frozen=True, slots=True)
class RoutingTable:
    bundle: Bundle
    policies: Mapping[str, CompiledPolicy]
    index: PolicyIndex
    content_hash: str
    version: int | None
    data_class_rank: Mapping[str, int]

    def candidate(self, policy: str, model: str) -> Candidate | None:
        compiled = self.policies.get(policy)
        if compiled is None:
            return None
        for cand in compiled.candidates:
            if cand.name == model:
                return cand
        return None


def compile_bundle(bundle: Bundle, *, content_hash: str = "", version: int | None = None) -> RoutingTable:
    """Compile ``bundle``; unknown references become candidates that never pass (defence in depth)."""
    ranks = {name: i for i, name in enumerate(bundle.data_classes)}
    compiled = {name: _compile_policy(bundle, policy, ranks) for name, policy in bundle.policies.items()}
    return RoutingTable(
        bundle=bundle,
        policies=MappingProxyType(compiled),
        index=PolicyIndex(bundle.policies),
        content_hash=content_hash,
        version=version,
        data_class_rank=MappingProxyType(ranks),
    )


def _compile_policy(bundle: Bundle, policy: Policy, ranks: Mapping[str, int]) -> CompiledPolicy:
    profile = bundle.profiles.get(policy.profile)
    # an arm missing from the catalogue has no capabilities: no fallback with any may stand in for it
    primary_caps = [
        bundle.models[a.model].capabilities if a.model in bundle.models else frozenset() for a in policy.primary
    ]
    entries: list[tuple[str, Fallback | None]] = [(a.model, None) for a in policy.primary]
    entries += [(fb.model, fb) for fb in policy.fallbacks]
    candidates: list[Candidate] = []
    for position, (name, fallback) in enumerate(entries):
        model = bundle.models.get(name) or Model(
            name=name, provider="unknown", endpoint=_NO_ENDPOINT, capabilities=frozenset(), clearance=""
        )
        candidates.append(_candidate(bundle, policy, profile, model, position, fallback, primary_caps, ranks))
    bounds: list[int] = []
    total = 0
    for arm in policy.primary:
        total += arm.weight
        bounds.append(total)
    return CompiledPolicy(
        policy=policy,
        profile=profile,
        candidates=tuple(candidates),
        n_arms=len(policy.primary),
        arm_bounds=tuple(bounds),
        arm_total=total,
    )


def _candidate(
    bundle: Bundle,
    policy: Policy,
    profile: Profile | None,
    model: Model,
    position: int,
    fallback: Fallback | None,
    primary_caps: list[frozenset[str]],
    ranks: Mapping[str, int],
) -> Candidate:
    known = model.name in bundle.models
    within_primary = fallback is None or all(model.capabilities <= caps for caps in primary_caps)
    rank = ranks.get(model.clearance, -1)
    clearance_ok = profile is not None and rank >= ranks.get(profile.data_class, len(ranks))
    residency_ok = profile is not None and (
        profile.regions is None or (model.regions is not None and model.regions <= profile.regions)
    )
    approvals = [
        a for a in bundle.approvals if profile is not None and a.model == model.name and a.profile == profile.name
    ]
    approval = max(approvals, key=approval_deadline) if approvals else None
    reason, detail = None, ""
    if not known:
        reason, detail = "unapproved", f"{model.name} is not in the catalogue"
    elif profile is None:
        reason, detail = "unapproved", f"profile {policy.profile!r} does not exist"
    elif approval is None:
        reason, detail = "unapproved", f"no approval of {model.name} for profile {profile.name}"
    elif not within_primary:
        reason, detail = "capability_exceeds_primary", "capabilities beyond the primary's"
    elif profile.capabilities is not None and not model.capabilities <= profile.capabilities:
        extra = ", ".join(sorted(model.capabilities - profile.capabilities))
        reason, detail = "capability_exceeds_primary", f"{extra} outside the ceiling of profile {profile.name}"
    elif not profile.requires <= model.capabilities:
        reason, detail = "missing_capability", f"lacks {', '.join(sorted(profile.requires - model.capabilities))}"
    elif not clearance_ok:
        reason, detail = "clearance_too_low", f"cleared for {model.clearance}, profile needs {profile.data_class}"
    elif not residency_ok:
        reason, detail = "region_not_allowed", f"runs outside {', '.join(sorted(profile.regions or ()))}"
    return Candidate(
        model=model,
        name=model.name,
        position=position,
        is_arm=fallback is None,
        fallback=fallback,
        static_reason=reason,
        static_detail=detail,
        approval_ref=approval.ref if approval is not None else None,
        approval_deadline=approval_deadline(approval) if approval is not None else float("-inf"),
        capabilities_within_primary=within_primary,
        clearance_ok=clearance_ok,
        residency_ok=residency_ok,
        rank=rank,
        cost_in=model.cost.input_per_1m / 1_000_000,
        cost_out=model.cost.output_per_1m / 1_000_000,
    )
