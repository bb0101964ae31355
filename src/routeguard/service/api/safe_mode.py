"""Safe mode: only `trusted: true` models are selected, globally or for one tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeguard.service import lifecycle
from routeguard.service.api.deps import ERRORS, OPERATOR, get_state
from routeguard.service.auth import Principal
from routeguard.service.schemas import SafeModeIn, SafeModeOut

router = APIRouter(tags=["safe mode"])


def set_safe_mode(body: SafeModeIn, request: Request, principal: Principal = OPERATOR) -> dict[str, Any]:
    """Switch safe mode; in effect before the answer, and the routing changes it caused logged."""
    state = get_state(request)
    out = lifecycle.set_safe_mode(state, body.enabled, body.tenant, body.reason, principal.name, body.expected_duration)
    state.settle()
    return out


def get_safe_mode(request: Request, _p: Any = OPERATOR) -> dict[str, Any]:
    state = get_state(request)
    state.settle()  # an automatic change queued before this request is in the store
    return state.fleet.consistent(lambda: lifecycle.safe_mode_status(state))


for _path, _internal in (("/v1/safe-mode", False), ("/internal/model-routing/safe-mode", True)):
    _suffix = " (internal API twin)" if _internal else ""
    _op = "_internal" if _internal else ""
    router.add_api_route(
        _path,
        set_safe_mode,
        methods=["POST"],
        responses=ERRORS,
        summary="Switch safe mode" + _suffix,
        operation_id="set_safe_mode" + _op,
    )
    router.add_api_route(
        _path,
        get_safe_mode,
        methods=["GET"],
        response_model=SafeModeOut,
        responses=ERRORS,
        summary="Safe mode now" + _suffix,
        operation_id="get_safe_mode" + _op,
    )
