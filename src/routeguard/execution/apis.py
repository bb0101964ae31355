"""The kinds of call the executor runs (chat, embeddings, Responses), and how each reaches a provider.

One retry/fallback loop serves all three (executor.py); an :class:`Api` tells it which provider method
answers a plain call and a stream, and which streamed items are output (after output, never a fallback).

A provider serves embeddings when it has ``embed``; the Responses API when it has ``respond`` /
``respond_stream`` (OpenAI and Azure endpoints forward it as is); any other chat provider serves the
Responses API through the chat bridge (:mod:`responses_bridge`). A provider that cannot serve a kind at all
answers ``bad_request`` (400), naming the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.execution.providers.base import Provider

__all__ = ["CHAT", "EMBEDDINGS", "RESPONSES", "Api", "chat_has_output", "response_has_output", "usage_tokens"]


def chat_has_output(chunk: Mapping[str, Any]) -> bool:
    """A chunk that hands something to the caller: content, a tool call, or a finish."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if (delta.get("content") or delta.get("tool_calls") or delta.get("function_call")
                or choice.get("finish_reason")):
            return True
    return not chunk.get("choices")


_PREAMBLE = frozenset({"response.created", "response.in_progress", "response.queued"})


def response_has_output(event: Mapping[str, Any]) -> bool:
    """Every Responses stream event but the opening ones (created, in_progress) carries output."""
    return event.get("type") not in _PREAMBLE


def usage_tokens(item: Mapping[str, Any]) -> tuple[int, int] | None:
    """(input, output) tokens from an answer's or a streamed item's ``usage`` (chat, embeddings, Responses)."""
    usage = item.get("usage")
    if not isinstance(usage, Mapping):
        response = item.get("response")
        usage = response.get("usage") if isinstance(response, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    inp = usage.get("prompt_tokens", usage.get("input_tokens"))
    out = usage.get("completion_tokens", usage.get("output_tokens"))
    numbers = [v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0 for v in (inp, out)]
    return numbers[0], numbers[1]


def _unsupported(provider: Provider, what: str) -> ProviderError:
    message = f"model {provider.name} does not serve {what}"
    body = {"error": {"message": message, "type": "invalid_request_error", "param": "model",
                      "code": "unsupported_endpoint"}}
    return ProviderError.of(ErrorClass.BAD_REQUEST, message, status=400, body=body, model=provider.name)


Call = Callable[[Provider, dict[str, Any], float], Awaitable[dict[str, Any]]]
Open = Callable[[Provider, dict[str, Any], float], AsyncIterator[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Api:
    name: str
    call: Call
    open: Open | None
    has_output: Callable[[Mapping[str, Any]], bool]


def _chat(provider: Provider, request: dict[str, Any], timeout_s: float) -> Awaitable[dict[str, Any]]:
    return provider.complete(request, timeout_s=timeout_s)


def _chat_stream(provider: Provider, request: dict[str, Any], timeout_s: float) -> AsyncIterator[dict[str, Any]]:
    return provider.stream(request, timeout_s=timeout_s)


async def _embed(provider: Provider, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    embed = getattr(provider, "embed", None)
    if embed is None:
        raise _unsupported(provider, "embeddings")
    result: dict[str, Any] = await embed(request, timeout_s=timeout_s)
    return result


async def _respond(provider: Provider, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    respond = getattr(provider, "respond", None)
    if respond is not None:
        result: dict[str, Any] = await respond(request, timeout_s=timeout_s)
        return result
    from routeguard.execution.responses_bridge import chat_request, response_from_completion

    return response_from_completion(await provider.complete(chat_request(request), timeout_s=timeout_s), request)


def _respond_stream(provider: Provider, request: dict[str, Any], timeout_s: float) -> AsyncIterator[dict[str, Any]]:
    respond_stream = getattr(provider, "respond_stream", None)
    if respond_stream is not None:
        stream: AsyncIterator[dict[str, Any]] = respond_stream(request, timeout_s=timeout_s)
        return stream
    from routeguard.execution.responses_bridge import chat_request, response_events

    return response_events(provider.stream(chat_request(request, stream=True), timeout_s=timeout_s), request)


CHAT = Api("chat", _chat, _chat_stream, chat_has_output)
EMBEDDINGS = Api("embeddings", _embed, None, chat_has_output)
RESPONSES = Api("responses", _respond, _respond_stream, response_has_output)
