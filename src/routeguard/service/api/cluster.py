"""`GET /v1/cluster` (viewer): the fleet of replicas on this store, and which of them lag."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from routeguard.service.api.deps import ERRORS, VIEWER, get_state
from routeguard.service.cluster import cluster_view

router = APIRouter(tags=["cluster"])


class ReplicaOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    host: str
    pid: int
    address: str | None
    routeguard_version: str
    started: str
    last_seen: str
    generation: int = Field(description="the governance generation whose state it serves")
    version: int | None = Field(description="the policy version it serves to everyone (scope `all`)")
    serving: dict[str, int | None] = Field(description="the policy version it serves, per scope key")
    redis: str | None
    age_s: float = Field(description="seconds since its last heartbeat")
    status: Literal["ok", "lagging", "gone"]
    lag: list[str] = Field(description="why it lags: an old heartbeat, or a scope served at another version")
    is_self: bool = Field(alias="self", description="the replica that answered")


class RedisLinkOut(BaseModel):
    url: str
    status: str = Field(description="`up` or `down` (with `--redis`: this replica's link, as of now)")
    error: str | None = Field(None, description="while down: the last error's class")
    down_since: float | None = Field(None, description="while down: since when (epoch seconds)")
    backlog: int | None = Field(None, description="health items waiting to be pushed (kept while Redis is down)")
    pushed: int | None = Field(None, description="health items this replica pushed since it started")
    applied: int | None = Field(None, description="other replicas' health items applied here")
    leases: list[str] | None = Field(None, description="probe leases held: `policy/model`")


class ClusterOut(BaseModel):
    replica: str
    generation: int
    policy_versions: dict[str, int | None] = Field(description="what the store publishes, per scope key")
    redis: RedisLinkOut | None
    listen: str
    replicas: list[ReplicaOut]
    lagging: list[str]
    gone: list[str]
    agreed: bool


@router.get(
    "/v1/cluster",
    response_model=ClusterOut,
    responses=ERRORS,
    summary="Replicas on this store, the Redis link and the fleet's policy version per scope",
)
def cluster(request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    state = get_state(request)
    return state.fleet.consistent(lambda: cluster_view(state))
