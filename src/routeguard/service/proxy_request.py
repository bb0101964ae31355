"""An OpenAI chat request → the route context and the request forwarded upstream (CONTRACT §3 "Proxy").

- `model` is the agent id (the policy key); in legacy single-model mode any name routes to `default`.
- The task context comes from `metadata` in the body, or from `x-routeguard-*` headers; the body wins when
  both name a field. Values may be strings, as OpenAI's `metadata` map holds only strings: lists are
  comma-separated (`tags: "eu,urgent"`), numbers are parsed (`sla_ms: "2000"`).
- The routeguard keys are removed from `metadata` before forwarding (and `metadata` itself when nothing
  else is left); every other field goes upstream untouched (tools, tool_choice, response_format, n, ...).
- `estimated_tokens` is derived when not given: input ≈ characters of the messages / 4, output = the
  request's `max_completion_tokens` / `max_tokens`, so context-window and budget checks see the request.
- Embeddings and Responses requests (`proxy_apis`) use the same reading with their own estimate, and may
  require capabilities of every routed model (embeddings: `embeddings`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from routeguard.service.errors import ApiError

__all__ = ["CONTEXT_FIELDS", "ProxyCall", "Received", "build_call", "read_headers", "user_text"]

# metadata key -> route request field
CONTEXT_FIELDS: Mapping[str, str] = {
    "tenant": "tenant",
    "task_type": "task_type",
    "data_class": "data_class",
    "region": "region",
    "language": "language",
    "tags": "tags",
    "modalities": "modalities",
    "capabilities": "capabilities",
    "sla_ms": "sla_ms",
    "budget_usd": "budget_usd",
    "estimated_tokens": "estimated_tokens",
    "trace_id": "trace_id",
    "policy": "policy",  # an override: metadata.policy of the route request
    "profile": "policy",  # CONTRACT §3: another name for metadata.policy
    "business_line": "business_line",  # match.business_lines and business-line rollouts
}
_LISTS = frozenset({"tags", "modalities", "capabilities"})
_NUMBERS = frozenset({"sla_ms", "budget_usd"})
_PREFIX = b"x-routeguard-"
_NOT_CONTEXT = frozenset({"principal"})
_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4


@dataclass(slots=True)
class Received:
    """What the proxy reads from the request headers."""

    authorization: str | None = None
    principal: str | None = None
    context: dict[str, str] | None = None  # x-routeguard-<field> values, by field name


@dataclass(frozen=True, slots=True)
class ProxyCall:
    agent: str | None
    stream: bool
    context: dict[str, Any]  # a route request (CONTRACT §3)
    request: dict[str, Any]  # what goes upstream (the provider sets `model`)


def read_headers(headers: Iterable[tuple[bytes, bytes]]) -> Received:
    out = Received()
    for key, value in headers:
        if key == b"authorization":
            out.authorization = value.decode("latin-1")
        elif key.startswith(_PREFIX):
            name = key[len(_PREFIX) :].decode("latin-1").replace("-", "_")
            if name == "principal":
                out.principal = value.decode("latin-1")
            elif name in CONTEXT_FIELDS and name not in _NOT_CONTEXT:
                if out.context is None:
                    out.context = {}
                out.context[name] = value.decode("utf-8", "replace").strip()
    return out


def _field(name: str, value: Any, where: str) -> Any:
    if name in _LISTS and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if name in _NUMBERS and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ApiError(422, "invalid_request", f"{where}{name}: expected a number, got {value!r}") from None
    return value


def _estimate(body: Mapping[str, Any]) -> dict[str, int]:
    chars = 0
    messages = body.get("messages")
    count = 0
    if isinstance(messages, list):
        count = len(messages)
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(content, list):
                for part in content:
                    text = part.get("text") if isinstance(part, dict) else None
                    if isinstance(text, str):
                        chars += len(text)
    out_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    if isinstance(out_tokens, bool) or not isinstance(out_tokens, int) or out_tokens < 0:
        out_tokens = 0
    return {"input": chars // _CHARS_PER_TOKEN + count * _TOKENS_PER_MESSAGE, "output": out_tokens}


def user_text(body: Mapping[str, Any]) -> str:
    """The text of the request's user messages (what a learned primary scores), joined by blank lines."""
    parts: list[str] = []
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n\n".join(parts)


def text_chars(value: Any) -> int:
    """Characters of text in a string, or in a list of strings / parts with `text`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(v) if isinstance(v, str) else text_chars(v.get("text") or v.get("content"))
                   if isinstance(v, dict) else 0 for v in value)
    return 0


def build_call(
    body: Any, received: Received, *, estimate: Callable[[Mapping[str, Any]], dict[str, int]] = _estimate,
    requires: tuple[str, ...] = (), what: str = "a chat completion request",
) -> ProxyCall:
    """Raises ApiError (400/422) for a body that is not a request object. `requires`: capabilities every
    routed model must have (added to the context's own)."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", f"the request body must be a JSON object ({what})")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ApiError(400, "invalid_request", "model: expected the agent id as a non-empty string")
    fields: dict[str, Any] = {}
    for name, value in (received.context or {}).items():
        if value:
            fields[name] = _field(name, value, "x-routeguard-")
    request = body
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and any(key in CONTEXT_FIELDS for key in metadata):
        kept = {}
        for key, value in metadata.items():
            if key in CONTEXT_FIELDS:
                if value is not None and value != "":
                    fields[key] = _field(key, value, "metadata.")
            else:
                kept[key] = value
        request = {k: v for k, v in body.items() if k != "metadata"}
        if kept:
            request["metadata"] = kept
    stream = bool(body.get("stream"))
    context: dict[str, Any] = {"agent": model, "stream": stream}
    override, profile = fields.pop("policy", None), fields.pop("profile", None)
    if profile is not None and override is not None and profile != override:
        raise ApiError(422, "conflicting_fields", "metadata policy and profile disagree; give one of them")
    override = override if override is not None else profile
    if override is not None:
        context["metadata"] = {"policy": override}
    context.update(fields)
    if "estimated_tokens" not in context:
        context["estimated_tokens"] = estimate(body)
    given = context.get("capabilities")
    if requires and (given is None or isinstance(given, str | list)):
        listed = [given] if isinstance(given, str) else list(given or ())
        context["capabilities"] = listed + [c for c in requires if c not in listed]
    prompt = user_text(body)
    if prompt:
        context["prompt"] = prompt  # scored by the Router when the policy has a learned primary
    return ProxyCall(model, stream, context, request)
