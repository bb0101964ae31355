"""What the console's buttons do: the same service functions (and so the same checks and audit records) as
the JSON API, with the session's principal as the actor. Each returns a short message for the page, or
raises `ActionError` (status + message) that the page shows in place.

The human queue's claim has no store support yet: it is audited (`queue.claimed`) and read back from the
audit log; a store `queue.claim(entry_id, by)` and an entry's `claimed_by` are used instead once they exist.
`claim_entry` / `resolve_entry` / `claimants` are the seam to rewire onto the queue service behind
`POST /v1/queue/{id}/claim|resolve`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from routeguard.service import lifecycle
from routeguard.service.errors import ApiError
from routeguard.service.state import ServiceState
from routeguard.store.errors import (
    FourEyesViolation,
    InvalidScope,
    NotApproved,
    StateConflict,
    StoreError,
    UnknownEntry,
    UnknownVersion,
)
from routeguard.store.models import QueueEntry, QueueStatus, ScopeKind

__all__ = [
    "BUSINESS_LINES",
    "ActionError",
    "approve",
    "claim_entry",
    "claimants",
    "publish",
    "resolve_entry",
    "rollback",
    "safe_mode",
    "scope_from_form",
    "upload",
]

MAX_TEXT = 500
BUSINESS_LINES = hasattr(ScopeKind, "BUSINESS_LINES")  # staged rollout by business line, where the store has it


class ActionError(Exception):
    def __init__(self, status: int, message: str, findings: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.findings = findings or []


def _from_store(exc: StoreError) -> ActionError:
    status = 409
    if isinstance(exc, UnknownVersion | UnknownEntry):
        status = 404
    elif isinstance(exc, FourEyesViolation):
        status = 403
    elif isinstance(exc, InvalidScope):
        status = 422
    elif isinstance(exc, NotApproved | StateConflict):
        status = 409
    return ActionError(status, str(exc))


def _run(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ApiError as exc:
        raise ActionError(exc.status, exc.message, list(exc.extra.get("findings") or [])) from exc
    except StoreError as exc:
        raise _from_store(exc) from exc


def _text(form: Mapping[str, str], name: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    value = form.get(name, "").strip()
    if required and not value:
        raise ActionError(422, f"{name}: required")
    if len(value) > limit:
        raise ActionError(422, f"{name}: at most {limit} characters")
    return value


def _int(form: Mapping[str, str], name: str) -> int:
    raw = form.get(name, "").strip()
    if not raw.isdigit() or len(raw) > 9:
        raise ActionError(422, f"{name}: expected a positive whole number, got {raw!r}")
    return int(raw)


def safe_mode(state: ServiceState, by: str, form: Mapping[str, str]) -> str:
    enabled = form.get("enabled") == "true"
    tenant = _text(form, "tenant", limit=200) or None
    reason = _text(form, "reason") or ("engaged from the console" if enabled else "released from the console")
    _run(lifecycle.set_safe_mode, state, enabled, tenant, reason, by)
    where = f"for tenant {tenant}" if tenant else "globally"
    return f"Safe mode {'engaged' if enabled else 'released'} {where}."


def upload(state: ServiceState, by: str, form: Mapping[str, str]) -> str:
    config = form.get("config", "")
    if not config.strip():
        raise ActionError(422, "config: paste a bundle (YAML or JSON)")
    label = _text(form, "label", limit=200) or None
    dry_run = form.get("dry_run") == "true"
    _status, out = _run(lifecycle.upload, state, config, label, dry_run, by)
    if dry_run:
        return "The bundle passes every check (dry run: nothing stored)."
    return f"Stored as version {out['version']} (draft); another principal must approve it."


def approve(state: ServiceState, by: str, version: int, form: Mapping[str, str]) -> str:
    comment = _text(form, "comment") or None
    _run(lifecycle.approve, state, version, by, comment)
    return f"Version {version} approved by {by}."


def scope_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    kind = form.get("scope", "all")
    if kind == "all":
        return {"all": True}
    if kind == "tenants":
        tenants = [t.strip() for t in _text(form, "tenants", required=True).replace("\n", ",").split(",")]
        tenants = [t for t in tenants if t]
        if not tenants:
            raise ActionError(422, "tenants: name at least one tenant")
        return {"tenants": tenants}
    if kind == "business_lines" and BUSINESS_LINES:
        lines = [t.strip() for t in _text(form, "business_lines", required=True).split(",") if t.strip()]
        if not lines:
            raise ActionError(422, "business_lines: name at least one business line")
        return {"business_lines": lines}
    if kind == "percent":
        percent = _int(form, "percent")
        if not 1 <= percent <= 100:
            raise ActionError(422, "percent: between 1 and 100")
        return {"percent": percent}
    kinds = "all, tenants, business_lines, percent" if BUSINESS_LINES else "all, tenants, percent"
    raise ActionError(422, f"scope: one of {kinds} (got {kind!r})")


def publish(state: ServiceState, by: str, version: int, form: Mapping[str, str]) -> str:
    scope = scope_from_form(form)
    out = _run(lifecycle.publish, state, version, scope, by)
    return f"Version {version} published to {out['publication']['scope_key']}."


def rollback(state: ServiceState, by: str, form: Mapping[str, str]) -> str:
    tenant = _text(form, "tenant", limit=200) or None
    version = _int(form, "version") if form.get("version", "").strip() else None
    if (version is None) == (tenant is None):
        raise ActionError(422, "give exactly one of a version and a tenant")
    out = _run(lifecycle.rollback, state, version, tenant, by)
    if version is not None:
        return f"Rolled back to version {version}; stable version now {out['stable_version']}."
    return f"Tenant {tenant} returned to version {out['now_serving']}."


# ------------------------------------------------------------------ the human queue (the seam)
def claimants(state: ServiceState, entries: Iterable[QueueEntry] = ()) -> dict[int, str]:
    """Entry id -> who claimed it (the store keeps it on the entry)."""
    del state
    return {e.id: e.claimed_by for e in entries if e.claimed_by}


def claim_entry(state: ServiceState, by: str, entry_id: int) -> str:
    """The same store call as `POST /v1/queue/{id}/claim` (audited as `queue.claimed`; 409 if someone else holds
    it or it is closed)."""
    _run(state.store.queue.claim, entry_id, by)
    return f"Entry {entry_id} claimed by {by}."


def resolve_entry(state: ServiceState, by: str, entry_id: int, form: Mapping[str, str]) -> str:
    """The same store call as `POST /v1/queue/{id}/resolve` (only the claimant may resolve a claimed entry)."""
    resolution = _text(form, "resolution", required=True, limit=200)
    note = _text(form, "note", limit=2000) or None
    status = QueueStatus.CANCELLED if form.get("cancel") == "true" else QueueStatus.RESOLVED
    _run(state.store.queue.resolve, entry_id, by, {"resolution": resolution, "note": note}, status)
    return f"Entry {entry_id} {status.value} by {by}."
