"""`GET /v1/cluster` (viewer): the fleet of replicas on this store, and which of them lag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeguard.service.api.deps import ERRORS, VIEWER, get_state
from routeguard.service.cluster import cluster_view

router = APIRouter(tags=["cluster"])


@router.get("/v1/cluster", responses=ERRORS, summary="Replicas on this store, the Redis link, versions per scope")
def cluster(request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    state = get_state(request)
    return state.fleet.consistent(lambda: cluster_view(state))
