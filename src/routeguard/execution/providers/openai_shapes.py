"""Builders and readers for OpenAI chat-completion shapes (plain dicts, no SDK)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "completion_to_chunks",
    "has_finish_reason",
    "make_chunk",
    "make_completion",
    "make_tool_call",
    "new_id",
    "split_content",
]

_ids = itertools.count(1)


def new_id(prefix: str = "chatcmpl") -> str:
    """A process-unique id (cheap: no uuid, no randomness)."""
    return f"{prefix}-rg{next(_ids):x}"


def make_tool_call(
    name: str, arguments: Mapping[str, Any] | str, call_id: str | None = None
) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, separators=(",", ":"))
    return {"id": call_id or new_id("call"), "type": "function",
            "function": {"name": name, "arguments": args}}


def make_completion(
    model: str,
    content: str | None = "",
    *,
    finish_reason: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int | None = None,
    completion_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` dict. ``finish_reason`` defaults to ``tool_calls`` or ``stop``;
    ``completion_tokens`` defaults to a rough len/4 estimate."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [dict(tc) for tc in tool_calls]
    if completion_tokens is None:
        completion_tokens = (len(content or "") + 3) // 4
    return {
        "id": completion_id or new_id(),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def make_chunk(
    model: str,
    *,
    chunk_id: str,
    created: int = 0,
    role: str | None = None,
    content: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    finish_reason: str | None = None,
    usage: Mapping[str, int] | None = None,
    index: int = 0,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` dict with one choice (a delta of what is given)."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = [dict(tc) for tc in tool_calls]
    chunk: dict[str, Any] = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = dict(usage)
    return chunk


def split_content(content: str, parts: int) -> list[str]:
    """``content`` cut into ``parts`` non-empty pieces (fewer if it is shorter)."""
    if parts <= 1 or len(content) <= 1:
        return [content]
    parts = min(parts, len(content))
    size, extra = divmod(len(content), parts)
    out: list[str] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(content[start:end])
        start = end
    return out


def completion_to_chunks(completion: Mapping[str, Any], content_chunks: int = 1) -> list[dict[str, Any]]:
    """The chunk sequence a stream of ``completion`` would have: role, content piece(s), tool calls,
    then the finish chunk (with ``usage`` when the completion has it)."""
    model = str(completion.get("model", ""))
    cid = str(completion.get("id") or new_id())
    created = int(completion.get("created") or 0)
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    role = message.get("role", "assistant")
    out = [make_chunk(model, chunk_id=cid, created=created, role=role, content="")]
    content = message.get("content")
    if content:
        for piece in split_content(str(content), content_chunks):
            out.append(make_chunk(model, chunk_id=cid, created=created, content=piece))
    tool_calls = message.get("tool_calls")
    if tool_calls:
        indexed = [{"index": i, **tc} for i, tc in enumerate(tool_calls)]
        out.append(make_chunk(model, chunk_id=cid, created=created, tool_calls=indexed))
    out.append(make_chunk(model, chunk_id=cid, created=created,
                          finish_reason=choice.get("finish_reason") or "stop", usage=completion.get("usage")))
    return out


def has_finish_reason(chunk: Mapping[str, Any]) -> bool:
    """Whether any choice of ``chunk`` carries a non-null finish reason."""
    choices = chunk.get("choices")
    if not choices:
        return False
    return any(isinstance(c, Mapping) and c.get("finish_reason") for c in choices)
