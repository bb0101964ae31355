"""External health signals and the health view (CONTRACT §1 "Who may move health", §3).

A signal needs the ``signaler`` (or ``operator``) role; ``override: true`` (end a cooldown now) needs
``operator``. Each source's signal is kept apart (the worst unexpired one wins), its ttl is at most 24 h,
and every signal, override and withdrawal is audited with the principal beside the source it claims.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from routeguard.core import defaults as D
from routeguard.core.durations import parse_duration
from routeguard.service.api.deps import ERRORS, VIEWER, get_state
from routeguard.service.auth import Principal, require
from routeguard.service.errors import ApiError
from routeguard.service.schemas import ErrorBody, HealthOut, HealthSignalIn, HealthSignalOut, SignalWithdrawnOut

router = APIRouter(tags=["health"])
SIGNALER = Depends(require("signaler", "operator"))
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "unknown_model"}}


def _ttl(body: HealthSignalIn) -> float | None:
    if body.ttl is None:
        return None
    try:
        ttl_s = parse_duration(body.ttl)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"ttl: {exc}") from exc
    if not 0 <= ttl_s <= D.HEALTH_SIGNAL_MAX_TTL_S:
        raise ApiError(422, "invalid_request", "ttl: at most 24h")
    return ttl_s


@router.put(
    "/v1/models/{model}/health",
    response_model=HealthSignalOut,
    responses={**_NOT_FOUND, **ERRORS},
    summary="An external health signal for a model (alias of PUT /v1/health/{model})",
    operation_id="put_model_health",
)
@router.put(
    "/v1/health/{model}",
    response_model=HealthSignalOut,
    responses={**_NOT_FOUND, **ERRORS},
    summary="An external health signal for a model (signaler; override: operator)",
)
def put_health(model: str, body: HealthSignalIn, request: Request, principal: Principal = SIGNALER) -> dict[str, Any]:
    state = get_state(request)
    if model not in state.known_models():
        raise ApiError(404, "unknown_model", f"no model {model!r} in any published version")
    ttl_s = _ttl(body)
    if body.override and not principal.has("operator"):
        raise ApiError(403, "forbidden", f"{principal.name!r} lacks the 'operator' role needed for override")
    if body.override and body.status != "up":
        raise ApiError(422, "invalid_request", "override: only an `up` signal can end a cooldown")
    router = state.router
    state.sink.episodes.signals.note(model, body.status, body.source, ttl_s, router.now())  # explains durations
    router.signal(model, body.status, ttl_s=ttl_s, source=body.source, override=body.override)
    payload = {"model": model, "status": body.status, "source": body.source, "ttl_s": ttl_s,
               "override": body.override, "principal": principal.name}
    state.store.events.record_event("health.signal", payload, actor=principal.name)
    state.settle()  # acknowledged only once the routing change it caused is in the audit log
    state.health_keeper.save()
    return {
        "model": model,
        "status": body.status,
        "source": body.source,
        "ttl_s": ttl_s,
        "override": body.override,
        "health": router.health().get(model, {}),
    }


@router.delete(
    "/v1/health/{model}/signals/{source}",
    response_model=SignalWithdrawnOut,
    responses={404: {"model": ErrorBody, "description": "unknown_model / unknown_signal"}, **ERRORS},
    summary="Withdraw one source's health signal",
)
def delete_signal(model: str, source: str, request: Request, principal: Principal = SIGNALER) -> dict[str, Any]:
    state = get_state(request)
    if model not in state.known_models():
        raise ApiError(404, "unknown_model", f"no model {model!r} in any published version")
    if not state.router.withdraw_signal(model, source):
        raise ApiError(404, "unknown_signal", f"no signal from {source!r} for {model!r}")
    payload = {"model": model, "source": source, "principal": principal.name}
    state.store.events.record_event("health.signal_withdrawn", payload, actor=principal.name)
    state.settle()  # acknowledged only once the routing change it caused is in the audit log
    state.health_keeper.save()
    return {"model": model, "source": source, "withdrawn": True, "health": state.router.health().get(model, {})}


@router.get("/v1/health", response_model=HealthOut, responses=ERRORS, summary="Every model, per policy")
def get_health(request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    return {"models": get_state(request).router.health()}
