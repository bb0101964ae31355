"""What the console pages show, read through the same service functions the JSON API uses.

- routes and health: `state.router.routes()` / `state.router.health()` (as `GET /v1/routes`, `/v1/health`);
- safe mode: `lifecycle.safe_mode_status` (as `GET /v1/safe-mode`); audit: the store's `audit.query/verify`;
- versions: the policy store, with diffs of their stored bundles (secrets redacted first);
- fleet: `fleet_view` — this replica only until the service has a cluster registry (rewire it there).
The chain verification reads the whole log, so its result is cached for a few seconds (and whenever the head
is unchanged).
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml

from routeguard.service import lifecycle
from routeguard.service.state import ServiceState
from routeguard.service.ui.history import HealthHistory, worst_state
from routeguard.service.ui.redact import redact
from routeguard.store.models import AuditRecord

__all__ = [
    "ChainStatus",
    "chain_status",
    "fleet_view",
    "health_rows",
    "overview",
    "policy_diff",
    "recent_audit",
    "routes_view",
    "timeline",
]

VERIFY_TTL_S = 5.0
_STARTED = datetime.now(UTC)


def routes_view(state: ServiceState) -> list[dict[str, Any]]:
    """`GET /v1/routes`' rows: per policy and scope, the serving model, since when, why, which version."""
    versions = {scope: table.version for scope, table in state.live.tables.items()}
    out = []
    for route in state.router.routes():
        row = dict(route)
        row.setdefault("policy_version", versions.get(str(row.get("scope"))))
        out.append(row)
    return sorted(out, key=lambda r: (str(r.get("policy")), str(r.get("scope"))))


def health_rows(health: dict[str, Any], history: HealthHistory) -> list[dict[str, Any]]:
    """One row per model: figures, signal, state per policy, worst state and sparkline."""
    rows = []
    for model, view in sorted(health.items()):
        policies = view.get("policies") or {}
        rows.append(
            {
                "model": model,
                "figures": view.get("figures") or {},
                "signal": view.get("signal"),
                "signals": view.get("signals"),
                "policies": dict(sorted(policies.items())),
                "worst": worst_state(policies),
                "spark": history.sparkline(model),
            }
        )
    return rows


class ChainStatus:
    """The audit chain's verification, cached per head for `VERIFY_TTL_S`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, int, dict[str, Any]] | None = None

    def get(self, state: ServiceState) -> dict[str, Any]:
        head_seq, _ = state.store.audit.head()
        now = time.monotonic()
        with self._lock:
            cached = self._cached
        if cached is not None and cached[1] == head_seq and now - cached[0] < VERIFY_TTL_S:
            return cached[2]
        result = state.store.audit.verify().to_dict()
        result["head"] = head_seq
        result["checked_at"] = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            self._cached = (now, head_seq, result)
        return result


def chain_status(state: ServiceState, holder: dict[str, Any]) -> dict[str, Any]:
    checker = holder.setdefault("chain", ChainStatus())
    assert isinstance(checker, ChainStatus)
    return checker.get(state)


def _this_replica(state: ServiceState) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": getattr(state.settings, "replica_id", None) or f"{socket.gethostname()}:{os.getpid()}",
        "address": f"{state.settings.host}:{state.settings.port}",
        "started": _STARTED.isoformat(timespec="seconds"),
        "last_seen": now.isoformat(timespec="seconds"),
        "age_s": 0.0,
        "status": "ok",
        "lag": [],
        "version": state.serving_version(),
        "self": True,
    }


def _cluster_function() -> Callable[[ServiceState], dict[str, Any]] | None:
    """`routeguard.service.cluster.cluster_view` (what `GET /v1/cluster` answers), when the service has it."""
    try:
        module = importlib.import_module("routeguard.service.cluster")
    except ImportError:
        return None
    view: Callable[[ServiceState], dict[str, Any]] | None = getattr(module, "cluster_view", None)
    return view


def fleet_view(state: ServiceState) -> dict[str, Any]:
    """Replicas (id, address, started, last seen, heartbeat age, status and why it lags, version), the Redis
    link, and whether the fleet agrees; this replica alone when the service has no fleet registry."""
    view = _cluster_function()
    if view is not None:
        try:
            data = dict(view(state))
        except Exception as exc:  # the page still renders; the card says why
            return {"replicas": [_this_replica(state)], "redis": None, "registry": False, "error": type(exc).__name__}
        data["registry"] = True
        return data
    return {"replicas": [_this_replica(state)], "redis": None, "registry": False, "agreed": True}


def overview(state: ServiceState, history: HealthHistory, holder: dict[str, Any]) -> dict[str, Any]:
    health = state.router.health()
    history.observe(time.time(), health)
    return {
        "routes": routes_view(state),
        "models": health_rows(health, history),
        "safe_mode": lifecycle.safe_mode_status(state),
        "chain": chain_status(state, holder),
        "fleet": fleet_view(state),
        "version": state.serving_version(),
        "now": datetime.now(UTC).strftime("%H:%M:%S UTC"),
    }


def recent_audit(state: ServiceState, kind: str | None, limit: int = 50, span: int = 5000) -> list[AuditRecord]:
    """The newest `limit` records of `kind` among the last `span` records, newest first."""
    head_seq, _ = state.store.audit.head()
    records, _ = state.store.audit.query(kind=kind, after=max(0, head_seq - span), limit=1000)
    return list(reversed(records[-limit:]))


def timeline(state: ServiceState, policy: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Routing changes, newest first, with reason and verification."""
    out = []
    for record in recent_audit(state, "route.changed", limit=limit * 4 if policy else limit):
        if policy and record.policy != policy:
            continue
        payload = redact(record.payload)
        out.append(
            {
                "seq": record.seq,
                "ts": record.ts.strftime("%Y-%m-%d %H:%M:%S"),
                "actor": record.actor,
                "policy": record.policy,
                "scope": record.scope or payload.get("scope"),
                "from_model": payload.get("from_model"),
                "to_model": payload.get("to_model"),
                "reason": payload.get("reason"),
                "detail": payload.get("detail"),
                "expected_duration": payload.get("expected_duration"),
                "verification": payload.get("verification") or {},
            }
        )
    return out[:limit]


def _yaml(config: dict[str, Any] | None) -> list[str]:
    text = yaml.safe_dump(redact(config or {}), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text.splitlines()


def policy_diff(old: dict[str, Any] | None, new: dict[str, Any] | None, old_name: str, new_name: str) -> list[str]:
    """A unified diff of two stored bundles, as YAML with secrets redacted."""
    return list(difflib.unified_diff(_yaml(old), _yaml(new), old_name, new_name, lineterm="", n=3))


def pretty(value: Any) -> str:
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str)
