"""CONTRACT §2 invariants 1–5, as properties over random bundles, health, requests, safe mode and time.

The bundles are mostly INVALID (unapproved or unknown models, expired approvals, broader fallbacks, low
clearance, wrong regions, untrusted models, missing profiles), because the decision-time checks must hold
even when a bad bundle slipped through. Every invariant is judged here from the plain bundle data, not
from the engine's compiled table. Normal run: at least 2,000 bundles; ``--hypothesis-profile=long``: 100,000.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from bundles import DATA_CLASSES, Raw, bundles, findings, situations, ts
from hypothesis import HealthCheck, Phase, event, find, given, settings
from hypothesis import strategies as st

from routeguard.core.context import RouteContext, RoutingError, SafeMode
from routeguard.core.decision import Decision
from routeguard.core.engine import CanaryRamp, decide
from routeguard.core.health_view import HealthState, HealthView, ModelHealth
from routeguard.core.model import HealthConfig
from routeguard.core.parse import parse_bundle
from routeguard.core.table import compile_bundle, content_hash

EXAMPLES = max(2000, settings().max_examples)  # the `long` profile raises it
RANK = {name: i for i, name in enumerate(DATA_CLASSES)}
_ANY_CONFIG = HealthConfig()


# ------------------------------------------------------------------------------------------ the oracle


def _approved(raw: Raw, model: str, profile: str, now: float) -> bool:
    """A current approval of ``model`` for ``profile`` exists: valid through its expiry day (UTC)."""
    for a in raw["approvals"]:
        if a["model"] != model or a["profile"] != profile:
            continue
        if "expires" not in a:
            return True
        end = date.fromisoformat(a["expires"]) + timedelta(days=1)
        if now < ts(end.isoformat()):
            return True
    return False


def _arms(policy: Raw) -> list[str]:
    primary = policy["primary"]
    return [primary] if isinstance(primary, str) else [a["model"] for a in primary]


def _fallbacks(policy: Raw) -> list[str]:
    return [f["model"] for f in policy["fallbacks"]]


def _expected_policy(raw: Raw, ctx: Raw) -> tuple[str | None, set[str]]:
    """The policy the request must resolve to, and the request errors it may (must) raise instead."""
    policies = raw["policies"]
    agent = ctx["agent"]
    if agent not in policies:
        return None, {"unknown_agent"}
    name = agent
    override = ctx.get("metadata", {}).get("policy")
    if override is not None and override != agent:
        if override not in policies[agent].get("overrides", []) or override not in policies:
            return None, {"override_not_allowed"}
        name = override
    errors = set()
    if ctx.get("data_class") is not None and ctx["data_class"] not in RANK:
        errors.add("unknown_data_class")
    profile = raw["profiles"].get(policies[name]["profile"])
    ceiling = set(profile["capabilities"]) if profile is not None and "capabilities" in profile else None
    if ceiling is not None and not set(ctx.get("capabilities", ())) <= ceiling:
        errors.add("capability_not_allowed")
    return name, errors


def _governance_breaches(raw: Raw, name: str, model: str, as_fallback: bool, ctx: Raw, safe: bool,
                         now: float) -> list[str]:
    """Which of invariants 1–4 (and the profile's own rules) selecting ``model`` would break."""
    policy = raw["policies"][name]
    m = raw["models"].get(model)
    profile = raw["profiles"].get(policy["profile"])
    if m is None or profile is None:
        return ["1: not a catalogued model under an existing profile"]
    out = []
    caps = set(m["capabilities"])
    if not _approved(raw, model, policy["profile"], now):
        out.append("1: no current approval for the profile")
    if as_fallback:
        for arm in _arms(policy):  # an arm missing from the catalogue has no capabilities
            if not caps <= set(raw["models"].get(arm, {}).get("capabilities", ())):
                out.append(f"2: capabilities outside those of primary arm {arm}")
    if RANK[m["clearance"]] < RANK[profile["data_class"]]:
        out.append("3: clearance below the profile's data class")
    if ctx.get("data_class") is not None and RANK[m["clearance"]] < RANK[ctx["data_class"]]:
        out.append("3: clearance below the request's data class")
    regions = set(m["regions"]) if "regions" in m else None
    if "regions" in profile and (regions is None or not regions <= set(profile["regions"])):
        out.append("3: runs outside the profile's regions")
    if ctx.get("region") is not None and (regions is None or ctx["region"] not in regions):
        out.append("3: does not run in the request's region")
    if safe and not m["trusted"]:
        out.append("4: untrusted model while safe mode is on")
    if not set(profile["requires"]) <= caps:
        out.append("profile: lacks a required capability")
    if "capabilities" in profile and not caps <= set(profile["capabilities"]):
        out.append("profile: capability outside the ceiling")
    return out


def _request_breaches(raw: Raw, name: str, model: str, ctx: Raw) -> list[str]:
    """The request's own constraints (language, modality, capabilities, context window, budget)."""
    m = raw["models"][model]
    out = []
    if ctx.get("language") and "languages" in m and ctx["language"] not in m["languages"]:
        out.append("language")
    if ctx.get("modalities") and not set(ctx["modalities"]) <= set(m["modalities"]):
        out.append("modality")
    if not set(ctx.get("capabilities", [])) <= set(m["capabilities"]):
        out.append("missing_capability")
    tokens = ctx.get("estimated_tokens", {})
    t_in, t_out = tokens.get("input", 0), tokens.get("output", 0)
    if "context_window" in m and t_in + t_out > m["context_window"]:
        out.append("context_window")
    policy_budget = raw["policies"][name].get("budget", {}).get("max_usd_per_request")
    budgets = [b for b in (ctx.get("budget_usd"), policy_budget) if b is not None]
    cost = (t_in * m["cost"]["input_per_1m"] + t_out * m["cost"]["output_per_1m"]) / 1_000_000
    if budgets and cost > min(budgets) * (1 + 1e-9):
        out.append("over_budget")
    return out


def _health_breaches(raw: Raw, name: str, model: str, ctx: Raw, failures: Mapping[str, str], h: ModelHealth
                     ) -> list[str]:
    """Why health forbids ``model`` for this request (degraded and stale may still serve)."""
    out = []
    if h.state is HealthState.UNHEALTHY or (h.state is HealthState.PROBING and not h.probe_admitted):
        out.append(f"health: {h.state.value}")
    if model in failures:
        out.append("health: failed in this request")
    limits = raw["models"][model].get("limits", {})
    if "rpm" in limits and h.requests_last_min >= limits["rpm"]:
        out.append("quota_exhausted")
    sla_ms = ctx.get("sla_ms")
    if sla_ms is not None and h.p95_latency_s is not None and h.p95_latency_s * 1000 > sla_ms:
        out.append("sla")
    return out


def check_decision(raw: Raw, ctx: Raw, failures: Mapping[str, str], health: HealthView, safe_mode: SafeMode,
                   now: float, canary: CanaryRamp | None, outcome: Decision | RoutingError) -> None:
    """Assert invariants 1–5 for one decision (or refusal), judged from the plain bundle ``raw``."""
    name, errors = _expected_policy(raw, ctx)
    if isinstance(outcome, RoutingError):
        assert outcome.code in errors, f"unexpected refusal {outcome.code}: {outcome.message}"
        return
    assert not errors, f"expected a refusal ({errors}), got a decision"
    d = outcome
    assert name is not None and d.policy == name
    policy = raw["policies"][name]
    arms, fallbacks = _arms(policy), _fallbacks(policy)
    safe = safe_mode.global_on or ctx.get("tenant") in safe_mode.tenants
    assert d.safe_mode == safe
    assert d.arm is None if len(arms) == 1 else d.arm in arms

    def breaches(model: str, as_fallback: bool) -> list[str]:
        found = _governance_breaches(raw, name, model, as_fallback, ctx, safe, now)
        if model not in raw["models"]:
            return found
        h = health.model_health(name, _ANY_CONFIG, model, now)
        return found + _request_breaches(raw, name, model, ctx) + _health_breaches(raw, name, model, ctx,
                                                                                   failures, h)

    if d.model is None:  # invariant 5: the terminal action, never some model
        assert d.status.value == "terminal" and d.terminal is not None
        assert d.terminal.action.value == policy["terminal"]["action"]
        assert d.to_dict()["terminal"]["action"] == policy["terminal"]["action"]
        assert d.backups == () and d.cost_estimate_usd is None
        return
    assert d.status.value in ("primary", "fallback") and d.terminal is None
    as_fallback = d.status.value == "fallback"
    assert d.model in (fallbacks if as_fallback else arms)
    problems = breaches(d.model, as_fallback)
    assert not problems, f"{d.model} selected ({d.status.value}) despite {problems}"
    assert set(d.backups) <= set(arms) | set(fallbacks) and d.model not in d.backups


def check_liveness(raw: Raw, ctx: Raw, failures: Mapping[str, str], health: HealthView, safe_mode: SafeMode,
                   now: float, outcome: Decision | RoutingError) -> None:
    """The other direction of 5: nothing eligible ⇒ terminal; a fine single primary ⇒ the primary."""
    if isinstance(outcome, RoutingError):
        return
    name = outcome.policy
    policy = raw["policies"][name]
    arms, fallbacks = _arms(policy), _fallbacks(policy)
    safe = safe_mode.global_on or ctx.get("tenant") in safe_mode.tenants

    def eligible(model: str, as_fallback: bool) -> bool:
        if _governance_breaches(raw, name, model, as_fallback, ctx, safe, now):
            return False
        h = health.model_health(name, _ANY_CONFIG, model, now)
        request = _request_breaches(raw, name, model, ctx)
        return not (request or _health_breaches(raw, name, model, ctx, failures, h))

    candidates = [(m, False) for m in arms] + [(m, True) for m in fallbacks]
    if not any(eligible(m, fb) for m, fb in candidates):
        assert outcome.model is None, f"{outcome.model} selected although no model is eligible"
    if len(arms) == 1 and eligible(arms[0], False):
        h = health.model_health(name, _ANY_CONFIG, arms[0], now)
        if h.state is HealthState.HEALTHY:
            assert (outcome.model, outcome.status.value) == (arms[0], "primary")


# -------------------------------------------------------------------------------------------- the property


def _decide(tbl: Any, ctx: Raw, failures: Mapping[str, str], health: HealthView, safe: SafeMode, now: float,
            canary: CanaryRamp | None, trace: str) -> Decision | RoutingError:
    try:
        context = RouteContext.from_dict(ctx, trace_id=trace)
        if failures:
            context = replace(context, failures=dict(failures))
        return decide(context, tbl, health, safe, now, canary)
    except RoutingError as exc:
        return exc


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
@given(st.data())
def test_invariants_hold_for_every_bundle_health_request_and_time(data: st.DataObject) -> None:
    raw = data.draw(bundles(), label="bundle")
    tbl = compile_bundle(parse_bundle(raw), content_hash=content_hash(raw), version=1)
    for _ in range(data.draw(st.integers(1, 4), label="requests")):
        ctx, failures, health, safe, now, canary, trace = data.draw(situations(raw), label="situation")
        outcome = _decide(tbl, ctx, failures, health, safe, now, canary, trace)
        event(outcome.status.value if isinstance(outcome, Decision) else f"refused: {outcome.code}")
        check_decision(raw, ctx, failures, health, safe, now, canary, outcome)
        if canary is None:
            check_liveness(raw, ctx, failures, health, safe, now, outcome)
        again = _decide(tbl, ctx, failures, health, safe, now, canary, trace)
        if isinstance(outcome, Decision):
            assert isinstance(again, Decision) and again.to_dict() == outcome.to_dict()


# ------------------------------------------------------------- the generators reach what the property needs

_SEARCH = settings(max_examples=5000, phases=[Phase.generate], database=None, deadline=None,
                   suppress_health_check=list(HealthCheck))
MID = ts("2027-01-01")


@pytest.mark.parametrize(
    "code",
    ["unknown_model", "unapproved_model", "approval_expired", "capability_exceeds_primary",
     "capability_exceeds_profile", "missing_required_capability", "clearance_too_low", "region_not_allowed",
     "unknown_reference"],
)
def test_random_bundles_include_each_breach(code: str) -> None:
    find(bundles(), lambda raw: code in {f.code for f in findings(raw, MID)}, settings=_SEARCH)


def test_random_bundles_include_clean_ones() -> None:
    find(bundles(), lambda raw: not findings(raw, MID), settings=_SEARCH)


@pytest.mark.parametrize("status", ["primary", "fallback", "terminal"])
def test_random_situations_reach_every_status(status: str) -> None:
    def reaches(raw: Raw) -> bool:
        tbl = compile_bundle(parse_bundle(raw))
        for agent in raw["policies"]:
            d = _decide(tbl, {"agent": agent}, {}, _Down(raw, status), SafeMode(), MID, None, "t")
            if isinstance(d, Decision) and d.status.value == status:
                return True
        return False

    find(bundles(), reaches, settings=_SEARCH)


class _Down:
    """Primary arms unhealthy when looking for fallbacks and terminals; everything healthy otherwise."""

    def __init__(self, raw: Raw, status: str) -> None:
        self._down = set() if status == "primary" else {m for p in raw["policies"].values() for m in _arms(p)}
        if status == "terminal":
            self._down |= set(raw["models"])

    def model_health(self, policy: str, config: HealthConfig, model: str, now: float) -> ModelHealth:
        return ModelHealth(self.peek_state(policy, model))

    def peek_state(self, policy: str, model: str) -> HealthState:
        return HealthState.UNHEALTHY if model in self._down else HealthState.HEALTHY
