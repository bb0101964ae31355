"""The decision engine (CONTRACT §2, §3): every rejection reason and request error, A/B arms, determinism."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from bundles import NOW, approve, arms, base, model, reasons, route, table, ts

from routeguard.core.context import RouteContext, RoutingError, SafeMode
from routeguard.core.decision import DecisionStatus
from routeguard.core.engine import CanaryRamp, decide
from routeguard.core.health_view import HealthState, ModelHealth, StaticHealth

DOWN = {"primary": "unhealthy"}


# ------------------------------------------------------------------------------------------------- the basics


def test_all_healthy_routes_to_the_primary() -> None:
    d = route(base(), estimated_tokens={"input": 1000, "output": 500})
    assert (d.status, d.model, d.arm, d.backups, d.rejected) == (DecisionStatus.PRIMARY, "primary", None,
                                                                  ("backup",), ())
    assert d.cost_estimate_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert d.policy == "agent" and d.policy_version == 1 and d.policy_hash.startswith("sha256:")
    assert d.terminal is None and not d.degraded and not d.safe_mode


def test_unhealthy_primary_falls_back() -> None:
    sick = ModelHealth(HealthState.UNHEALTHY, detail="error_rate 0.62 > 0.50 over 60s")
    d = route(base(), {"primary": sick})
    assert (d.status, d.model, d.backups) == (DecisionStatus.FALLBACK, "backup", ())
    assert [r.to_dict() for r in d.rejected] == [
        {"model": "primary", "reason": "unhealthy", "detail": "error_rate 0.62 > 0.50 over 60s"}
    ]


def test_nothing_eligible_gives_the_terminal_action() -> None:
    raw = base()
    raw["policies"]["agent"]["terminal"] = {"action": "human_queue", "queue": "humans"}
    d = route(raw, {"primary": "unhealthy", "backup": "unhealthy"})
    out = d.to_dict()
    assert (out["status"], out["model"], out["backups"]) == ("terminal", None, [])
    assert out["cost_estimate_usd"] is None
    assert out["terminal"]["action"] == "human_queue" and out["terminal"]["queue"] == "humans"
    assert "primary" in out["terminal"]["reason"]
    assert reasons(d) == [("primary", "unhealthy"), ("backup", "unhealthy")]


def test_the_default_terminal_action_is_suspend() -> None:
    d = route(base(), {"primary": "unhealthy", "backup": "unhealthy"})
    assert d.to_dict()["terminal"]["action"] == "suspend"


def test_a_backup_that_is_unhealthy_is_not_listed() -> None:
    assert route(base(), {"backup": "unhealthy"}).backups == ()


# ------------------------------------------------------------------------------- governance rejections


def test_unapproved() -> None:
    raw = base()
    raw["approvals"] = [approve("primary")]
    d = route(raw, DOWN)
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("primary", "unhealthy"), ("backup", "unapproved")]
    raw["approvals"] = [approve("backup")]
    d = route(raw)
    assert (d.model, reasons(d)) == ("backup", [("primary", "unapproved")])


def test_an_unknown_model_is_never_routed() -> None:
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = ["ghost", "backup"]
    d = route(raw, DOWN)
    assert d.model == "backup" and ("ghost", "unapproved") in reasons(d)


def test_approval_expired_at_decision_time() -> None:
    raw = base()
    raw["approvals"][0] = approve("primary", expires="2026-03-31")
    assert route(raw, now=ts("2026-03-31T23:59:59")).model == "primary"
    d = route(raw, now=ts("2026-04-01T00:00:00"))
    assert (d.model, reasons(d)) == ("backup", [("primary", "approval_expired")])


def test_capability_exceeds_primary() -> None:
    raw = base()
    raw["profiles"]["p"]["capabilities"] = ["text", "structured_output", "tool_use"]
    raw["models"]["backup"]["capabilities"] = ["text", "tool_use"]
    d = route(raw, DOWN)
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("primary", "unhealthy"), ("backup", "capability_exceeds_primary")]


def test_capability_exceeds_primary_holds_for_every_arm() -> None:
    raw = base()
    raw["models"]["narrow"] = model("text")
    raw["approvals"].append(approve("narrow"))
    raw["models"]["backup"]["capabilities"] = ["text", "structured_output"]
    raw["policies"]["agent"]["primary"] = arms(primary=50, narrow=50)
    for tenant in ("acme", "globex", "initech", "umbrella"):
        d = route(raw, {"primary": "unhealthy", "narrow": "unhealthy"}, tenant=tenant)
        assert d.status is DecisionStatus.TERMINAL
        assert ("backup", "capability_exceeds_primary") in reasons(d)


def test_no_fallback_stands_in_for_a_primary_missing_from_the_catalogue() -> None:
    raw = base()
    raw["policies"]["agent"]["primary"] = "ghost"  # a refused bundle; the engine must hold on its own
    d = route(raw)
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("ghost", "unapproved"), ("backup", "capability_exceeds_primary")]
    raw["policies"]["agent"]["primary"] = arms(primary=50, ghost=50)
    for tenant in ("acme", "globex", "initech", "umbrella"):
        d = route(raw, {"primary": "unhealthy"}, tenant=tenant)
        assert d.status is DecisionStatus.TERMINAL
        assert ("backup", "capability_exceeds_primary") in reasons(d)


def test_a_model_outside_the_profile_ceiling_is_rejected() -> None:
    raw = base()
    raw["models"]["primary"]["capabilities"] = ["text", "structured_output", "code_execution"]
    d = route(raw)
    assert d.model == "backup"
    # the contract's reason list has no profile-ceiling entry; the engine reports it under this reason
    assert reasons(d) == [("primary", "capability_exceeds_primary")]


def test_missing_capability() -> None:
    d = route(base(), DOWN, capabilities=["structured_output"])
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("primary", "unhealthy"), ("backup", "missing_capability")]
    raw = base()
    raw["profiles"]["p"]["requires"] = ["text", "structured_output"]  # static: backup lacks a required one
    assert reasons(route(raw, DOWN))[1] == ("backup", "missing_capability")


def test_clearance_too_low_for_the_request() -> None:
    raw = base()
    raw["models"]["backup"]["clearance"] = "confidential"
    assert route(raw, DOWN, data_class="confidential").model == "backup"
    d = route(raw, DOWN, data_class="restricted")
    assert d.status is DecisionStatus.TERMINAL and ("backup", "clearance_too_low") in reasons(d)


def test_a_lower_request_data_class_does_not_lower_the_profiles() -> None:
    raw = base()
    raw["models"]["backup"]["clearance"] = "internal"  # below the profile's confidential
    d = route(raw, DOWN, data_class="public")
    assert d.status is DecisionStatus.TERMINAL and ("backup", "clearance_too_low") in reasons(d)


def test_region_not_allowed() -> None:
    raw = base()
    raw["profiles"]["p"]["regions"] = ["eu", "us"]
    raw["models"]["backup"]["regions"] = ["us"]
    d = route(raw, region="us")
    assert (d.model, reasons(d)) == ("backup", [("primary", "region_not_allowed")])
    raw["profiles"]["p"]["regions"] = ["eu"]  # static: backup runs outside the profile's regions
    d = route(raw, DOWN)
    assert d.status is DecisionStatus.TERMINAL and ("backup", "region_not_allowed") in reasons(d)


# ---------------------------------------------------------------------------- the request's constraints


def test_language() -> None:
    raw = base()
    raw["models"]["primary"]["languages"] = ["en"]
    assert route(raw, language="en").model == "primary"
    d = route(raw, language="de")
    assert (d.model, reasons(d)) == ("backup", [("primary", "language")])


def test_modality() -> None:
    raw = base()
    raw["models"]["backup"]["modalities"] = ["text", "image"]
    d = route(raw, modalities=["text", "image"])
    assert (d.model, reasons(d)) == ("backup", [("primary", "modality")])


def test_context_window() -> None:
    raw = base()
    raw["models"]["primary"]["context_window"] = 1000
    assert route(raw, estimated_tokens={"input": 700, "output": 300}).model == "primary"
    d = route(raw, estimated_tokens={"input": 700, "output": 301})
    assert (d.model, reasons(d)) == ("backup", [("primary", "context_window")])


def test_over_budget_request_and_policy() -> None:
    tokens = {"input": 10_000, "output": 10_000}  # primary $0.03, backup $0.015
    d = route(base(), estimated_tokens=tokens, budget_usd=0.02)
    assert (d.model, reasons(d)) == ("backup", [("primary", "over_budget")])
    raw = base()
    raw["policies"]["agent"]["budget"] = {"max_usd_per_request": 0.01}
    d = route(raw, estimated_tokens=tokens, budget_usd=5.0)  # the policy's budget caps the request's
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("primary", "over_budget"), ("backup", "over_budget")]


def test_sla() -> None:
    slow = {"primary": ModelHealth(HealthState.HEALTHY, p95_latency_s=3.0)}
    assert route(base(), slow, sla_ms=5000).model == "primary"
    d = route(base(), slow, sla_ms=2000)
    assert (d.model, reasons(d)) == ("backup", [("primary", "sla")])


def test_quota_exhausted() -> None:
    raw = base()
    raw["models"]["primary"]["limits"] = {"rpm": 10, "tpm": 5000}
    assert route(raw, {"primary": ModelHealth(HealthState.HEALTHY, requests_last_min=9)}).model == "primary"
    d = route(raw, {"primary": ModelHealth(HealthState.HEALTHY, requests_last_min=10)})
    assert (d.model, reasons(d)) == ("backup", [("primary", "quota_exhausted")])
    d = route(raw, {"primary": ModelHealth(HealthState.HEALTHY, tokens_last_min=4500)},
              estimated_tokens={"input": 400, "output": 200})
    assert reasons(d) == [("primary", "quota_exhausted")]


# ------------------------------------------------------------------------------- health and triggers


def test_degraded_primary_stays_when_no_fallback_takes_degraded() -> None:
    d = route(base(), {"primary": "degraded"})
    assert (d.model, d.degraded, d.rejected) == ("primary", True, ())


@pytest.mark.parametrize("state", ["degraded", "stale"])
def test_degraded_and_stale_move_to_a_fallback_on_degraded(state: str) -> None:
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "on": ["degraded"]}]
    d = route(raw, {"primary": state})
    assert (d.status, d.model, reasons(d)) == (DecisionStatus.FALLBACK, "backup", [("primary", state)])
    assert not d.degraded


def test_degraded_primary_is_kept_when_the_fallback_is_not_eligible() -> None:
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "on": ["degraded"]}]
    d = route(raw, {"primary": "stale", "backup": "unhealthy"})
    assert (d.model, d.degraded) == ("primary", True)


def test_trigger_not_met_by_kind() -> None:
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "on": ["degraded"]}]
    d = route(raw, DOWN)
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("primary", "unhealthy"), ("backup", "trigger_not_met")]


def test_trigger_not_met_until_after_has_passed() -> None:
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "after": "60s"}]
    recent = {"primary": ModelHealth(HealthState.UNHEALTHY, since=NOW - 30)}
    d = route(raw, recent)
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("primary", "unhealthy"), ("backup", "trigger_not_met")]
    d = route(raw, {"primary": ModelHealth(HealthState.UNHEALTHY, since=NOW - 61)})
    assert d.model == "backup"


def test_probing_admits_only_with_a_free_slot() -> None:
    d = route(base(), {"primary": ModelHealth(HealthState.PROBING, probe_admitted=True)})
    assert (d.model, d.probe) == ("primary", True)
    d = route(base(), {"primary": ModelHealth(HealthState.PROBING, probe_admitted=False)})
    assert (d.model, reasons(d)) == ("backup", [("primary", "unhealthy")])


def test_attempt_failed_moves_on_for_a_retryable_error() -> None:
    d = route(base(), failures={"primary": "timeout"})
    assert (d.model, reasons(d)) == ("backup", [("primary", "attempt_failed")])


def test_attempt_failed_with_a_non_retryable_error_needs_its_trigger() -> None:
    d = route(base(), failures={"primary": "auth"})
    assert d.status is DecisionStatus.TERMINAL
    assert reasons(d) == [("primary", "attempt_failed"), ("backup", "trigger_not_met")]
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "on": ["auth"]}]
    assert route(raw, failures={"primary": "auth"}).model == "backup"


def test_health_is_judged_per_policy() -> None:
    raw = base()
    raw["policies"]["other"] = {"profile": "p", "primary": "primary", "fallbacks": ["backup"]}
    view = StaticHealth(by_pair={("agent", "primary"): ModelHealth(HealthState.UNHEALTHY)})
    tbl = table(raw)
    ctx = RouteContext.from_dict({"agent": "agent"}, trace_id="t")
    assert decide(ctx, tbl, view, SafeMode(), NOW).model == "backup"
    ctx = RouteContext.from_dict({"agent": "other"}, trace_id="t")
    assert decide(ctx, tbl, view, SafeMode(), NOW).model == "primary"


# ------------------------------------------------------------------------------------------ safe mode


def test_safe_mode_allows_only_trusted_models() -> None:
    raw = base()
    raw["models"]["backup"]["trusted"] = False
    d = route(raw, DOWN, safe=True)
    assert d.status is DecisionStatus.TERMINAL and d.safe_mode
    assert reasons(d) == [("primary", "unhealthy"), ("backup", "safe_mode")]
    assert route(raw, safe=True).model == "primary"
    assert route(raw, DOWN, safe=False).model == "backup"


def test_safe_mode_for_one_tenant() -> None:
    raw = base()
    raw["models"]["primary"]["trusted"] = False
    mode = SafeMode(tenants=frozenset({"acme"}))
    d = route(raw, safe=mode, tenant="acme")
    assert (d.model, d.safe_mode, reasons(d)) == ("backup", True, [("primary", "safe_mode")])
    d = route(raw, safe=mode, tenant="globex")
    assert (d.model, d.safe_mode) == ("primary", False)
    assert route(raw, safe=mode).model == "primary"


# --------------------------------------------------------------------------------------------- canary


def _canary_bundle() -> dict[str, object]:
    raw = base()
    triggers = ["degraded", "unavailable", "retryable"]
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "on": triggers}]
    raw["policies"]["agent"]["canary"] = {"percent": 10, "step": "30s"}
    return raw


def test_canary_holds_most_traffic_on_the_model_it_replaces() -> None:
    tbl = table(_canary_bundle())
    ramp = CanaryRamp(from_model="primary", to_model="backup", started_at=NOW)
    picks: Counter[str | None] = Counter()
    for i in range(2000):
        d = route(tbl, {"primary": "degraded"}, canary=ramp, trace_id=f"trace-{i}")
        picks[d.model] += 1
        if d.model == "primary":
            assert reasons(d) == [("backup", "canary_hold")]
    assert 0.05 < picks["backup"] / 2000 < 0.15


def test_canary_steps_double_to_all_traffic() -> None:
    tbl = table(_canary_bundle())
    ramp = CanaryRamp(from_model="primary", to_model="backup", started_at=NOW - 30)  # one step: 20 %
    share = sum(route(tbl, {"primary": "degraded"}, canary=ramp, trace_id=f"t{i}").model == "backup"
                for i in range(2000)) / 2000
    assert 0.14 < share < 0.26
    ramp = CanaryRamp(from_model="primary", to_model="backup", started_at=NOW - 120)  # 10, 20, 40, 80, 100
    picks = {route(tbl, {"primary": "degraded"}, canary=ramp, trace_id=f"t{i}").model for i in range(300)}
    assert picks == {"backup"}


def test_canary_never_keeps_traffic_on_an_unhealthy_model() -> None:
    tbl = table(_canary_bundle())
    ramp = CanaryRamp(from_model="primary", to_model="backup", started_at=NOW)
    for i in range(300):
        assert route(tbl, DOWN, canary=ramp, trace_id=f"t{i}").model == "backup"
        assert route(tbl, failures={"primary": "timeout"}, canary=ramp, trace_id=f"t{i}").model == "backup"


# --------------------------------------------------------------------------------------------- errors


def test_unknown_agent_is_404() -> None:
    with pytest.raises(RoutingError) as caught:
        route(base(), agent="nobody")
    assert (caught.value.code, caught.value.status) == ("unknown_agent", 404)


def test_unknown_data_class_is_422() -> None:
    with pytest.raises(RoutingError) as caught:
        route(base(), data_class="top-secret")
    assert (caught.value.code, caught.value.status) == ("unknown_data_class", 422)


def test_capability_outside_the_profile_ceiling_is_422() -> None:
    with pytest.raises(RoutingError) as caught:
        route(base(), capabilities=["text", "tool_use"])
    assert (caught.value.code, caught.value.status) == ("capability_not_allowed", 422)
    assert "tool_use" in caught.value.message


def test_override_not_allowed_is_403_and_a_listed_override_applies() -> None:
    raw = base()
    raw["policies"]["side"] = {"profile": "p", "primary": "backup", "match": {"agent": "someone-else"}}
    with pytest.raises(RoutingError) as caught:
        route(raw, metadata={"policy": "side"})
    assert (caught.value.code, caught.value.status) == ("override_not_allowed", 403)
    with pytest.raises(RoutingError):
        route(raw, metadata={"policy": "no-such-policy"})
    raw["policies"]["agent"]["overrides"] = ["side"]
    d = route(raw, metadata={"policy": "side"})
    assert (d.policy, d.model) == ("side", "backup")
    assert route(raw, metadata={"policy": "agent"}).policy == "agent"  # naming the resolved policy is fine


def test_a_request_without_agent_or_match_is_refused() -> None:
    with pytest.raises(RoutingError) as caught:
        route(base(), agent=None, task_type="anything")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "body",
    [{"agent": 3}, {"agent": "agent", "modalities": "text"}, {"agent": "agent", "sla_ms": -1},
     {"agent": "agent", "estimated_tokens": {"input": -5}}, {"agent": "agent", "colour": "blue"}, []],
)
def test_malformed_requests_are_refused(body: object) -> None:
    with pytest.raises(RoutingError) as caught:
        RouteContext.from_dict(body)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_context" and caught.value.status == 422


# ---------------------------------------------------------------------------------------------- A/B arms


def _ab_bundle(weights: tuple[int, int] = (90, 10)) -> dict[str, object]:
    raw = base()
    raw["models"]["next"] = model("text", "structured_output")
    raw["approvals"].append(approve("next"))
    raw["policies"]["agent"]["primary"] = arms(primary=weights[0], next=weights[1])
    return raw


def test_arms_are_sticky_by_tenant() -> None:
    tbl = table(_ab_bundle((50, 50)))
    for tenant in ("acme", "globex", "initech", "umbrella", "hooli"):
        picks = {route(tbl, tenant=tenant, trace_id=f"t{i}").arm for i in range(50)}
        assert len(picks) == 1
    arms = {route(tbl, tenant=f"tenant-{i}").arm for i in range(50)}
    assert arms == {"primary", "next"}


def test_arms_without_tenant_split_by_trace_id() -> None:
    tbl = table(_ab_bundle((50, 50)))
    assert {route(tbl, trace_id=f"t{i}").arm for i in range(50)} == {"primary", "next"}
    assert len({route(tbl, trace_id="fixed").arm for _ in range(20)}) == 1


def test_arm_weights_are_respected_over_many_tenants() -> None:
    tbl = table(_ab_bundle((90, 10)))
    counts = Counter(route(tbl, tenant=f"tenant-{i}").arm for i in range(4000))
    assert 0.86 < counts["primary"] / 4000 < 0.94
    tbl = table(_ab_bundle((100, 0)))
    assert {route(tbl, tenant=f"tenant-{i}").arm for i in range(500)} == {"primary"}


def test_the_arm_is_named_and_a_failing_arm_hands_over_to_the_other() -> None:
    tbl = table(_ab_bundle((50, 50)))
    d = route(tbl, tenant="acme")
    assert d.arm is not None
    other = "next" if d.arm == "primary" else "primary"
    assert d.model == d.arm and d.status is DecisionStatus.PRIMARY and d.backups[0] == other
    d2 = route(tbl, {d.arm: "unhealthy"}, tenant="acme")
    assert (d2.arm, d2.model, d2.status) == (d.arm, other, DecisionStatus.PRIMARY)
    d3 = route(tbl, {"primary": "unhealthy", "next": "unhealthy"}, tenant="acme")
    assert (d3.model, d3.status) == ("backup", DecisionStatus.FALLBACK)


# ------------------------------------------------------------------------------------------ determinism


def test_same_inputs_give_the_identical_decision() -> None:
    raw = _ab_bundle((60, 40))
    states = {"primary": ModelHealth(HealthState.DEGRADED, since=NOW - 5, detail="p95 6s > 5s")}
    ctx: dict[str, Any] = {"tenant": "acme", "data_class": "internal",
                           "estimated_tokens": {"input": 100, "output": 50}}
    first = route(raw, states, **ctx).to_dict()
    for _ in range(5):
        assert route(table(raw), states, **ctx).to_dict() == first
    all_down = {"primary": "unhealthy", "next": "unhealthy", "backup": "unhealthy"}
    terminal = route(raw, all_down, **ctx)
    assert terminal.is_terminal and terminal.to_dict() == route(raw, all_down, **ctx).to_dict()
