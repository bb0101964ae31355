"""A learned primary (CONTRACT §1, §2 invariant 8, §7): parsing, checks, and the engine's choice within governance."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from bundles import NOW, findings, health, model, pairs, reasons, table
from learned_support import learned_bundle, write_artifact

from routeguard.config.artifacts import artifact_findings
from routeguard.core.context import RouteContext, RoutingError, SafeMode
from routeguard.core.decision import DecisionStatus
from routeguard.core.engine import decide
from routeguard.core.parse import parse_bundle


def decide_with(raw: dict, score: float | None, *, safe: bool = False, states: dict | None = None, **ctx: object):
    context = replace(RouteContext.from_dict({"agent": "agent", **ctx}, trace_id="t"), score=score)
    return decide(context, table(raw), health(states), SafeMode(global_on=safe), NOW)


def test_it_parses_into_two_arms_strong_first() -> None:
    policy = parse_bundle(learned_bundle(threshold=0.7)).policies["agent"]
    assert policy.learned is not None and policy.learned.threshold == 0.7
    assert policy.primary_models == ("strong", "weak")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"threshold": 1.5}, "policies.agent.primary.learned.threshold"),
        ({"sha256": "xyz"}, "policies.agent.primary.learned.sha256"),
        ({"weak": "strong"}, "policies.agent.primary.learned.weak"),
        ({"extra": 1}, "policies.agent.primary.learned.extra"),
    ],
)
def test_a_malformed_learned_primary_is_a_schema_finding(change: dict, path: str) -> None:
    raw = learned_bundle()
    raw["policies"]["agent"]["primary"]["learned"].update(change)
    assert ("schema", path) in pairs(findings(raw))


def test_both_arms_must_be_approved_and_weak_no_broader_than_strong() -> None:
    raw = learned_bundle()
    raw["approvals"] = [a for a in raw["approvals"] if a["model"] != "weak"]
    raw["models"]["weak"] = model("text", "vision", clearance="internal")
    raw["profiles"]["p"]["capabilities"] = ["text", "vision"]
    found = pairs(findings(raw))
    assert ("unapproved_model", "policies.agent.primary.learned.weak") in found
    assert ("capability_exceeds_primary", "policies.agent.primary.learned.weak") in found
    assert findings(learned_bundle()) == []


def test_the_artifact_must_exist_with_the_stated_hash(tmp_path: Path) -> None:
    digest = write_artifact(tmp_path / "qa.json")
    good = parse_bundle(learned_bundle(sha256=digest))
    assert artifact_findings(good, tmp_path) == []
    wrong = parse_bundle(learned_bundle(sha256="a" * 64))
    (f,) = artifact_findings(wrong, tmp_path)
    assert (f.code, f.path) == ("artifact_mismatch", "policies.agent.primary.learned.artifact")
    missing = parse_bundle(learned_bundle(artifact="nowhere.json", sha256=digest))
    assert [f.code for f in artifact_findings(missing, tmp_path)] == ["artifact_mismatch"]


def test_score_at_or_above_the_threshold_goes_weak_below_goes_strong() -> None:
    raw = learned_bundle(threshold=0.6)
    assert decide_with(raw, 0.6).model == "weak"
    assert decide_with(raw, 0.95).to_dict()["score"] == 0.95
    low = decide_with(raw, 0.59)
    assert (low.model, low.status, low.arm) == ("strong", DecisionStatus.PRIMARY, "strong")


def test_no_prompt_or_no_score_goes_strong() -> None:
    d = decide_with(learned_bundle(threshold=0.0), None)
    assert d.model == "strong" and d.to_dict()["score"] is None


def test_restricted_data_never_reaches_the_weak_arm_whatever_the_score() -> None:
    d = decide_with(learned_bundle(), 0.99, data_class="restricted")
    assert d.model == "strong"
    assert reasons(d) == [("weak", "clearance_too_low")]


def test_safe_mode_keeps_an_untrusted_weak_arm_out() -> None:
    assert decide_with(learned_bundle(), 0.99, safe=True).model == "strong"


def test_an_unhealthy_chosen_arm_hands_over_to_the_other() -> None:
    d = decide_with(learned_bundle(), 0.99, states={"weak": "unhealthy"})
    assert d.model == "strong" and reasons(d) == [("weak", "unhealthy")]


def test_no_eligible_arm_is_the_terminal_action_not_some_model() -> None:
    d = decide_with(learned_bundle(), 0.99, safe=True, data_class="restricted", states={"strong": "unhealthy"})
    assert d.status is DecisionStatus.TERMINAL and d.model is None


def test_a_prompt_in_the_request_is_accepted_and_a_score_is_not() -> None:
    ctx = RouteContext.from_dict({"agent": "agent", "prompt": "what is 2+2?"})
    assert ctx.prompt == "what is 2+2?" and ctx.score is None
    with pytest.raises(RoutingError):
        RouteContext.from_dict({"agent": "agent", "score": 0.9})
    with pytest.raises(RoutingError):
        RouteContext.from_dict({"agent": "agent", "prompt": 7})
