"""Shared pieces of the API routers: the service state, fast JSON in and out, role dependencies."""

from __future__ import annotations

import importlib
import json
from typing import Any, cast

from fastapi import Depends, Request
from fastapi.responses import Response

from routeguard.service.auth import Principal, require
from routeguard.service.errors import ApiError
from routeguard.service.schemas import ErrorBody
from routeguard.service.state import ServiceState
from routeguard.service.strict_json import loads_strict

try:  # orjson when installed: faster in both directions
    _orjson: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def dumps(value: Any) -> bytes:
    if _orjson is not None:
        return cast(bytes, _orjson.dumps(value))
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


__all__ = [
    "APPROVER",
    "AUTHOR",
    "ERRORS",
    "OPERATOR",
    "ROUTER",
    "VIEWER",
    "dumps",
    "get_state",
    "json_body",
    "json_response",
    "parse_json",
]

VIEWER = Depends(require("viewer"))
ROUTER = Depends(require("router"))
AUTHOR = Depends(require("author"))
APPROVER = Depends(require("approver"))
OPERATOR = Depends(require("operator"))

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "malformed JSON"),
        (401, "no or unknown token"),
        (403, "the role is missing"),
        (422, "invalid request"),
    )
}


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def json_body(request: Request) -> Any:
    """The request body as JSON (400 `invalid_json` when it is not)."""
    return parse_json(await request.body())


def parse_json(data: bytes) -> Any:
    if not data.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON document")
    return loads_strict(data)  # UTF-8, finite numbers, nesting and integer range checked, fields named


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status, headers=headers, media_type="application/json")


def principal_name(principal: Principal) -> str:
    return principal.name
