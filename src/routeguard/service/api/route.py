"""POST /v1/route (and /internal/model-routing/route): one decision, no database work on the way."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from routeguard.service.api.deps import ERRORS, ROUTER, get_state, json_body, json_response
from routeguard.service.errors import ApiError
from routeguard.service.schemas import DecisionOut, ErrorBody, RouteRequest
from routeguard.telemetry.tracing import span_decision

router = APIRouter(tags=["routing"])

TRACE_HEADER = "x-routeguard-trace-id"
_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RouteRequest.model_json_schema()}},
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": DecisionOut, "description": "the decision (CONTRACT §3)"},
    404: {"model": ErrorBody, "description": "unknown_agent / no_matching_policy"},
    **ERRORS,
}


async def route(request: Request, _principal: Any = ROUTER) -> Response:
    """A routing decision for one task context."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the route request must be a JSON object")
    trace = request.headers.get(TRACE_HEADER)
    if trace and "trace_id" not in body:
        body["trace_id"] = trace
    state = get_state(request)
    with span_decision(body.get("agent") if isinstance(body.get("agent"), str) else None) as span:
        began = time.perf_counter()
        decision = state.router.decide(body)
        state.observe_decision(decision, time.perf_counter() - began)
        state.router.note_decision(decision)  # the caller calls the model: feeds auto safe mode
        span.record_decision(decision)
    out = decision.to_dict()
    sources = getattr(request.app.state, "sources", None)
    if sources is not None:
        sources.annotate(out, body)  # a cost source's cached quote (CONTRACT §1 `sources`)
    return json_response(out, headers={TRACE_HEADER: decision.trace_id})


for _path, _hidden in (("/v1/route", False), ("/internal/model-routing/route", True)):
    router.add_api_route(
        _path,
        route,
        methods=["POST"],
        openapi_extra=_DOC,
        responses=_RESPONSES,
        summary="Route a task context" + (" (internal API twin)" if _hidden else ""),
        response_model=None,
        operation_id="route" if not _hidden else "route_internal",
    )
