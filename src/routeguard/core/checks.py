"""Governance checks of CONTRACT §1: every breach is a finding; all findings are reported at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import combinations

from routeguard.core.context import MAX_NAME
from routeguard.core.egress import EgressRules, check_egress
from routeguard.core.findings import Finding
from routeguard.core.model import Approval, Bundle, Policy
from routeguard.core.resolve import PolicyIndex, RequestKey

__all__ = ["approval_deadline", "check_bundle", "current_approval"]


def approval_deadline(approval: Approval) -> float:
    """Epoch seconds at which ``approval`` stops being valid (the end of its expiry day, UTC)."""
    if approval.expires is None:
        return float("inf")
    day = date.fromisoformat(approval.expires)
    return (datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)).timestamp()


def current_approval(bundle: Bundle, model: str, profile: str, now: float) -> tuple[Approval | None, bool]:
    """The approval of ``model`` for ``profile`` that lasts longest, and whether it is still valid at ``now``."""
    found = [a for a in bundle.approvals if a.model == model and a.profile == profile]
    if not found:
        return None, False
    best = max(found, key=approval_deadline)
    return best, now < approval_deadline(best)


def check_bundle(bundle: Bundle, now: float, egress: EgressRules | None = None) -> list[Finding]:
    """Every finding for ``bundle`` at time ``now`` (epoch seconds); [] when it may be published.
    ``egress``: the operator's secrets bindings and allow-list (default: any binding, no allow-list)."""
    findings: list[Finding] = check_egress(bundle, egress if egress is not None else EgressRules())
    findings.extend(_check_names(bundle))
    for name, profile in bundle.profiles.items():
        if profile.capabilities is not None and not profile.requires <= profile.capabilities:
            extra = ", ".join(sorted(profile.requires - profile.capabilities))
            findings.append(
                Finding(
                    "capability_exceeds_profile", f"profiles.{name}.requires", f"requires {extra} outside its ceiling"
                )
            )
    for i, approval in enumerate(bundle.approvals):
        if approval.model not in bundle.models:
            findings.append(Finding("unknown_model", f"approvals[{i}].model", f"no model named {approval.model!r}"))
        if approval.profile not in bundle.profiles:
            findings.append(
                Finding("unknown_reference", f"approvals[{i}].profile", f"no profile named {approval.profile!r}")
            )
    for name, policy in bundle.policies.items():
        findings.extend(_check_policy(bundle, name, policy, now))
    findings.extend(_check_ambiguity(bundle))
    return findings


def _check_names(bundle: Bundle) -> list[Finding]:
    """Names end up in the audit log and the store's columns: at most MAX_NAME characters."""
    out: list[Finding] = []
    for section in ("models", "profiles", "notifiers", "policies"):
        for name in getattr(bundle, section):
            if len(name) > MAX_NAME:
                out.append(Finding("schema", f"{section}.{name[:40]}…", f"a name is at most {MAX_NAME} characters"))
    return out


def _check_policy(bundle: Bundle, name: str, policy: Policy, now: float) -> list[Finding]:
    out: list[Finding] = []
    base = f"policies.{name}"
    profile = bundle.profiles.get(policy.profile)
    if profile is None:
        out.append(Finding("unknown_reference", f"{base}.profile", f"no profile named {policy.profile!r}"))
    for i, ref in enumerate(policy.overrides):
        if ref not in bundle.policies:
            out.append(Finding("unknown_reference", f"{base}.overrides[{i}]", f"no policy named {ref!r}"))
    for i, ref in enumerate(policy.notify):
        if ref not in bundle.notifiers:
            out.append(Finding("unknown_reference", f"{base}.notify[{i}]", f"no notifier named {ref!r}"))
    entries: list[tuple[str, str]] = []
    if policy.learned is not None:
        entries.extend((f"{base}.primary.learned.{arm}", m) for arm, m in _learned_arms(policy))
        out.extend(_check_learned(bundle, base, policy))
    elif len(policy.primary) == 1:
        entries.append((f"{base}.primary", policy.primary[0].model))
    else:
        entries.extend((f"{base}.primary[{i}].model", arm.model) for i, arm in enumerate(policy.primary))
    entries.extend((f"{base}.fallbacks[{i}].model", fb.model) for i, fb in enumerate(policy.fallbacks))
    primary_caps = [bundle.models[a.model].capabilities for a in policy.primary if a.model in bundle.models]
    n_arms = len(policy.primary)
    for index, (path, model_name) in enumerate(entries):
        model = bundle.models.get(model_name)
        if model is None:
            out.append(Finding("unknown_model", path, f"no model named {model_name!r}"))
            continue
        if profile is not None:
            approval, valid = current_approval(bundle, model_name, profile.name, now)
            if approval is None:
                out.append(
                    Finding("unapproved_model", path, f"{model_name} has no approval for profile {profile.name}")
                )
            elif not valid:
                out.append(
                    Finding(
                        "approval_expired",
                        path,
                        f"approval of {model_name} for {profile.name} ({approval.ref}) expired on {approval.expires}",
                    )
                )
            missing = profile.requires - model.capabilities
            if missing:
                out.append(
                    Finding(
                        "missing_required_capability",
                        path,
                        f"{model_name} lacks {', '.join(sorted(missing))} required by profile {profile.name}",
                    )
                )
            if profile.capabilities is not None and not model.capabilities <= profile.capabilities:
                extra = ", ".join(sorted(model.capabilities - profile.capabilities))
                out.append(
                    Finding(
                        "capability_exceeds_profile",
                        path,
                        f"{model_name} has {extra} outside the ceiling of profile {profile.name}",
                    )
                )
            if bundle.data_class_rank(model.clearance) < bundle.data_class_rank(profile.data_class):
                out.append(
                    Finding(
                        "clearance_too_low",
                        path,
                        f"{model_name} is cleared for {model.clearance}, profile {profile.name} handles "
                        f"{profile.data_class}",
                    )
                )
            if profile.regions is not None and (model.regions is None or not model.regions <= profile.regions):
                runs = ", ".join(sorted(model.regions)) if model.regions else "unspecified regions"
                out.append(
                    Finding(
                        "region_not_allowed",
                        path,
                        f"{model_name} runs in {runs}; profile {profile.name} allows "
                        f"{', '.join(sorted(profile.regions))}",
                    )
                )
        if index >= n_arms:
            broader = [caps for caps in primary_caps if not model.capabilities <= caps]
            if broader:
                extra = ", ".join(sorted(model.capabilities - broader[0]))
                out.append(
                    Finding(
                        "capability_exceeds_primary",
                        path,
                        f"fallback {model_name} has {extra} beyond the primary's capabilities",
                    )
                )
    return out


