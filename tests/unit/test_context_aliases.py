"""The PowerX task context and camelCase spellings of the route request (CONTRACT §3), and business lines."""

from __future__ import annotations

from typing import Any

import pytest

from routeguard.core.context import RouteContext, RoutingError
from routeguard.core.resolve import PolicyIndex, RequestKey
from routeguard.runtime import Router

POWERX = {"tenant": "acme", "taskType": "triage", "sla": 2000, "budget": 0.05, "modality": "text"}


def test_the_powerx_task_context_means_what_its_canonical_twin_means() -> None:
    ctx = RouteContext.from_dict(POWERX)
    canonical = RouteContext.from_dict(
        {"tenant": "acme", "task_type": "triage", "sla_ms": 2000, "budget_usd": 0.05, "modalities": ["text"]}
    )
    assert ctx == canonical


@pytest.mark.parametrize(
    ("sla", "ms"), [(2000, 2000.0), ("2s", 2000.0), ("1500ms", 1500.0), ("1500", 1500.0), ("1m", 60000.0)]
)
def test_sla_is_milliseconds_or_a_duration_string(sla: Any, ms: float) -> None:
    assert RouteContext.from_dict({"agent": "a", "sla": sla}).sla_ms == ms


def test_camel_case_of_every_other_field() -> None:
    ctx = RouteContext.from_dict(
        {"agent": "a", "dataClass": "restricted", "businessLine": "retail", "traceId": "t-1",
         "estimatedTokens": {"input": 10, "output": 5}, "slaMs": 900, "budgetUsd": 0.01, "modality": ["text"]}
    )
    assert (ctx.data_class, ctx.business_line, ctx.trace_id) == ("restricted", "retail", "t-1")
    assert (ctx.input_tokens, ctx.output_tokens, ctx.sla_ms, ctx.budget_usd) == (10, 5, 900.0, 0.01)
    assert ctx.modalities == frozenset({"text"})


@pytest.mark.parametrize(
    "body",
    [
        {"agent": "a", "task_type": "triage", "taskType": "intake"},
        {"agent": "a", "sla_ms": 1000, "sla": "2s"},
        {"agent": "a", "budget_usd": 0.05, "budget": 0.5},
        {"agent": "a", "modalities": ["text", "image"], "modality": "text"},
        {"agent": "a", "metadata": {"policy": "x", "profile": "y"}},
    ],
)
def test_two_spellings_that_disagree_are_a_422_naming_both(body: dict[str, Any]) -> None:
    with pytest.raises(RoutingError) as err:
        RouteContext.from_dict(body)
    assert err.value.status == 422 and err.value.code == "conflicting_fields"
    assert "disagree" in err.value.message


def test_two_spellings_that_agree_are_accepted() -> None:
    ctx = RouteContext.from_dict({"agent": "a", "task_type": "t", "taskType": "t", "sla_ms": 2000, "sla": "2s"})
    assert (ctx.task_type, ctx.sla_ms) == ("t", 2000.0)


def test_metadata_profile_is_another_name_for_metadata_policy() -> None:
    assert RouteContext.from_dict({"agent": "a", "metadata": {"profile": "p2"}}).policy_override == "p2"


def test_a_bad_sla_string_and_an_unknown_camel_field_name_the_field() -> None:
    with pytest.raises(RoutingError, match="sla"):
        RouteContext.from_dict({"agent": "a", "sla": "soon"})
    with pytest.raises(RoutingError, match=r"unknown field.*fooBar"):
        RouteContext.from_dict({"agent": "a", "fooBar": 1})


BUNDLE: dict[str, Any] = {
    "models": {m: {"capabilities": ["text"], "clearance": "restricted"} for m in ("m-retail", "m-any", "m-x")},
    "profiles": {"p": {"data_class": "public"}},
    "approvals": [{"model": m, "profile": "p"} for m in ("m-retail", "m-any", "m-x")],
    "policies": {
        "bank": {"profile": "p", "primary": "m-any"},
        "bank-retail": {
            "profile": "p", "primary": "m-retail", "match": {"agent": "bank", "business_lines": ["retail"]}
        },
        "by-line": {"profile": "p", "primary": "m-x", "match": {"business_lines": ["wholesale"]}},
    },
}


def test_business_line_takes_part_in_match_like_tenant() -> None:
    router = Router.from_bundle(BUNDLE)
    assert router.decide({"agent": "bank", "businessLine": "retail"}).model == "m-retail"
    assert router.decide({"agent": "bank", "business_line": "corporate"}).model == "m-any"
    assert router.decide({"agent": "bank"}).model == "m-any"
    assert router.decide({"business_line": "wholesale"}).model == "m-x"


def test_business_line_ranks_below_tenant_for_requests_without_an_agent() -> None:
    from routeguard.core.parse import parse_bundle

    raw = {**BUNDLE, "policies": {
        "by-tenant": {"profile": "p", "primary": "m-any", "match": {"tenants": ["acme"]}},
        "by-line": {"profile": "p", "primary": "m-x", "match": {"business_lines": ["wholesale"]}},
    }}
    index = PolicyIndex(parse_bundle(raw).policies)
    found = index.resolve(RequestKey(tenant="acme", business_line="wholesale"))
    assert found is not None and found.name == "by-tenant"
