"""The proxy's request shaping: task context from `metadata` and `x-routeguard-*` headers, what goes upstream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from routeguard.service.errors import ApiError
from routeguard.service.proxy_request import build_call, read_headers
from routeguard.service.sse import DONE, chunk_event, error_event

MESSAGES = [{"role": "user", "content": "x" * 400}, {"role": "user", "content": [{"type": "text", "text": "y" * 40}]}]


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(f"x-routeguard-{k.replace('_', '-')}".encode(), v.encode()) for k, v in values.items()]


def test_metadata_fields_become_the_context_and_stay_out_of_the_upstream_request() -> None:
    body: dict[str, Any] = {
        "model": "triage-agent", "messages": MESSAGES, "temperature": 0, "max_tokens": 300,
        "metadata": {"tenant": "acme", "task_type": "triage", "data_class": "restricted", "region": "eu-west-2",
                     "tags": "urgent, eu", "sla_ms": "2000", "budget_usd": 0.05, "policy": "triage-agent-intake",
                     "ticket": "T-1"},
    }
    call = build_call(body, read_headers([]))
    assert call.agent == "triage-agent" and call.stream is False
    assert call.context == {
        "agent": "triage-agent", "stream": False, "tenant": "acme", "task_type": "triage",
        "data_class": "restricted", "region": "eu-west-2", "tags": ["urgent", "eu"], "sla_ms": 2000.0,
        "budget_usd": 0.05, "metadata": {"policy": "triage-agent-intake"},
        "estimated_tokens": {"input": (400 + 40) // 4 + 2 * 4, "output": 300},
        "prompt": "x" * 400 + "\n\n" + "y" * 40,  # the user messages' text, for a learned primary
    }
    assert call.request["metadata"] == {"ticket": "T-1"}
    assert {k: v for k, v in call.request.items() if k != "metadata"} == {
        k: v for k, v in body.items() if k != "metadata"}
    assert body["metadata"]["tenant"] == "acme"  # the caller's body is not changed


def test_headers_give_the_context_and_the_body_wins() -> None:
    received = read_headers([
        (b"authorization", b"Bearer tok"), *headers(principal="alice", tenant="from-header", task_type="triage",
                                                    tags="a,b", sla_ms="1500", trace_id="t-1", unknown_thing="z")])
    assert (received.authorization, received.principal) == ("Bearer tok", "alice")
    body = {"model": "agent", "messages": [], "metadata": {"tenant": "from-body"}, "stream": True}
    call = build_call(body, received)
    assert call.context["tenant"] == "from-body" and call.context["task_type"] == "triage"
    assert call.context["tags"] == ["a", "b"] and call.context["sla_ms"] == 1500.0
    assert call.context["trace_id"] == "t-1" and call.stream is True
    assert "unknown_thing" not in call.context and "metadata" not in call.request


def test_untouched_body_is_forwarded_as_is() -> None:
    body = {"model": "agent", "messages": [], "metadata": {"ticket": "T-2"}, "tools": [{"type": "function"}]}
    assert build_call(body, read_headers([])).request is body


@pytest.mark.parametrize(
    ("body", "status"),
    [([], 400), ({"model": 3}, 400), ({"model": "a", "metadata": {"sla_ms": "soon"}}, 422)],
)
def test_bad_requests(body: Any, status: int) -> None:
    with pytest.raises(ApiError) as caught:
        build_call(body, read_headers([]))
    assert caught.value.status == status


def test_sse_encoding() -> None:
    assert chunk_event({"a": "é"}) == 'data: {"a":"é"}\n\n'.encode()
    assert DONE == b"data: [DONE]\n\n"
    event = error_event("it broke", "server_error", "partial_output", model="m")
    assert event.startswith(b"event: error\ndata: ") and event.endswith(b"\n\n")
    assert json.loads(event.split(b"data: ", 1)[1]) == {
        "error": {"message": "it broke", "type": "server_error", "param": None, "code": "partial_output", "model": "m"}}


def test_profile_and_business_line_reach_the_route_request() -> None:
    from routeguard.service.proxy_request import Received, build_call

    body = {"model": "agent", "messages": [], "metadata": {"profile": "other", "business_line": "retail"}}
    call = build_call(body, Received())
    assert call.context["metadata"] == {"policy": "other"} and call.context["business_line"] == "retail"