def _learned_arms(policy: Policy) -> tuple[tuple[str, str], ...]:
    learned = policy.learned
    return (("strong", learned.strong), ("weak", learned.weak)) if learned is not None else ()


def _check_learned(bundle: Bundle, base: str, policy: Policy) -> list[Finding]:
    """A learned primary's weak arm is never broader than its strong one (the artifact is checked in config)."""
    learned = policy.learned
    if learned is None:
        return []
    strong, weak = bundle.models.get(learned.strong), bundle.models.get(learned.weak)
    if strong is None or weak is None:
        return []  # reported as unknown_model with the arms
    extra = weak.capabilities - strong.capabilities
    if not extra:
        return []
    return [
        Finding(
            "capability_exceeds_primary",
            f"{base}.primary.learned.weak",
            f"weak arm {weak.name} has {', '.join(sorted(extra))} beyond strong arm {strong.name}",
        )
    ]


def _check_ambiguity(bundle: Bundle) -> list[Finding]:
    """Two policies that could both be the most specific for some request."""
    index = PolicyIndex(bundle.policies)
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for a, b in combinations(bundle.policies.values(), 2):
        for key in _probe_keys(a, b):
            best = {p.name for p in index.best(key)}
            if a.name in best and b.name in best:
                pair = (min(a.name, b.name), max(a.name, b.name))
                if pair not in seen:
                    seen.add(pair)
                    out.append(
                        Finding(
                            "ambiguous_match",
                            f"policies.{pair[1]}.match",
                            f"policies {pair[0]} and {pair[1]} both match a request "
                            f"{_describe(key)} equally specifically",
                        )
                    )
                break
    return out


def _probe_keys(a: Policy, b: Policy) -> list[RequestKey]:
    """Requests that both policies could match, built from the intersection of their conditions."""

    def pick(x: frozenset[str] | None, y: frozenset[str] | None) -> list[str | None]:
        if x is not None and y is not None:
            common = sorted(x & y)
            return [common[0]] if common else []
        either = x if x is not None else y
        return [sorted(either)[0]] if either else [None]

    task_types = pick(a.match.task_types, b.match.task_types)
    tenants = pick(a.match.tenants, b.match.tenants)
    lines = pick(a.match.business_lines, b.match.business_lines)
    tag_a = sorted(a.match.tags)[:1] if a.match.tags else []
    tag_b = sorted(b.match.tags)[:1] if b.match.tags else []
    tags = frozenset(tag_a + tag_b)
    agents: list[str | None] = [None]
    if a.agent == b.agent:
        agents.append(a.agent)
    return [
        RequestKey(agent=agent, task_type=tt, tenant=tn, tags=tags, business_line=bl)
        for agent in agents
        for tt in task_types
        for tn in tenants
        for bl in lines
    ]


def _describe(key: RequestKey) -> str:
    parts = [f"{k}={v}" for k, v in (("agent", key.agent), ("task_type", key.task_type), ("tenant", key.tenant)) if v]
    if key.tags:
        parts.append(f"tags={','.join(sorted(key.tags))}")
    return "(" + ", ".join(parts) + ")" if parts else "(any)"
