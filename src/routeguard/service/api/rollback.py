"""POST /v1/rollback: `{version: N}` or `{tenant: T}` (and its internal twin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeguard.service import lifecycle
from routeguard.service.api.deps import ERRORS, OPERATOR, get_state
from routeguard.service.auth import Principal
from routeguard.service.errors import ApiError
from routeguard.service.schemas import ErrorBody, RollbackIn, RollbackOut

router = APIRouter(tags=["policies"])


def rollback(body: RollbackIn, request: Request, principal: Principal = OPERATOR) -> dict[str, Any]:
    """`{version}`: publish it again to the scope a later version serves; `{tenant}`: back to stable."""
    version = body.version
    if body.policy_version is not None:
        if version is not None and version != body.policy_version:
            raise ApiError(422, "conflicting_fields", "version and policy_version disagree; give one of them")
        version = body.policy_version
    return lifecycle.rollback(get_state(request), version, body.tenant, principal.name)


for _path, _internal in (("/v1/rollback", False), ("/internal/model-routing/rollback", True)):
    router.add_api_route(
        _path,
        rollback,
        methods=["POST"],
        response_model=RollbackOut,
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "unknown_version"},
            409: {"model": ErrorBody, "description": "state_conflict"},
        },
        summary="Roll back" + (" (internal API twin)" if _internal else ""),
        operation_id="rollback" + ("_internal" if _internal else ""),
    )
