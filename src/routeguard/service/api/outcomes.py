"""POST /v1/outcomes: one outcome or a list, validated as a whole before any is applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from routeguard.core.context import RoutingError
from routeguard.core.outcome import Outcome
from routeguard.service.api.deps import ERRORS, get_state, json_body, json_response
from routeguard.service.auth import Principal, require
from routeguard.service.errors import ApiError
from routeguard.service.schemas import ErrorBody, OutcomeIn, OutcomesAccepted

router = APIRouter(tags=["routing"])
ROUTER_OR_SIGNALER = Depends(require("router", "signaler"))

_MAX_BATCH = 10_000
_ONE = OutcomeIn.model_json_schema()
_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"anyOf": [_ONE, {"type": "array", "items": _ONE}]}}},
    }
}


def _parse(body: Any, known: set[str], deployments: Mapping[str, tuple[str, ...]]) -> list[Outcome]:
    items = body if isinstance(body, list) else [body]
    if len(items) > _MAX_BATCH:
        raise ApiError(413, "payload_too_large", f"at most {_MAX_BATCH} outcomes per request")
    out: list[Outcome] = []
    for i, item in enumerate(items):
        where = f"[{i}]" if isinstance(body, list) else ""
        try:
            outcome = Outcome.from_dict(item)
        except RoutingError as exc:
            raise ApiError(422, "invalid_request", f"outcome{where}: {exc.message}") from exc
        if outcome.model not in known:
            raise ApiError(404, "unknown_model", f"outcome{where}: unknown model {outcome.model!r}")
        if outcome.deployment is not None and outcome.deployment not in deployments.get(outcome.model, ()):
            raise ApiError(422, "invalid_request", f"outcome{where}: deployment: {outcome.deployment!r} "
                                                   f"is not a deployment of {outcome.model!r}")
        out.append(outcome)
    return out


@router.post(
    "/v1/outcomes",
    status_code=202,
    openapi_extra=_DOC,
    response_model=OutcomesAccepted,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "unknown_model"},
               413: {"model": ErrorBody, "description": "payload_too_large"}},
    summary="Report call outcomes (one or a list) to feed health",
)
async def outcomes(request: Request, principal: Principal = ROUTER_OR_SIGNALER) -> Response:
    body = await json_body(request)
    state = get_state(request)
    parsed = _parse(body, state.known_models(), state.router.deployments_of())
    state.traces.admit(parsed, principal.has("signaler"), isinstance(body, list))
    await _report(state.router, parsed)
    if state.pump.pending:  # acknowledged once a routing change these outcomes caused is in the audit log
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(state.settle)
    return json_response({"accepted": len(parsed), "count": len(parsed)}, 202)


async def _report(router: Any, parsed: list[Outcome]) -> None:
    """Outside the event loop: a report can change a route, which writes the audit log."""
    from starlette.concurrency import run_in_threadpool

    def apply() -> None:
        for outcome in parsed:
            router.report(outcome)

    await run_in_threadpool(apply)
