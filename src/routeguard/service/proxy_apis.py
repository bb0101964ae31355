"""The OpenAI-compatible APIs the proxy serves, each one governed the same way (CONTRACT §3 "Proxy").

`POST /v1/chat/completions`, `POST /v1/embeddings` and `POST /v1/responses` share one handler
(`proxy.ChatProxy`): policy resolution from `model` (the agent id), `metadata` and `x-routeguard-*` headers,
approvals and the capability ceiling in the decision, health, retries and fallbacks before any output,
terminal actions as 503, the same headers, events, audit and metrics. What differs is described here:
how a request becomes a route context (its token estimate, required capabilities), which executor `Api`
runs it, and how a streamed item is written.

- embeddings: every routed model must have the `embeddings` capability (so a policy serving embeddings needs
  a profile whose ceiling allows it, and approved models that have it); never streamed.
- responses: streamed items are Responses events, written as `event: <type>` + `data:` and ended without
  `[DONE]` (the Responses API has none); chat-only providers are bridged (`execution.responses_bridge`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routeguard.execution.apis import CHAT, EMBEDDINGS, RESPONSES, Api
from routeguard.service import sse
from routeguard.service.api.deps import dumps
from routeguard.service.errors import ApiError
from routeguard.service.proxy_request import ProxyCall, Received, build_call, text_chars

__all__ = ["CHAT_API", "EMBEDDINGS_API", "PROXY_APIS", "RESPONSES_API", "ProxyApi"]

_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class ProxyApi:
    path: str
    api: Api
    build: Callable[[Any, Received], ProxyCall]
    encode: Callable[[Any], bytes]  # one streamed item as SSE
    done: bytes  # what ends a clean stream


def _embeddings_estimate(body: Mapping[str, Any]) -> dict[str, int]:
    value = body.get("input")
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return {"input": len(value), "output": 0}  # one input of token ids
    if isinstance(value, list) and value and isinstance(value[0], list):
        return {"input": sum(len(v) for v in value if isinstance(v, list)), "output": 0}
    return {"input": text_chars(value) // _CHARS_PER_TOKEN, "output": 0}


def _build_embeddings(body: Any, received: Received) -> ProxyCall:
    call = build_call(body, received, estimate=_embeddings_estimate, requires=("embeddings",),
                      what="an embeddings request")
    if not isinstance(call.request.get("input"), str | list):
        raise ApiError(400, "invalid_request", "input: required, a string or a list (of strings or token ids)")
    if "stream" in call.request:  # not an embeddings option: nothing is streamed, nothing is forwarded
        request = {k: v for k, v in call.request.items() if k != "stream"}
        call = ProxyCall(call.agent, False, {**call.context, "stream": False}, request)
    return call


def _responses_estimate(body: Mapping[str, Any]) -> dict[str, int]:
    chars = text_chars(body.get("input")) + text_chars(body.get("instructions"))
    out = body.get("max_output_tokens")
    out = out if isinstance(out, int) and not isinstance(out, bool) and out > 0 else 0
    return {"input": chars // _CHARS_PER_TOKEN, "output": out}


def _build_responses(body: Any, received: Received) -> ProxyCall:
    return build_call(body, received, estimate=_responses_estimate, what="a Responses API request")


def _response_event(event: Any) -> bytes:
    kind = event.get("type") if isinstance(event, dict) else None
    head = f"event: {kind}\n".encode() if isinstance(kind, str) else b""
    return head + b"data: " + dumps(event) + b"\n\n"


CHAT_API = ProxyApi("/v1/chat/completions", CHAT, build_call, sse.chunk_event, sse.DONE)
EMBEDDINGS_API = ProxyApi("/v1/embeddings", EMBEDDINGS, _build_embeddings, sse.chunk_event, sse.DONE)
RESPONSES_API = ProxyApi("/v1/responses", RESPONSES, _build_responses, _response_event, b"")

PROXY_APIS: Mapping[str, ProxyApi] = {p.path: p for p in (CHAT_API, EMBEDDINGS_API, RESPONSES_API)}
