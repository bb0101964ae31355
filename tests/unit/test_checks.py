"""Governance checks (CONTRACT §1 "Rules the bundle must satisfy"): one smallest bundle per finding code."""

from __future__ import annotations

import pytest
from bundles import NOW, approve, arms, base, findings, model, pairs, ts

from routeguard.core.checks import check_bundle, current_approval
from routeguard.core.parse import parse_bundle


def test_the_base_bundle_is_clean() -> None:
    assert findings(base()) == []


def test_unknown_model_in_primary_fallback_arm_and_approval() -> None:
    raw = base()
    raw["policies"]["agent"]["primary"] = "ghost"
    raw["policies"]["agent"]["fallbacks"] = ["backup", "phantom"]
    raw["approvals"].append(approve("spectre"))
    assert pairs(findings(raw)) == {
        ("unknown_model", "policies.agent.primary"),
        ("unknown_model", "policies.agent.fallbacks[1].model"),
        ("unknown_model", "approvals[2].model"),
    }
    raw = base()
    raw["policies"]["agent"]["primary"] = arms(primary=50, ghost=50)
    assert pairs(findings(raw)) == {("unknown_model", "policies.agent.primary[1].model")}


def test_unapproved_model() -> None:
    raw = base()
    raw["approvals"] = [approve("primary")]
    assert pairs(findings(raw)) == {("unapproved_model", "policies.agent.fallbacks[0].model")}


def test_an_approval_for_another_profile_does_not_count() -> None:
    raw = base()
    raw["profiles"]["other"] = {"data_class": "public"}
    raw["approvals"] = [approve("primary"), approve("backup", profile="other")]
    assert pairs(findings(raw)) == {("unapproved_model", "policies.agent.fallbacks[0].model")}


def test_approval_expired_depends_on_now() -> None:
    raw = base()
    raw["approvals"][1] = approve("backup", expires="2026-03-31")
    found = findings(raw, now=NOW)
    assert pairs(found) == {("approval_expired", "policies.agent.fallbacks[0].model")}
    assert "2026-03-31" in found[0].message
    assert findings(raw, now=ts("2026-03-01")) == []


def test_approval_is_valid_through_its_expiry_day_utc() -> None:
    raw = base()
    raw["approvals"][0] = approve("primary", expires="2026-03-31")
    assert findings(raw, now=ts("2026-03-31T23:59:59")) == []
    assert [f.code for f in findings(raw, now=ts("2026-04-01T00:00:00"))] == ["approval_expired"]


def test_the_longest_approval_wins_when_a_model_has_several() -> None:
    raw = base()
    raw["approvals"].append(approve("primary", expires="2020-01-01"))
    assert findings(raw) == []
    approval, valid = current_approval(parse_bundle(raw), "primary", "p", NOW)
    assert approval is not None and approval.expires == "2099-12-31" and valid


def test_capability_exceeds_primary() -> None:
    raw = base()
    raw["profiles"]["p"]["capabilities"] = ["text", "structured_output", "tool_use"]
    raw["models"]["backup"]["capabilities"] = ["text", "tool_use"]
    found = findings(raw)
    assert pairs(found) == {("capability_exceeds_primary", "policies.agent.fallbacks[0].model")}
    assert "tool_use" in found[0].message


def test_capability_exceeds_primary_is_judged_against_every_arm() -> None:
    raw = base()
    raw["models"]["narrow"] = model("text")
    raw["approvals"].append(approve("narrow"))
    raw["models"]["backup"]["capabilities"] = ["text", "structured_output"]
    raw["policies"]["agent"]["primary"] = arms(primary=90, narrow=10)
    assert pairs(findings(raw)) == {("capability_exceeds_primary", "policies.agent.fallbacks[0].model")}


def test_an_equal_fallback_is_not_broader() -> None:
    raw = base()
    raw["models"]["backup"]["capabilities"] = ["structured_output", "text"]
    assert findings(raw) == []


def test_capability_exceeds_profile() -> None:
    raw = base()
    raw["models"]["primary"]["capabilities"] = ["text", "structured_output", "code_execution"]
    found = findings(raw)
    assert pairs(found) == {("capability_exceeds_profile", "policies.agent.primary")}
    assert "code_execution" in found[0].message


def test_a_profile_requiring_more_than_its_ceiling_is_a_finding() -> None:
    raw = base()
    raw["profiles"]["p"]["requires"] = ["text", "vision"]
    raw["models"]["primary"]["capabilities"] = ["text", "structured_output", "vision"]
    raw["models"]["backup"]["capabilities"] = ["text", "vision"]
    assert ("capability_exceeds_profile", "profiles.p.requires") in pairs(findings(raw))


def test_missing_required_capability() -> None:
    raw = base()
    raw["profiles"]["p"]["requires"] = ["text", "structured_output"]
    found = findings(raw)
    assert pairs(found) == {("missing_required_capability", "policies.agent.fallbacks[0].model")}
    assert "structured_output" in found[0].message


def test_clearance_too_low() -> None:
    raw = base()
    raw["models"]["backup"]["clearance"] = "internal"
    assert pairs(findings(raw)) == {("clearance_too_low", "policies.agent.fallbacks[0].model")}


