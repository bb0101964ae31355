"""Routing changes written into bundles: per-class policies, changed primaries, no ambiguity."""

from __future__ import annotations

from typing import Any

from routeguard.core.checks import check_bundle
from routeguard.core.parse import parse_bundle
from routeguard.core.resolve import PolicyIndex, RequestKey
from routeguard.review.bundle_out import Change, build_proposal

NOW = 1.8e9


def _raw(policies: dict[str, Any], vision_big: bool = False) -> dict[str, Any]:
    def model(price: float, caps: list[str]) -> dict[str, Any]:
        return {
            "provider": "p",
            "endpoint": {"type": "openai"},
            "capabilities": caps,
            "clearance": "internal",
            "cost": {"input_per_1m": price, "output_per_1m": price},
        }

    return {
        "models": {
            "big": model(10, ["text", "vision"] if vision_big else ["text"]),
            "tiny": model(1, ["text"]),
        },
        "profiles": {"p": {"data_class": "internal"}},
        "approvals": [{"model": "big", "profile": "p"}, {"model": "tiny", "profile": "p"}],
        "policies": policies,
    }


def _propose(
    raw: dict[str, Any], changes: list[Change], routes: dict[str, str], agent: str | None = None
) -> Any:
    bundle = parse_bundle(raw)
    return build_proposal(raw, bundle, changes, routes=routes, agent=agent, now=NOW, label="review-test")


def _routes_to(raw: dict[str, Any], klass: str, agent: str | None = None) -> tuple[str, ...]:
    policy = PolicyIndex(parse_bundle(raw).policies).resolve(RequestKey(agent=agent, task_type=klass))
    assert policy is not None
    return policy.primary_models


def test_one_class_is_split_out_without_ambiguity() -> None:
    raw = _raw(
        {"qa": {"profile": "p", "match": {"task_types": ["a", "b"]}, "primary": "big", "fallbacks": ["tiny"]}}
    )
    out = _propose(raw, [Change("a", "qa", "big", "tiny", "move_cheaper")], {"a": "tiny", "b": "big"})
    assert out.valid and out.applied and not out.dropped
    assert check_bundle(parse_bundle(out.raw), NOW) == []
    assert _routes_to(out.raw, "a") == ("tiny",) and _routes_to(out.raw, "b") == ("big",)
    assert _routes_to(out.raw, "a", agent="qa") == ("tiny",)
    new = out.raw["policies"][out.policy_of["a"]]
    assert new["match"] == {"agent": "qa", "task_types": ["a"]} and new["fallbacks"] == [{"model": "big"}]
    assert raw["policies"]["qa"]["match"]["task_types"] == ["a", "b"]  # the input is not modified


def test_all_classes_of_a_policy_moving_changes_its_primary() -> None:
    raw = _raw({"qa": {"profile": "p", "match": {"task_types": ["a"]}, "primary": "big"}})
    out = _propose(raw, [Change("a", "qa", "big", "tiny", "move_cheaper")], {"a": "tiny"})
    assert out.raw["policies"]["qa"]["primary"] == "tiny" and list(out.raw["policies"]) == ["qa"]


def test_agent_wide_policy_gets_a_more_specific_one() -> None:
    raw = _raw({"bot": {"profile": "p", "primary": "big"}})
    out = _propose(raw, [Change("a", "bot", "big", "tiny", "move_cheaper")], {"a": "tiny"}, agent="bot")
    assert out.valid
    assert _routes_to(out.raw, "a", agent="bot") == ("tiny",) and _routes_to(out.raw, "z", agent="bot") == (
        "big",
    )


def test_broader_fallbacks_are_not_kept_behind_a_narrower_primary() -> None:
    raw = _raw(
        {"qa": {"profile": "p", "match": {"task_types": ["a", "b"]}, "primary": "big"}}, vision_big=True
    )
    out = _propose(raw, [Change("a", "qa", "big", "tiny", "move_cheaper")], {"a": "tiny", "b": "big"})
    assert out.valid
    assert "fallbacks" not in out.raw["policies"][out.policy_of["a"]]  # big has vision; tiny does not


def test_a_change_that_fails_governance_is_dropped_with_why() -> None:
    raw = _raw({"qa": {"profile": "p", "match": {"task_types": ["a", "b"]}, "primary": "big"}})
    raw["approvals"] = [{"model": "big", "profile": "p"}]  # tiny is not approved
    out = _propose(raw, [Change("a", "qa", "big", "tiny", "move_cheaper")], {"a": "tiny", "b": "big"})
    assert out.valid and not out.applied
    assert out.dropped and "unapproved_model" in out.dropped[0][1]
    assert out.raw == raw
