"""GET /v1/queue: requests parked by a `human_queue` terminal action."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from routeguard.service.api.deps import ERRORS, OPERATOR, get_state
from routeguard.service.schemas import QueueOut

router = APIRouter(tags=["queue"])


@router.get(
    "/v1/queue", response_model=QueueOut, responses=ERRORS, summary="Human-queue entries, oldest first"
)
def queue(
    request: Request,
    queue: str | None = None,
    status: Literal["pending", "resolved", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    _p: Any = OPERATOR,
) -> dict[str, Any]:
    entries = get_state(request).store.queue.list(queue, status, limit)
    return {"entries": [e.to_dict() for e in entries]}
