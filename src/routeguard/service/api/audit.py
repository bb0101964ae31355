"""The audit log: records oldest first with a cursor, and a verification of the hash chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from routeguard.service.api.deps import ERRORS, VIEWER, get_state
from routeguard.service.errors import ApiError
from routeguard.service.schemas import AuditPage, VerifyOut
from routeguard.store.checkpoint import CheckpointError
from routeguard.store.models import AuditRecord

router = APIRouter(tags=["audit"])

_FIXED = frozenset({"seq", "ts", "kind", "actor", "policy", "scope", "payload", "prev_hash", "hash"})


def record_view(record: AuditRecord) -> dict[str, Any]:
    """The stored record, with the payload's fields also at the top level (`from_model`, `reason`, …)."""
    out = record.to_dict()
    for key, value in record.payload.items():
        if key not in _FIXED:
            out.setdefault(key, value)
    return out


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"since: expected an RFC 3339 time, got {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@router.get("/v1/audit", response_model=AuditPage, responses=ERRORS, summary="Audit records, oldest first")
def audit(
    request: Request,
    kind: str | None = None,
    policy: str | None = None,
    since: Annotated[
        str | None,
        Query(description="RFC 3339; records at or after", json_schema_extra={"format": "date-time"}),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(ge=0, description="the `next` cursor of the previous page")] = None,
    _p: Any = VIEWER,
) -> dict[str, Any]:
    state = get_state(request)
    state.settle()  # what routing events queued before this request is in the log
    records, nxt = state.store.audit.query(kind, policy, _since(since), after, limit)
    return {"records": [record_view(r) for r in records], "next": nxt}


@router.get("/v1/audit/verify", response_model=VerifyOut, responses=ERRORS, summary="Verify the hash chain")
def verify(request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    """The chain, and (when the service writes checkpoints) the chain against its latest checkpoint."""
    state = get_state(request)
    state.settle()  # what routing events queued before this request is in the log
    try:
        anchor = state.checkpoints.latest()
    except CheckpointError as exc:
        return {"ok": False, "records": 0, "first_broken": None, "reason": str(exc)}
    return state.store.audit.verify(anchor).to_dict()
