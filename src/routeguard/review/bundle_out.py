"""Write routing changes into a complete bundle that passes every governance check.

A class served through a policy's ``match.task_types`` is split out of it into its own policy
``<policy>--<class>`` with ``match: {agent: <the policy's agent>, task_types: [class]}`` (tenants and tags
copied), so CONTRACT §1 resolution sends exactly that class there and nothing is ambiguous. When every task
type of a policy moves to the same model, the policy's primary is changed instead. A class served by an
agent-wide policy gets a more specific per-class policy for that agent. Fallbacks are kept when they are no
broader than the new primary; the previous primary becomes the first fallback when it is no broader either.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from routeguard.core.checks import check_bundle
from routeguard.core.findings import BundleError, Finding
from routeguard.core.model import Bundle
from routeguard.core.parse import parse_bundle
from routeguard.core.resolve import PolicyIndex, RequestKey
from routeguard.core.table import content_hash

__all__ = ["Change", "ProposalBundle", "build_proposal", "bundle_hash", "dump_yaml", "jsonable"]


@dataclass(frozen=True, slots=True)
class Change:
    task_class: str
    policy: str  # the policy serving the class in the input bundle
    from_model: str
    to_model: str
    reason: str


@dataclass(slots=True)
class ProposalBundle:
    raw: dict[str, Any]
    applied: list[Change] = field(default_factory=list)
    dropped: list[tuple[Change, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # what still stops it (input problems)
    policy_of: dict[str, str] = field(default_factory=dict)  # class -> the policy routing it in the proposal

    @property
    def valid(self) -> bool:
        return not self.findings


def jsonable(value: Any) -> Any:
    """Plain JSON data: dates become ISO strings, tuples lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def bundle_hash(raw: Mapping[str, Any]) -> str:
    """The same content hash the policy store stamps on a version."""
    return content_hash(jsonable(raw))


