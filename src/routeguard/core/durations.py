"""Durations as CONTRACT writes them: ``250ms``, ``30s``, ``5m``, ``2h``; a bare number means seconds."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds for a duration string or number; raises ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '250ms', '30s', '5m', got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '250ms', '30s', '5m', got {type(value).__name__}")
    match = _PATTERN.match(value)
    if match is None:
        raise ValueError(f"invalid duration {value!r}: use a number with ms, s, m or h (e.g. '30s')")
    number, unit = match.groups()
    return float(number) * _UNITS[unit or "s"]


def format_duration(seconds: float) -> str:
    """A short human form: ``250ms``, ``30s``, ``5m``, ``1h30m``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"
