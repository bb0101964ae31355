"""Policy resolution (CONTRACT §1): a request resolves to exactly one policy, most specific first."""

from __future__ import annotations

import pytest
from bundles import Raw, base, findings, route

from routeguard.core.context import RoutingError
from routeguard.core.parse import parse_bundle
from routeguard.core.resolve import PolicyIndex, RequestKey


def _bundle() -> Raw:
    raw = base()
    p = {"profile": "p", "primary": "primary"}
    raw["policies"] = {
        "support": {**p},  # keyed by the agent id: the agent alone
        "support-billing": {**p, "match": {"agent": "support", "task_types": ["billing"]}},
        "support-acme": {**p, "match": {"agent": "support", "tenants": ["acme"]}},
        "writer": {**p, "match": {"task_types": ["draft"]}},  # keyed by agent id, with a task type
        "writer-any": {**p, "match": {"agent": "writer-bot"}},  # `match.agent` names the agent
        "by-task": {**p, "match": {"task_types": ["summarise"]}},
        "by-tenant": {**p, "match": {"tenants": ["globex"]}},
        "by-tag": {**p, "match": {"tags": ["batch"]}},
    }
    return raw


def test_the_resolution_bundle_is_not_ambiguous() -> None:
    assert findings(_bundle()) == []


@pytest.mark.parametrize(
    ("request_fields", "policy"),
    [
        # the agent and its task type first
        ({"agent": "support", "task_type": "billing"}, "support-billing"),
        ({"agent": "support", "task_type": "billing", "tenant": "acme"}, "support-billing"),
        # then the agent alone (its tenant refines within that tier)
        ({"agent": "support"}, "support"),
        ({"agent": "support", "task_type": "other"}, "support"),
        ({"agent": "support", "tenant": "acme"}, "support-acme"),
        ({"agent": "support", "tenant": "globex", "task_type": "summarise", "tags": ["batch"]}, "support"),
        ({"agent": "writer-bot"}, "writer-any"),
        ({"agent": "writer", "task_type": "draft"}, "writer"),
        ({"agent": "writer"}, "writer"),
        # without an agent: task type, then tenant, then tags
        ({"task_type": "summarise", "tenant": "globex", "tags": ["batch"]}, "by-task"),
        ({"tenant": "globex", "tags": ["batch", "x"]}, "by-tenant"),
        ({"tags": ["x", "batch"]}, "by-tag"),
        ({"task_type": "draft", "tenant": "globex"}, "writer"),
    ],
)
def test_most_specific_policy_wins(request_fields: Raw, policy: str) -> None:
    fields = {"agent": None, **request_fields}
    assert route(_bundle(), **fields).policy == policy


def test_index_agrees_with_the_engine() -> None:
    index = PolicyIndex(parse_bundle(_bundle()).policies)
    resolved = index.resolve(RequestKey(agent="support", task_type="billing", tenant="acme"))
    assert resolved is not None and resolved.name == "support-billing"
    assert len(index.best(RequestKey(tags=frozenset({"batch"})))) == 1


def test_an_unknown_agent_is_404_and_an_unmatched_request_is_refused() -> None:
    with pytest.raises(RoutingError) as caught:
        route(_bundle(), agent="nobody", task_type="summarise")
    assert (caught.value.code, caught.value.status) == ("unknown_agent", 404)
    with pytest.raises(RoutingError) as caught:
        route(_bundle(), agent=None, task_type="unknown", tenant="initech", tags=["other"])
    assert caught.value.status == 404


def test_ties_in_a_refused_bundle_still_resolve_deterministically() -> None:
    raw = _bundle()
    raw["policies"]["by-task-2"] = {"profile": "p", "primary": "backup", "match": {"task_types": ["summarise"]}}
    assert [f.code for f in findings(raw)] == ["ambiguous_match"]
    picks = {route(raw, agent=None, task_type="summarise").policy for _ in range(5)}
    assert picks == {"by-task"}
