"""GET /metrics: Prometheus text format (no auth; labels never carry a tenant or a trace id)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from routeguard.service.api.deps import get_state

router = APIRouter(tags=["meta"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (CONTRACT §5)")
def metrics(request: Request) -> Response:
    state = get_state(request)
    state.settle(0.5)  # counters of events queued before this scrape
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
