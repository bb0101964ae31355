"""The Responses API over a chat-only provider (Anthropic, LiteLLM, callables): request, answer and stream.

OpenAI and Azure endpoints receive ``POST /v1/responses`` as it is. Every other provider speaks chat, so a
Responses request is turned into a chat request — ``instructions`` → a system message; ``input`` text or
items (messages with ``input_text`` / ``output_text`` / ``input_image`` / ``input_file`` parts,
``function_call`` and ``function_call_output`` items) → messages; function ``tools`` and ``tool_choice``;
``max_output_tokens``; ``text.format`` → ``response_format`` — and the chat answer back into a ``response``
object (a ``message`` output item, one ``function_call`` item per tool call, usage as input/output tokens,
a length or content-filter finish as ``status: incomplete``). A chat stream becomes the Responses event
sequence (``response.created`` … ``response.output_text.delta`` … ``response.completed``). Stored state
(``previous_response_id``), built-in tools (web/file search) and background mode need the real API: refused.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.execution.providers.openai_shapes import new_id

__all__ = ["chat_request", "response_events", "response_from_completion"]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _refuse(message: str) -> ProviderError:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": "unsupported_for_chat_models"}}
    return ProviderError.of(ErrorClass.BAD_REQUEST, message, status=400, body=body)


def _part(part: Any) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        return {"type": "image_url", "image_url": {"url": part["image_url"]}}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        return {"type": "file", "file": {"file_data": part["file_data"], "filename": part.get("filename")}}
    raise _refuse(f"input content part {kind!r} is not supported by this model")


def _messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise _refuse("input: expected a string or a list of items")
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise _refuse("input: every item must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            parts = content if isinstance(content, str) else [_part(p) for p in content or ()]
            out.append({"role": item.get("role", "user"), "content": parts})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
            if out and out[-1]["role"] == "assistant" and out[-1].get("tool_calls") is not None:
                out[-1]["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            out.append({"role": "tool", "tool_call_id": item.get("call_id"),
                        "content": output if isinstance(output, str) else [_part(p) for p in output or ()]})
        elif kind != "reasoning":
            raise _refuse(f"input item type {kind!r} is not supported by this model")
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in tools or ():
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else tool
            raise _refuse(f"tool type {kind!r} needs the Responses API itself; this model speaks chat")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def chat_request(request: Mapping[str, Any], *, stream: bool = False) -> dict[str, Any]:
    """The chat request for a Responses request (raises ``bad_request`` for what chat cannot carry)."""
    for key in ("previous_response_id", "conversation", "background", "prompt"):
        if request.get(key):
            raise _refuse(f"{key}: needs the Responses API itself; this model speaks chat")
    messages = _messages(request.get("input", ""))
    if isinstance(request.get("instructions"), str):
        messages.insert(0, {"role": "system", "content": request["instructions"]})
    chat: dict[str, Any] = {"model": request.get("model"), "messages": messages}
    if request.get("tools"):
        chat["tools"] = _tools(request["tools"])
    choice = request.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif isinstance(choice, str):
        chat["tool_choice"] = choice
    for source, target in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"),
                           ("top_p", "top_p"), ("parallel_tool_calls", "parallel_tool_calls"), ("user", "user")):
        if request.get(source) is not None:
            chat[target] = request[source]
    fmt = (request.get("text") or {}).get("format") if isinstance(request.get("text"), Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def _usage(usage: Any) -> dict[str, Any]:
    u = usage if isinstance(usage, Mapping) else {}
    inp, out = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {"input_tokens": inp, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": inp + out}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []}


def _call_item(call: Mapping[str, Any], item_id: str, status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "function_call", "id": item_id, "call_id": call.get("id"), "name": function.get("name"),
            "arguments": function.get("arguments") or "", "status": status}


def _response(request: Mapping[str, Any], rid: str, created: int, model: str, output: list[dict[str, Any]],
              finish: str | None, usage: Any) -> dict[str, Any]:
    reason = _INCOMPLETE.get(finish or "")
    return {"id": rid, "object": "response", "created_at": created,
            "status": "incomplete" if reason else ("completed" if finish else "in_progress"),
            "model": model, "output": output, "error": None,
            "incomplete_details": {"reason": reason} if reason else None,
            "instructions": request.get("instructions"), "metadata": request.get("metadata") or {},
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "tool_choice": request.get("tool_choice", "auto"), "tools": list(request.get("tools") or ()),
            "usage": _usage(usage) if usage is not None else None}


def response_from_completion(completion: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The ``response`` object for a chat completion."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("content"):
        output.append(_message_item(new_id("msg"), str(message["content"])))
    output += [_call_item(call, new_id("fc")) for call in message.get("tool_calls") or ()]
    return _response(request, new_id("resp"), int(completion.get("created") or time.time()),
                     str(completion.get("model") or ""), output, choice.get("finish_reason") or "stop",
                     completion.get("usage") or {})


class _Events:
    """Builds the Responses event sequence while chat chunks arrive."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.request = request
        self.rid, self.created, self.model = new_id("resp"), int(time.time()), ""
        self.seq = 0
        self.text: str | None = None  # None: no message item opened yet
        self.msg_id = new_id("msg")
        self.msg_index = -1
        self.calls: dict[int, dict[str, Any]] = {}  # chat tool index -> {call, item id, output index}
        self.items = 0
        self.finish: str | None = None
        self.usage: Any = None

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"type": kind, "sequence_number": self.seq - 1, **fields}

    def snapshot(self, output: list[dict[str, Any]]) -> dict[str, Any]:
        return _response(self.request, self.rid, self.created, self.model, output, self.finish, self.usage)

    def on_chunk(self, chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.model = self.model or str(chunk.get("model") or "")
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        out: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.text is None:
                    self.text, self.msg_index = "", self.items
                    self.items += 1
                    out.append(self.event("response.output_item.added", output_index=self.msg_index,
                                          item=_message_item(self.msg_id, "", "in_progress")))
                    out.append(self.event("response.content_part.added", item_id=self.msg_id,
                                          output_index=self.msg_index, content_index=0,
                                          part={"type": "output_text", "text": "", "annotations": []}))
                self.text += delta["content"]
                out.append(self.event("response.output_text.delta", item_id=self.msg_id, output_index=self.msg_index,
                                      content_index=0, delta=delta["content"], logprobs=[]))
            for call in delta.get("tool_calls") or ():
                out += self._call_delta(call)
            self.finish = choice.get("finish_reason") or self.finish
        return out

    def _call_delta(self, call: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        known = self.calls.get(index)
        out = []
        if known is None:
            known = self.calls[index] = {"call": {"id": call.get("id"), "function": {
                "name": function.get("name"), "arguments": ""}}, "id": new_id("fc"), "index": self.items}
            self.items += 1
            out.append(self.event("response.output_item.added", output_index=known["index"],
                                  item=_call_item(known["call"], known["id"], "in_progress")))
        piece = function.get("arguments") or ""
        if piece:
            known["call"]["function"]["arguments"] += piece
            out.append(self.event("response.function_call_arguments.delta", item_id=known["id"],
                                  output_index=known["index"], delta=piece))
        return out

    def closing(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        final: list[tuple[int, dict[str, Any]]] = []
        if self.text is not None:
            item = _message_item(self.msg_id, self.text)
            part = item["content"][0]
            common = {"item_id": self.msg_id, "output_index": self.msg_index, "content_index": 0}
            out.append(self.event("response.output_text.done", **common, text=self.text, logprobs=[]))
            out.append(self.event("response.content_part.done", **common, part=part))
            out.append(self.event("response.output_item.done", output_index=self.msg_index, item=item))
            final.append((self.msg_index, item))
        for known in self.calls.values():
            item = _call_item(known["call"], known["id"])
            out.append(self.event("response.function_call_arguments.done", item_id=known["id"],
                                  output_index=known["index"], arguments=item["arguments"]))
            out.append(self.event("response.output_item.done", output_index=known["index"], item=item))
            final.append((known["index"], item))
        response = self.snapshot([item for _, item in sorted(final, key=lambda pair: pair[0])])
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        out.append(self.event(kind, response=response))
        return out


async def response_events(chunks: AsyncIterator[dict[str, Any]],
                          request: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The Responses stream for a chat stream (errors of the chat stream propagate as they are)."""
    state = _Events(request)
    started = False
    try:
        async for chunk in chunks:
            if not started:
                started = True
                state.model = str(chunk.get("model") or "")
                yield state.event("response.created", response=state.snapshot([]))
                yield state.event("response.in_progress", response=state.snapshot([]))
            for event in state.on_chunk(chunk):
                yield event
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    if not started:
        yield state.event("response.created", response=state.snapshot([]))
    for event in state.closing():
        yield event
