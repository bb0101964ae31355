"""The human queue (CONTRACT §3): list entries parked by a `human_queue` terminal action, claim one, resolve it.

Each claim and resolution is an audit record naming the principal. Claiming is first-come: a second principal gets
409; only the claimant (or anyone, while the entry is unclaimed) may resolve it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from routeguard.service.api.deps import ERRORS, OPERATOR, get_state
from routeguard.service.auth import Principal
from routeguard.service.schemas import ErrorBody, QueueEntryOut, QueueOut, QueueResolveIn

router = APIRouter(tags=["queue"])
EntryId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="the entry id (named in the 503 of the call)")]

_ENTRY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "unknown_entry"},
    409: {"model": ErrorBody, "description": "state_conflict: claimed by someone else, or already closed"},
}


@router.get(
    "/v1/queue", response_model=QueueOut, responses=ERRORS, summary="Human-queue entries, oldest first"
)
def queue(
    request: Request,
    queue: str | None = None,
    policy: str | None = None,
    status: Literal["pending", "claimed", "resolved", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    _p: Any = OPERATOR,
) -> dict[str, Any]:
    entries = get_state(request).store.queue.list(queue, status, limit, policy=policy)
    return {"entries": [e.to_dict() for e in entries]}


@router.post(
    "/v1/queue/{entry_id}/claim",
    response_model=QueueEntryOut,
    responses=_ENTRY_ERRORS,
    summary="Claim a pending human-queue entry",
)
def claim(entry_id: EntryId, request: Request, principal: Principal = OPERATOR) -> dict[str, Any]:
    return get_state(request).store.queue.claim(entry_id, principal.name).to_dict()


@router.post(
    "/v1/queue/{entry_id}/resolve",
    response_model=QueueEntryOut,
    responses=_ENTRY_ERRORS,
    summary="Resolve a human-queue entry {resolution, note}",
)
def resolve(
    entry_id: EntryId,
    body: QueueResolveIn,
    request: Request,
    principal: Principal = OPERATOR,
) -> dict[str, Any]:
    resolution = {"resolution": body.resolution, "note": body.note}
    return get_state(request).store.queue.resolve(entry_id, principal.name, resolution).to_dict()
