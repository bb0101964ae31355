"""Strict JSON for request bodies: UTF-8, no NaN/Infinity, finite numbers, bounded nesting, valid text.

Python's `json` accepts `NaN`, `Infinity` and `1e400` (as inf), recurses until a RecursionError on deep
nesting, and decodes `"\\ud800"` to a lone surrogate that breaks the store later; orjson refuses some of
these but not nesting past 64. This module is hand-written so that every such body is refused up front with a
400/422 that names the field (CONTRACT §3): the decoder turns a non-finite number into a marker, and one
iterative walk finds the first marker, over-deep container or lone surrogate with its path. Integer ranges
are checked per field (the schemas, the core's parsers, and the store for ids), where the bound is known.
"""

from __future__ import annotations

import json
import math
from typing import Any

from routeguard.service.errors import ApiError

__all__ = ["MAX_DEPTH", "check_value", "loads_strict"]

MAX_DEPTH = 64


class _NonFinite:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


_DECODER = json.JSONDecoder(parse_constant=_NonFinite, parse_float=_float)


def loads_strict(data: bytes) -> Any:
    """The JSON value of ``data``; ApiError 400 `invalid_json` or 422 `invalid_request` naming the field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        value = _DECODER.decode(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", f"the request body nests deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {str(exc)[:200]}") from exc
    check_value(value)
    return value


def _refuse(path: str, message: str) -> ApiError:
    field = path or "body"
    return ApiError(422, "invalid_request", f"{field}: {message}", fields=[{"field": field, "message": message}])


def check_value(value: Any) -> None:
    """Walk ``value`` (without recursion) and refuse the first field JSON or the store cannot hold."""
    todo: list[tuple[Any, int, str]] = [(value, 1, "")]
    while todo:
        item, depth, path = todo.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise ApiError(400, "invalid_json", f"{path or 'the body'} nests deeper than {MAX_DEPTH} levels")
            for key, child in item.items():
                if not key.isascii():
                    _text(key, path)
                todo.append((child, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise ApiError(400, "invalid_json", f"{path or 'the body'} nests deeper than {MAX_DEPTH} levels")
            todo.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, str):
            if not item.isascii():
                _text(item, path)
        elif isinstance(item, _NonFinite):
            raise _refuse(path, f"{item.text} is not a number JSON allows")


def _text(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(path, "text is not valid UTF-8 (a lone surrogate)") from exc
