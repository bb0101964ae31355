"""OpenAI chat shapes ⇄ Anthropic Messages shapes (pure functions over plain dicts).

Written against the Messages API reference (``POST /v1/messages``, its streaming events and error types)
and the ``anthropic`` SDK's types, without importing the SDK:

* request: ``system``/``developer`` messages → ``system``; user text and ``image_url`` parts (data URLs →
  base64 sources, others → URL sources) and PDF ``file`` parts → content blocks; assistant ``tool_calls`` →
  ``tool_use`` blocks; ``tool`` messages → ``tool_result`` blocks in a user turn; consecutive turns of one
  role merged (the API wants them alternating); ``tools`` → ``input_schema`` tools; ``tool_choice``
  auto/none/required/named → auto/none/any/tool, ``parallel_tool_calls: false`` →
  ``disable_parallel_tool_use``; ``stop`` → ``stop_sequences``; ``max_completion_tokens``/``max_tokens``
  (required by the API: the endpoint's ``max_tokens`` or 4096 when absent); ``user`` → ``metadata.user_id``.
  Fields Anthropic has no counterpart for (``seed``, ``logprobs``, ``response_format``…) are not sent;
  ``n`` > 1 is refused as ``bad_request``.
* answer: text blocks → ``content``, ``tool_use`` → ``tool_calls`` (``input`` as JSON ``arguments``),
  ``stop_reason`` → ``finish_reason``, usage (cache reads and writes count as prompt tokens).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from routeguard.core.errors import ErrorClass, ProviderError

__all__ = ["DEFAULT_MAX_TOKENS", "FINISH_REASONS", "from_message", "to_messages_request", "usage_of"]

DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_PASSED = ("temperature", "top_p", "top_k")


def _refuse(message: str) -> ProviderError:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": "unsupported_for_anthropic"}}
    return ProviderError.of(ErrorClass.BAD_REQUEST, message, status=400, body=body)


# ---------------------------------------------------------------- request
def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";", 1)[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _part(part: Any, where: str) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    if not isinstance(part, Mapping):
        raise _refuse(f"{where}: a content part must be an object")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        return {"type": "text", "text": text} if isinstance(text, str) and text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        if not isinstance(url, str):
            raise _refuse(f"{where}: image_url.url must be a string")
        return _image(url)
    if kind == "file":
        file = part.get("file") if isinstance(part.get("file"), Mapping) else {}
        data = file.get("file_data") if isinstance(file, Mapping) else None
        if isinstance(data, str) and data.startswith("data:"):
            head, _, payload = data.partition(",")
            media_type = head[5:].split(";", 1)[0] or "application/pdf"
            return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": payload}}
        raise _refuse(f"{where}: only inline (data URL) files can be sent to an Anthropic model")
    raise _refuse(f"{where}: content part type {kind!r} is not supported by Anthropic models")


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [b for i, p in enumerate(content) if (b := _part(p, f"{where}[{i}]")) is not None]
    raise _refuse(f"{where}: content must be a string or a list of parts")


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise _refuse(f"{where}: a tool call needs function.name")
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise _refuse(f"{where}: function.arguments is not JSON") from None
    if not isinstance(arguments, Mapping):
        arguments = {"value": arguments}
    return {"type": "tool_use", "id": str(call.get("id") or function["name"]), "name": function["name"],
            "input": dict(arguments)}


def _turns(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating messages)."""
    if not isinstance(messages, list):
        raise _refuse("messages: expected a list")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise _refuse(f"{where}: expected an object")
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.extend(_blocks(content, where))
        elif role == "user":
            add("user", _blocks(content, where))
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            add("assistant", _blocks(content, where) + [_tool_use(c, f"{where}.tool_calls") for c in calls])
        elif role in ("tool", "function"):
            use_id = message.get("tool_call_id") if role == "tool" else message.get("name")
            result = _blocks(content, where)
            add("user", [{"type": "tool_result", "tool_use_id": str(use_id or ""),
                          "content": [b for b in result if b["type"] in ("text", "image")]}])
        else:
            raise _refuse(f"{where}: role {role!r} is not supported")
    return system, turns


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools or ()):
        function = tool.get("function") if isinstance(tool, Mapping) and tool.get("type") == "function" else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise _refuse(f"tools[{i}]: only function tools can be sent to an Anthropic model")
        entry: dict[str, Any] = {"name": function["name"],
                                 "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            entry["description"] = function["description"]
        out.append(entry)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    if choice in (None, "auto"):
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise _refuse(f"tool_choice: {choice!r} is not supported")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def to_messages_request(request: Mapping[str, Any], model: str, *, max_tokens: int | None = None,
                        stream: bool = False) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat request (raises ``bad_request`` for what cannot be sent)."""
    n = request.get("n")
    if isinstance(n, int) and n > 1:
        raise _refuse("n: Anthropic models answer one choice per request")
    system, turns = _turns(request.get("messages"))
    limit = request.get("max_completion_tokens") or request.get("max_tokens") or max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": model, "max_tokens": limit, "messages": turns}
    if system:
        body["system"] = system
    for key in _PASSED:
        if request.get(key) is not None:
            body[key] = request[key]
    stop = request.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.get("tools"):
        body["tools"] = _tools(request["tools"])
    choice = _tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls"))
    if choice is not None and body.get("tools"):
        body["tool_choice"] = choice
    if isinstance(request.get("user"), str):
        body["metadata"] = {"user_id": request["user"]}
    if stream:
        body["stream"] = True
    return body


# ---------------------------------------------------------------- answer
def usage_of(usage: Any, input_tokens: int = 0) -> dict[str, Any]:
    """OpenAI ``usage`` from an Anthropic one (``input_tokens``: known from ``message_start``)."""
    u = usage if isinstance(usage, Mapping) else {}
    cached = int(u.get("cache_read_input_tokens") or 0)
    written = int(u.get("cache_creation_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or input_tokens) + cached + written
    completion = int(u.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": block.get("id"), "type": "function",
            "function": {"name": block.get("name"),
                         "arguments": json.dumps(block.get("input") or {}, separators=(",", ":"))}}


def from_message(message: Mapping[str, Any], created: int) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` from a Messages API ``message``."""
    blocks = message.get("content") or []
    text = "".join(str(b.get("text", "")) for b in blocks if isinstance(b, Mapping) and b.get("type") == "text")
    calls = [tool_call(b) for b in blocks if isinstance(b, Mapping) and b.get("type") == "tool_use"]
    out: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        out["tool_calls"] = calls
    stop = message.get("stop_reason")
    finish = FINISH_REASONS.get(str(stop), "stop")
    return {"id": message.get("id"), "object": "chat.completion", "created": created, "model": message.get("model"),
            "choices": [{"index": 0, "message": out, "logprobs": None, "finish_reason": finish}],
            "usage": usage_of(message.get("usage"))}
