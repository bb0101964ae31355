"""`GET /v1/cluster`: the replicas serving this store, the Redis link and the fleet's policy version per scope.

A replica is `ok` while its heartbeat is fresh and it serves the store's version in every scope; `lagging`
when its heartbeat is older than `stale_s` (3 heartbeats) or it serves another version somewhere (for at most
a second after a change, unless it is stuck); `gone` when not seen for `gone_s` (10 s: killed, or cut off from
the store). The answering replica's own row is described from what it serves now, not from its last beat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url

from routeguard.service.tables import scope_versions
from routeguard.store.fleet import ReplicaBeat

if TYPE_CHECKING:
    from routeguard.service.state import ServiceState

__all__ = ["GONE_S", "cluster_view", "replica_status"]

GONE_S = 10.0


def replica_status(
    beat: ReplicaBeat, age_s: float, fleet: Mapping[str, int | None], stale_s: float, gone_s: float = GONE_S
) -> tuple[str, list[str]]:
    """(`ok` | `lagging` | `gone`, the reasons)."""
    if age_s > gone_s:
        return "gone", [f"not seen for {age_s:.1f}s"]
    reasons = [f"last heartbeat {age_s:.1f}s ago"] if age_s > stale_s else []
    for scope in sorted(set(fleet) | set(beat.serving)):
        want, has = fleet.get(scope), beat.serving.get(scope)
        if want != has:
            reasons.append(f"scope {scope}: serves {has}, the store publishes {want}")
    return ("lagging" if reasons else "ok"), reasons


def _redis(state: ServiceState) -> dict[str, Any] | None:
    url = state.settings.redis_url
    if not url:
        return None
    shown = make_url(url).render_as_string(hide_password=True) if "://" in url else "redis"
    link = state.fleet_health
    if link is None:
        return {"url": shown, "status": state.fleet.redis_status or "unknown"}
    return {"url": shown, **link.describe()}


def cluster_view(state: ServiceState) -> dict[str, Any]:
    fleet = state.fleet
    store = state.store
    generation = store.fleet.generation()
    versions = scope_versions(store.policies.rollout())
    now = store.db.now()
    stale_s = max(3.0, 3 * fleet.heartbeat_s)
    mine = fleet.snapshot()
    beats = [b for b in store.fleet.replicas() if b.id != mine.id] + [mine]
    replicas: list[dict[str, Any]] = []
    for beat in sorted(beats, key=lambda b: (b.started_at, b.id)):
        age_s = max(0.0, (now - beat.last_seen).total_seconds())
        status, reasons = replica_status(beat, age_s, versions, stale_s)
        replicas.append(
            {**beat.to_dict(), "age_s": round(age_s, 3), "status": status, "lag": reasons, "self": beat.id == mine.id}
        )
    lagging = [r["id"] for r in replicas if r["status"] == "lagging"]
    return {
        "replica": mine.id,
        "generation": generation,
        "policy_versions": versions,
        "redis": _redis(state),
        "listen": "listening" if fleet.listening else ("polling" if store.db.dialect == "postgresql" else "n/a"),
        "replicas": replicas,
        "lagging": lagging,
        "gone": [r["id"] for r in replicas if r["status"] == "gone"],
        "agreed": not lagging,
    }
