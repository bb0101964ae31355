"""A small reader that walks plain data, converts fields and collects schema findings by key path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from routeguard.core.durations import parse_duration
from routeguard.core.findings import Finding

__all__ = ["FieldReader"]

T = TypeVar("T")
_MISSING: Any = object()


class FieldReader:
    """Collects ``schema`` findings instead of stopping at the first one."""

    def __init__(self, line_of: Callable[[str], int | None] | None = None, source: str | None = None) -> None:
        self.findings: list[Finding] = []
        self._line_of = line_of
        self._source = source

    def error(self, path: str, message: str, code: str = "schema") -> None:
        line = self._line_of(path) if self._line_of else None
        self.findings.append(Finding(code, path, message, line=line, source=self._source))

    def mapping(self, path: str, value: object, allowed: frozenset[str] | None) -> Mapping[str, Any]:
        """``value`` as a mapping with string keys; unknown keys are findings."""
        if not isinstance(value, Mapping):
            self.error(path, f"expected a mapping, got {_kind(value)}")
            return {}
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.error(path, f"keys must be strings, got {key!r}")
                continue
            if allowed is not None and key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.error(_join(path, key), f"unknown key {key!r} (allowed: {hint})")
                continue
            out[key] = item
        return out

    def required(self, data: Mapping[str, Any], path: str, key: str) -> Any:
        if key not in data or data[key] is None:
            self.error(_join(path, key), f"{key!r} is required")
            return _MISSING
        return data[key]

    def string(self, data: Mapping[str, Any], path: str, key: str, default: T, required: bool = False) -> str | T:
        value = self.required(data, path, key) if required else data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if not isinstance(value, str) or not value:
            self.error(_join(path, key), f"expected a non-empty string, got {_kind(value)}")
            return default
        return value

    def strings(self, data: Mapping[str, Any], path: str, key: str) -> frozenset[str] | None:
        """A list of strings as a set; None when absent."""
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return None
        items = self.string_list(_join(path, key), value)
        return frozenset(items) if items is not None else None

    def string_list(self, path: str, value: object) -> list[str] | None:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.error(path, f"expected a list of strings, got {_kind(value)}")
            return None
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.error(f"{path}[{i}]", f"expected a non-empty string, got {_kind(item)}")
            else:
                out.append(item)
        return out

    def number(
        self,
        data: Mapping[str, Any],
        path: str,
        key: str,
        default: T,
        *,
        minimum: float | None = 0.0,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float | T:
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        where = _join(path, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(where, f"expected a number, got {_kind(value)}")
            return default
        if integer and not float(value).is_integer():
            self.error(where, f"expected a whole number, got {value}")
            return default
        if minimum is not None and value < minimum:
            self.error(where, f"must be >= {minimum:g}, got {value}")
            return default
        if maximum is not None and value > maximum:
            self.error(where, f"must be <= {maximum:g}, got {value}")
            return default
        return float(value)

    def integer(self, data: Mapping[str, Any], path: str, key: str, default: int, minimum: int = 0) -> int:
        return int(self.number(data, path, key, default, minimum=minimum, integer=True))

    def duration(self, data: Mapping[str, Any], path: str, key: str, default: T) -> float | T:
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.error(_join(path, key), str(exc))
            return default

    def boolean(self, data: Mapping[str, Any], path: str, key: str, default: bool) -> bool:
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if not isinstance(value, bool):
            self.error(_join(path, key), f"expected true or false, got {_kind(value)}")
            return default
        return value

    def choice(self, data: Mapping[str, Any], path: str, key: str, options: frozenset[str], default: str) -> str:
        value = self.string(data, path, key, default)
        if value not in options:
            self.error(_join(path, key), f"must be one of {', '.join(sorted(options))}, got {value!r}")
            return default
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__
