"""External health signals and the health view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeguard.core.durations import parse_duration
from routeguard.service.api.deps import ERRORS, ROUTER, VIEWER, get_state
from routeguard.service.errors import ApiError
from routeguard.service.schemas import ErrorBody, HealthOut, HealthSignalIn, HealthSignalOut

router = APIRouter(tags=["health"])


@router.put(
    "/v1/models/{model}/health",
    response_model=HealthSignalOut,
    responses={404: {"model": ErrorBody, "description": "unknown_model"}, **ERRORS},
    summary="An external health signal for a model (alias of PUT /v1/health/{model})",
    operation_id="put_model_health",
)
@router.put(
    "/v1/health/{model}",
    response_model=HealthSignalOut,
    responses={404: {"model": ErrorBody, "description": "unknown_model"}, **ERRORS},
    summary="An external health signal for a model",
)
def put_health(model: str, body: HealthSignalIn, request: Request, _p: Any = ROUTER) -> dict[str, Any]:
    state = get_state(request)
    if model not in state.known_models():
        raise ApiError(404, "unknown_model", f"no model {model!r} in any published version")
    ttl_s: float | None = None
    if body.ttl is not None:
        try:
            ttl_s = parse_duration(body.ttl)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"ttl: {exc}") from exc
    router = state.router
    state.sink.episodes.signals.note(model, body.status, body.source, ttl_s, router.now())  # explains durations
    router.signal(model, body.status, ttl_s=ttl_s, source=body.source)
    return {
        "model": model,
        "status": body.status,
        "source": body.source,
        "ttl_s": ttl_s,
        "health": router.health().get(model, {}),
    }


@router.get("/v1/health", response_model=HealthOut, responses=ERRORS, summary="Every model, per policy")
def get_health(request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    return {"models": get_state(request).router.health()}
