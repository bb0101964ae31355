"""Routing events: past-tense frozen dataclasses that audit, metrics, logs and notifiers consume (CONTRACT §5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CanaryStepped",
    "Event",
    "EventSink",
    "FallbackUsed",
    "HealthChanged",
    "RouteChanged",
    "SafeModeChanged",
    "TerminalEngaged",
    "rfc3339",
]


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RouteChanged:
    """The model serving a policy (in one published scope) changed. ``to_model`` None: the terminal action."""

    policy: str
    scope: str
    from_model: str | None
    to_model: str | None
    reason: str
    verification: dict[str, Any]
    expected_duration_s: float | None
    at: float
    policy_version: int | None = None
    terminal_action: str | None = None
    canary_percent: float | None = None
    notify: tuple[str, ...] = ()

    event = "agent.routing.change"
    audit_kind = "route.changed"

    def to_dict(self) -> dict[str, Any]:
        out = _base(self)
        out["expected_duration"] = _duration(self.expected_duration_s)
        return out


@dataclass(frozen=True, slots=True)
class TerminalEngaged:
    """One request got the policy's terminal action."""

    policy: str
    action: str
    reason: str
    at: float
    trace_id: str = ""
    queue: str | None = None
    queue_entry: str | None = None
    tenant: str | None = None
    notify: tuple[str, ...] = ()

    event = "agent.routing.terminal"
    audit_kind = "terminal"

    def to_dict(self) -> dict[str, Any]:
        return _base(self)


@dataclass(frozen=True, slots=True)
class FallbackUsed:
    """One request moved past a model that failed it (counted, not notified one by one)."""

    policy: str
    from_model: str
    to_model: str | None
    error_class: str
    at: float
    trace_id: str = ""
    from_deployment: str | None = None  # the last deployment of ``from_model`` that failed (models with deployments)

    event = "agent.routing.fallback"
    audit_kind = "fallback"

    def to_dict(self) -> dict[str, Any]:
        out = _base(self)
        if self.from_deployment is None:
            del out["from_deployment"]
        return out


@dataclass(frozen=True, slots=True)
class HealthChanged:
    policy: str
    model: str
    from_state: str
    to_state: str
    detail: str
    at: float
    deployment: str | None = None  # set: the breaker of this deployment of ``model`` moved, not the model's

    event = "agent.routing.health"
    audit_kind = "health.changed"

    def to_dict(self) -> dict[str, Any]:
        out = _base(self)
        if self.deployment is None:
            del out["deployment"]
        return out


@dataclass(frozen=True, slots=True)
class CanaryStepped:
    policy: str
    scope: str
    to_model: str
    percent: float
    at: float

    event = "agent.routing.canary"
    audit_kind = "canary.step"

    def to_dict(self) -> dict[str, Any]:
        return _base(self)


@dataclass(frozen=True, slots=True)
class SafeModeChanged:
    enabled: bool
    reason: str
    at: float
    tenant: str | None = None
    by: str = "system"
    automatic: bool = False
    figures: dict[str, Any] = field(default_factory=dict)

    event = "agent.routing.safe_mode"
    audit_kind = "safe_mode"

    def to_dict(self) -> dict[str, Any]:
        return _base(self)


Event = RouteChanged | TerminalEngaged | FallbackUsed | HealthChanged | CanaryStepped | SafeModeChanged
EventSink = Callable[[Event], None]


def _base(event: Event) -> dict[str, Any]:
    out = asdict(event)
    out["event"] = event.event
    out["kind"] = event.audit_kind
    out["ts"] = rfc3339(event.at)
    out.pop("at", None)
    out.pop("notify", None)
    return out


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"
