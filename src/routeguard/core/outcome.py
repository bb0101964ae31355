"""A call outcome as reported to feed health (CONTRACT §3 "Outcome")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routeguard.core.context import MAX_NAME, RoutingError
from routeguard.core.defaults import ERROR_CLASSES

__all__ = ["Outcome"]

_KEYS = frozenset(
    {"trace_id", "model", "ok", "error", "latency_ms", "partial_output", "tokens", "quality", "policy", "task_type",
     "deployment"}
)


_MAX_FIGURE = 1e15  # NaN and Infinity fail `0 <= x < _MAX_FIGURE`


@dataclass(frozen=True, slots=True)
class Outcome:
    model: str
    ok: bool
    trace_id: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    partial_output: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    quality: float | None = None
    policy: str | None = None
    task_type: str | None = None
    deployment: str | None = None  # which of the model's deployments the call went to (CONTRACT §1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """Validate one outcome object; raises RoutingError naming the field."""
        if not isinstance(data, Mapping):
            raise RoutingError("invalid_outcome", "an outcome must be a JSON object")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise RoutingError("invalid_outcome", f"unknown field(s) in outcome: {', '.join(unknown)}")
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise RoutingError("invalid_outcome", "model: required, a model name")
        ok = data.get("ok")
        if not isinstance(ok, bool):
            raise RoutingError("invalid_outcome", "ok: required, true or false")
        error = data.get("error")
        if error is not None and error not in ERROR_CLASSES:
            raise RoutingError(
                "invalid_outcome", f"error: unknown error class {error!r} (one of {', '.join(ERROR_CLASSES)})"
            )
        if not ok and error is None:
            error = "server_error"
        if len(model) > MAX_NAME:
            raise RoutingError("invalid_outcome", f"model: at most {MAX_NAME} characters")
        latency = data.get("latency_ms")
        if latency is not None and (
            isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency < _MAX_FIGURE
        ):
            raise RoutingError("invalid_outcome", "latency_ms: expected a finite non-negative number")
        tokens = data.get("tokens") or {}
        if not isinstance(tokens, Mapping):
            raise RoutingError("invalid_outcome", "tokens: expected {input, output}")
        counts = []
        for key in ("input", "output"):
            value = tokens.get(key, 0) or 0
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < _MAX_FIGURE:
                raise RoutingError("invalid_outcome", f"tokens.{key}: expected a finite non-negative number")
            counts.append(int(value))
        quality = data.get("quality")
        if quality is not None and (
            isinstance(quality, bool) or not isinstance(quality, int | float) or not 0.0 <= quality <= 1.0
        ):
            raise RoutingError("invalid_outcome", "quality: expected a number between 0 and 1, or null")
        trace = data.get("trace_id")
        if trace is not None and len(str(trace)) > MAX_NAME:
            raise RoutingError("invalid_outcome", f"trace_id: at most {MAX_NAME} characters")
        deployment = data.get("deployment")
        if deployment is not None and (not isinstance(deployment, str) or not 0 < len(deployment) <= MAX_NAME):
            raise RoutingError("invalid_outcome", f"deployment: expected a deployment name (1-{MAX_NAME} characters)")
        return cls(
            deployment=deployment,
            model=model,
            ok=ok,
            trace_id=str(trace) if trace is not None else None,
            error=None if ok else error,
            latency_ms=float(latency) if latency is not None else None,
            partial_output=bool(data.get("partial_output", False)),
            input_tokens=counts[0],
            output_tokens=counts[1],
            quality=float(quality) if quality is not None else None,
            policy=data.get("policy") if isinstance(data.get("policy"), str) else None,
            task_type=data.get("task_type") if isinstance(data.get("task_type"), str) else None,
        )