def dump_yaml(raw: Mapping[str, Any], header: str = "") -> str:
    body = yaml.safe_dump(dict(raw), sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
    return header + body


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "class"


def _fallbacks(entries: object, bundle: Bundle, new: str, old: str | None) -> list[Any]:
    caps = bundle.models[new].capabilities
    out: list[Any] = []
    names: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        name = entry if isinstance(entry, str) else entry.get("model") if isinstance(entry, Mapping) else None
        spec = bundle.models.get(name) if isinstance(name, str) else None
        if isinstance(name, str) and name != new and spec is not None and spec.capabilities <= caps:
            out.append(copy.deepcopy(entry))
            names.append(name)
    keep_old = old is not None and old != new and old not in names and old in bundle.models
    if keep_old and old is not None and bundle.models[old].capabilities <= caps:
        out.insert(0, {"model": old})
    return out


def _apply(
    raw: Mapping[str, Any], bundle: Bundle, changes: Sequence[Change], label: str
) -> tuple[dict[str, Any], dict[str, str]]:
    out: dict[str, Any] = copy.deepcopy(dict(raw))
    policies: dict[str, Any] = out["policies"]
    policy_of: dict[str, str] = {}
    by_policy: dict[str, list[Change]] = defaultdict(list)
    for ch in changes:
        by_policy[ch.policy].append(ch)
    for name, chs in by_policy.items():
        pol, raw_p = bundle.policies[name], policies[name]
        listed = pol.match.task_types
        moved = {c.task_class for c in chs}
        targets = {c.to_model for c in chs}
        note = "; ".join(f"{c.task_class}: {c.from_model} -> {c.to_model}" for c in chs)
        if listed is not None and moved == set(listed) and len(targets) == 1:
            new = next(iter(targets))
            raw_p["fallbacks"] = _fallbacks(raw_p.get("fallbacks"), bundle, new, pol.primary_models[0])
            raw_p["primary"] = new
            raw_p["description"] = f"review {label}: primary {pol.primary_models[0]} -> {new} ({note})"
            policy_of.update({c.task_class: name for c in chs})
            continue
        if listed is not None:
            match = raw_p.setdefault("match", {})
            match["task_types"] = [t for t in match.get("task_types", []) if t not in moved]
        for ch in sorted(chs, key=lambda c: c.task_class):
            key = f"{name}--{_slug(ch.task_class)}"
            n = 2
            while key in policies:
                key, n = f"{name}--{_slug(ch.task_class)}-{n}", n + 1
            q: dict[str, Any] = {
                k: copy.deepcopy(v)
                for k, v in raw_p.items()
                if k not in ("match", "primary", "fallbacks", "description")
            }
            match_q: dict[str, Any] = {"agent": pol.agent, "task_types": [ch.task_class]}
            for dim in ("tenants", "tags"):
                if isinstance(raw_p.get("match"), Mapping) and raw_p["match"].get(dim) is not None:
                    match_q[dim] = copy.deepcopy(raw_p["match"][dim])
            q = {
                "description": f"review {label}: task class {ch.task_class} {ch.from_model} -> {ch.to_model}",
                "profile": q.pop("profile"),
                "match": match_q,
                "primary": ch.to_model,
                "fallbacks": _fallbacks(raw_p.get("fallbacks"), bundle, ch.to_model, ch.from_model),
                **q,
            }
            if not q["fallbacks"]:
                del q["fallbacks"]
            policies[key] = q
            policy_of[ch.task_class] = key
    return out, policy_of


def _validate(
    raw: dict[str, Any], now: float, intended: Mapping[str, str], agent: str | None
) -> list[Finding]:
    try:
        bundle = parse_bundle(jsonable(raw))
    except BundleError as exc:
        return list(exc.findings)
    findings = check_bundle(bundle, now)
    index = PolicyIndex(bundle.policies)
    for klass, model in intended.items():
        best = index.best(RequestKey(agent=agent, task_type=klass))
        if len(best) != 1 or best[0].primary_models != (model,):
            got = ", ".join(f"{p.name}->{'/'.join(p.primary_models)}" for p in best) or "no policy"
            findings.append(
                Finding(
                    "route_mismatch",
                    f"policies.{best[0].name if best else '?'}",
                    f"task class {klass} should route to {model}, resolves to {got}",
                )
            )
    return findings


def build_proposal(
    raw: Mapping[str, Any],
    bundle: Bundle,
    changes: Sequence[Change],
    *,
    routes: Mapping[str, str],
    agent: str | None,
    now: float,
    label: str,
) -> ProposalBundle:
    """Apply ``changes``; drop any change whose policy draws a finding, until the rest pass every check.

    ``routes`` maps every reviewed class to the model it must resolve to in the proposal.
    """
    base_findings = {(f.code, f.path, f.message) for f in _validate(dict(raw), now, {}, agent)}
    remaining = list(changes)
    result = ProposalBundle(raw=copy.deepcopy(dict(raw)))
    for _ in range(len(changes) + 1):
        out, policy_of = _apply(raw, bundle, remaining, label)
        intended = {
            k: v for k, v in routes.items() if k in policy_of or k not in {c.task_class for c in changes}
        }
        intended.update({c.task_class: c.from_model for c in changes if c not in remaining})
        findings = _validate(out, now, intended, agent)
        new = [f for f in findings if (f.code, f.path, f.message) not in base_findings]
        blamed = {c for c in remaining for f in new if _blames(f, c, policy_of)}
        if not new or not blamed:
            result.raw, result.applied, result.findings, result.policy_of = (
                out,
                remaining,
                findings,
                policy_of,
            )
            if new and not blamed:  # cannot attribute: propose nothing rather than something unchecked
                result.dropped.extend((c, "proposal failed governance checks") for c in remaining)
                result.raw, result.applied, result.policy_of = copy.deepcopy(dict(raw)), [], {}
                result.findings = _validate(result.raw, now, {}, agent)
            return result
        for c in blamed:
            why = "; ".join(f"{f.code}: {f.message}" for f in new if _blames(f, c, policy_of))
            result.dropped.append((c, why))
        remaining = [c for c in remaining if c not in blamed]
    return result


def _blames(f: Finding, change: Change, policy_of: Mapping[str, str]) -> bool:
    if change.task_class in f.message.split():
        return True
    pol = policy_of.get(change.task_class)
    return pol is not None and (f.path == f"policies.{pol}" or f.path.startswith(f"policies.{pol}."))