def test_clearance_uses_the_bundles_own_order_of_data_classes() -> None:
    raw = base()
    raw["data_classes"] = ["open", "confidential", "secret"]
    raw["models"]["primary"]["clearance"] = "secret"
    raw["models"]["backup"]["clearance"] = "open"
    assert pairs(findings(raw)) == {("clearance_too_low", "policies.agent.fallbacks[0].model")}


@pytest.mark.parametrize("regions", [["eu", "us"], ["us"], None])
def test_region_not_allowed(regions: list[str] | None) -> None:
    raw = base()
    if regions is None:
        del raw["models"]["backup"]["regions"]  # runs anywhere: not inside the allowed regions
    else:
        raw["models"]["backup"]["regions"] = regions
    assert pairs(findings(raw)) == {("region_not_allowed", "policies.agent.fallbacks[0].model")}


def test_a_profile_without_regions_allows_any() -> None:
    raw = base()
    del raw["profiles"]["p"]["regions"]
    raw["models"]["backup"]["regions"] = ["us"]
    assert findings(raw) == []


def test_unknown_references() -> None:
    raw = base()
    raw["policies"]["agent"]["notify"] = ["pager"]
    raw["policies"]["agent"]["overrides"] = ["no-such-policy"]
    raw["policies"]["second"] = {"profile": "nope", "primary": "primary"}
    raw["approvals"].append(approve("primary", profile="other"))
    assert pairs(findings(raw)) == {
        ("unknown_reference", "policies.agent.notify[0]"),
        ("unknown_reference", "policies.agent.overrides[0]"),
        ("unknown_reference", "policies.second.profile"),
        ("unknown_reference", "approvals[2].profile"),
    }


def test_known_references_are_fine() -> None:
    raw = base()
    raw["notifiers"] = {"pager": {"type": "webhook", "url": "http://127.0.0.1:1/hook"}}
    raw["policies"]["agent"]["notify"] = ["pager"]
    raw["policies"]["agent"]["overrides"] = ["second"]
    raw["policies"]["second"] = {"profile": "p", "primary": "backup"}
    assert findings(raw) == []


def test_ambiguous_match_on_task_type_without_agent() -> None:
    raw = base()
    raw["policies"]["one"] = {"profile": "p", "primary": "primary", "match": {"task_types": ["summarise"]}}
    raw["policies"]["two"] = {"profile": "p", "primary": "backup",
                              "match": {"task_types": ["summarise", "x"]}}
    found = findings(raw)
    assert [f.code for f in found] == ["ambiguous_match"]
    assert found[0].path == "policies.two.match" and "one" in found[0].message


def test_ambiguous_match_for_one_agent_and_task_type() -> None:
    raw = base()
    raw["policies"]["agent"]["match"] = {"task_types": ["triage"]}
    raw["policies"]["agent-b"] = {"profile": "p", "primary": "backup",
                                  "match": {"agent": "agent", "task_types": ["triage"]}}
    assert [f.code for f in findings(raw)] == ["ambiguous_match"]


def test_a_more_specific_policy_is_not_ambiguous() -> None:
    raw = base()
    raw["policies"]["agent-intake"] = {"profile": "p", "primary": "backup",
                                       "match": {"agent": "agent", "task_types": ["intake"]}}
    raw["policies"]["by-task"] = {"profile": "p", "primary": "primary",
                                  "match": {"task_types": ["summarise"]}}
    raw["policies"]["by-tenant"] = {"profile": "p", "primary": "primary", "match": {"tenants": ["acme"]}}
    assert findings(raw) == []


def test_three_breaches_give_three_findings_at_once() -> None:
    raw = base()
    raw["models"]["backup"]["clearance"] = "public"  # clearance_too_low
    raw["models"]["backup"]["regions"] = ["us"]  # region_not_allowed
    raw["approvals"] = [approve("primary", expires="2026-01-01"), approve("backup")]  # approval_expired
    assert pairs(findings(raw)) == {
        ("approval_expired", "policies.agent.primary"),
        ("clearance_too_low", "policies.agent.fallbacks[0].model"),
        ("region_not_allowed", "policies.agent.fallbacks[0].model"),
    }


def test_every_finding_of_every_policy_is_listed() -> None:
    raw = base()
    raw["approvals"] = []
    raw["policies"]["second"] = {"profile": "p", "primary": "backup", "fallbacks": ["ghost"],
                                 "match": {"agent": "agent-2"}}
    assert pairs(findings(raw)) == {
        ("unapproved_model", "policies.agent.primary"),
        ("unapproved_model", "policies.agent.fallbacks[0].model"),
        ("unapproved_model", "policies.second.primary"),
        ("unknown_model", "policies.second.fallbacks[0].model"),
    }


def test_findings_have_the_contract_shape() -> None:
    raw = base()
    raw["models"]["backup"]["clearance"] = "public"
    (finding,) = check_bundle(parse_bundle(raw), NOW)
    assert set(finding.to_dict()) == {"code", "path", "message"}
    assert finding.to_dict()["path"] == "policies.agent.fallbacks[0].model"
