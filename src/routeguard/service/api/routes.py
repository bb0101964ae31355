"""GET /v1/routes: per policy and published scope, the model serving now, since when, and why."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeguard.service.api.deps import ERRORS, VIEWER, get_state
from routeguard.service.schemas import RoutesOut

router = APIRouter(tags=["health"])


@router.get("/v1/routes", response_model=RoutesOut, responses=ERRORS, summary="The model serving each policy")
def routes(request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    state = get_state(request)
    live = state.live
    versions = {scope: table.version for scope, table in live.tables.items()}
    out = []
    for route in state.router.routes():
        route = dict(route)
        route.setdefault("policy_version", versions.get(str(route.get("scope"))))
        out.append(route)
    return {"routes": out, "safe_mode": state.router.safe_mode.global_on}
