"""Liveness and readiness (no auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from routeguard.service.api.deps import get_state

router = APIRouter(tags=["meta"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the store answers and a policy version serves")
def readyz(request: Request) -> JSONResponse:
    state = get_state(request)
    checks: dict[str, Any] = {}
    try:
        with state.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"error: {type(exc).__name__}"
    router = state.router
    serving = bool(router.table.policies)
    checks["policies"] = "ok" if serving else "no published policy version"
    ready = checks["store"] == "ok" and serving
    if state.fleet_health is not None:  # informational: losing Redis degrades health to per-replica, not readiness
        checks["redis"] = "up" if state.fleet_health.up else "down"
    body = {
        "status": "ready" if ready else "not_ready",
        "version": state.serving_version(),
        "legacy": router.legacy,
        "checks": checks,
    }
    body["fleet"] = state.fleet.readiness()  # informational: which replica, what it applied, LISTEN or poll
    return JSONResponse(body, 200 if ready else 503)
