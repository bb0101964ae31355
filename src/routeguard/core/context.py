"""The typed route request (CONTRACT §3 "Route request") and the errors a request can cause."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from routeguard.core.aliases import AliasError, normalize_request

__all__ = ["RouteContext", "RoutingError", "SafeMode"]

# input bounds (CONTRACT §3: malformed input is a 4xx naming the field): names fit the store's columns,
# counts stay integers every JSON reader keeps exactly; NaN and infinities fail these range tests too
MAX_NAME = 200
MAX_TRACE_ID = 100
MAX_COUNT = 2**53 - 1

_EMPTY: Mapping[str, str] = MappingProxyType({})
_CONTEXT_KEYS = frozenset(
    {
        "trace_id",
        "agent",
        "tenant",
        "task_type",
        "data_class",
        "region",
        "language",
        "modalities",
        "capabilities",
        "tags",
        "estimated_tokens",
        "sla_ms",
        "budget_usd",
        "metadata",
        "stream",
        "business_line",
        "prompt",
    }
)


class RoutingError(ValueError):
    """A request the engine refuses, with an error code and the HTTP status that fits it."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class SafeMode:
    """Safe mode as the engine sees it: global, or for some tenants."""

    global_on: bool = False
    tenants: frozenset[str] = frozenset()

    def active_for(self, tenant: str | None) -> bool:
        return self.global_on or (tenant is not None and tenant in self.tenants)


@dataclass(frozen=True, slots=True)
class RouteContext:
    trace_id: str = ""
    agent: str | None = None
    tenant: str | None = None
    task_type: str | None = None
    data_class: str | None = None
    region: str | None = None
    language: str | None = None
    modalities: frozenset[str] | None = None
    capabilities: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    input_tokens: int = 0
    output_tokens: int = 0
    sla_ms: float | None = None
    budget_usd: float | None = None
    policy_override: str | None = None
    stream: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    business_line: str | None = None
    # model -> error class of a failed attempt in this request (set by the executor between attempts)
    failures: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    prompt: str | None = None  # the task text, scored at the edge for a learned primary (CONTRACT §7)
    score: float | None = None  # that score, set by the edge (never read from the request)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, trace_id: str | None = None) -> RouteContext:
        """Validate a JSON route request; raises RoutingError naming the field and the problem."""
        if not isinstance(data, Mapping):
            raise RoutingError("invalid_context", "the route request must be a JSON object")
        unknown = sorted(set(data) - _CONTEXT_KEYS)
        metadata = data.get("metadata") or {}
        if unknown or (isinstance(metadata, Mapping) and "profile" in metadata):
            data = _canonical(data)
            unknown = sorted(set(data) - _CONTEXT_KEYS)
            metadata = data.get("metadata") or {}
        if unknown:
            raise RoutingError("invalid_context", f"unknown field(s) in route request: {', '.join(unknown)}")
        if not isinstance(metadata, Mapping):
            raise RoutingError("invalid_context", "metadata: expected an object")
        tokens = data.get("estimated_tokens") or {}
        if not isinstance(tokens, Mapping):
            raise RoutingError("invalid_context", "estimated_tokens: expected {input, output}")
        override = metadata.get("policy")
        if override is not None and not isinstance(override, str):
            raise RoutingError("invalid_context", "metadata.policy: expected a policy name")
        modalities = _strings(data, "modalities")
        return cls(
            trace_id=trace_id or _str(data, "trace_id") or "",
            agent=_str(data, "agent"),
            tenant=_str(data, "tenant"),
            task_type=_str(data, "task_type"),
            data_class=_str(data, "data_class"),
            region=_str(data, "region"),
            language=_str(data, "language"),
            modalities=frozenset(modalities) if modalities is not None else None,
            capabilities=frozenset(_strings(data, "capabilities") or ()),
            tags=frozenset(_strings(data, "tags") or ()),
            input_tokens=_count(tokens, "estimated_tokens.input", "input"),
            output_tokens=_count(tokens, "estimated_tokens.output", "output"),
            sla_ms=_positive(data, "sla_ms"),
            budget_usd=_positive(data, "budget_usd"),
            policy_override=override,
            stream=bool(data.get("stream", False)),
            metadata=dict(metadata),
            business_line=_str(data, "business_line"),
            prompt=_prompt(data),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("trace_id", "agent", "tenant", "task_type", "data_class", "region", "language", "business_line")
            if getattr(self, k)
        }
        if self.modalities is not None:
            out["modalities"] = sorted(self.modalities)
        if self.capabilities:
            out["capabilities"] = sorted(self.capabilities)
        if self.tags:
            out["tags"] = sorted(self.tags)
        if self.input_tokens or self.output_tokens:
            out["estimated_tokens"] = {"input": self.input_tokens, "output": self.output_tokens}
        if self.sla_ms is not None:
            out["sla_ms"] = self.sla_ms
        if self.budget_usd is not None:
            out["budget_usd"] = self.budget_usd
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out  # the prompt stays out: this form is logged and traced


def _prompt(data: Mapping[str, Any]) -> str | None:
    value = data.get("prompt")
    if value is None:
        return None
    if not isinstance(value, str):
        raise RoutingError("invalid_context", f"prompt: expected a string, got {type(value).__name__}")
    return value


def _canonical(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """PowerX and camelCase spellings → canonical names (CONTRACT §3); 422 when two spellings disagree."""
    try:
        return normalize_request(data)
    except AliasError as exc:
        raise RoutingError("conflicting_fields", str(exc)) from None


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RoutingError("invalid_context", f"{key}: expected a non-empty string, got {value!r}")
    limit = MAX_TRACE_ID if key == "trace_id" else MAX_NAME
    if len(value) > limit:
        raise RoutingError("invalid_context", f"{key}: at most {limit} characters")
    return value


def _strings(data: Mapping[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RoutingError("invalid_context", f"{key}: expected a list of strings, got {value!r}")
    return value


def _count(tokens: Mapping[str, Any], path: str, key: str) -> int:
    value = tokens.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_COUNT:
        raise RoutingError("invalid_context", f"{path}: expected a non-negative number, got {value!r}")
    return int(value)


def _positive(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_COUNT:
        raise RoutingError("invalid_context", f"{key}: expected a positive number, got {value!r}")
    return float(value)
