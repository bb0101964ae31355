"""Structured JSON log lines (one object per line) for the `agent.routing.*` events, on stdlib logging.

    configure_json_logging("INFO")            # the service, at start: JSON lines on stderr
    router.subscribe(log_event)               # every routing event becomes one INFO line
    log_decision(decision, seconds)           # agent.routing.decision, at DEBUG only (one per request)
    log_policy("published", version=7, ...)   # agent.routing.policy

A line: `{"ts": "2026-03-01T12:00:00.000Z", "level": "INFO", "logger": "routeguard.events",
"event": "agent.routing.change", "at": <the event's own time>, ...the event's to_dict() fields}`. Any record
that reaches the JSON formatter gets `ts`, `level`, `logger`, `event` (its message) and the mapping passed as
`extra={"fields": {...}}` (a field named like one of the four is prefixed `field_`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routeguard.core.decision import Decision
    from routeguard.core.events import Event

__all__ = [
    "EVENT_LOGGER", "JsonFormatter", "configure_json_logging", "log_decision", "log_event", "log_policy",
]

EVENT_LOGGER = "routeguard.events"
_events = logging.getLogger(EVENT_LOGGER)
_RESERVED = ("ts", "level", "logger", "event")


def _ts(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; never raises on an odd field (it is rendered with `str`)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _ts(record.created),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                line[str(key) if str(key) not in _RESERVED else f"field_{key}"] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))


def configure_json_logging(
    level: int | str = "INFO", stream: IO[str] | None = None, logger: str = "routeguard"
) -> logging.Handler:
    """Send the `routeguard` loggers to `stream` (stderr) as JSON lines; idempotent (replaces its handler)."""
    target = logging.getLogger(logger)
    for existing in list(target.handlers):
        if getattr(existing, "_routeguard_json", False):
            target.removeHandler(existing)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._routeguard_json = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(level)
    target.propagate = False
    return handler


def log_event(event: Event) -> None:
    """A Router sink: one INFO line per event, its fields from `event.to_dict()`."""
    if _events.isEnabledFor(logging.INFO):
        fields = event.to_dict()
        name = str(fields.pop("event", event.event))
        fields["at"] = fields.pop("ts", None)
        _events.info(name, extra={"fields": fields})


def log_decision(decision: Decision, seconds: float | None = None) -> None:
    """`agent.routing.decision`, at DEBUG (skipped, with no formatting cost, unless DEBUG is on)."""
    if _events.isEnabledFor(logging.DEBUG):
        fields = decision.to_dict()
        if seconds is not None:
            fields["latency_us"] = round(seconds * 1e6, 1)
        _events.debug("agent.routing.decision", extra={"fields": fields})


def log_policy(action: str, **fields: Any) -> None:
    """`agent.routing.policy`: uploaded, approved, published, rolled back (`action`), with its details."""
    _events.info("agent.routing.policy", extra={"fields": {"action": action, **fields}})
