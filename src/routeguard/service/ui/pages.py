"""The console's pages (GET): each a full page, and its live part as a fragment htmx polls every second.

Every page needs a session with the `viewer` role (checked at login); what a page offers to do depends on
the session's roles, and the same roles are checked again when a form is posted (`forms.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from routeguard.config.load import load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.findings import BundleError
from routeguard.service.api.deps import get_state
from routeguard.service.state import ServiceState
from routeguard.service.ui import data
from routeguard.service.ui.actions import BUSINESS_LINES, claimants
from routeguard.service.ui.redact import redact, redact_url
from routeguard.service.ui.sessions import LOGIN_COOKIE, new_login_csrf, set_cookie
from routeguard.service.ui.web import (
    PageError,
    UiRoute,
    history_of,
    holder_of,
    page,
    safe_next,
    session_or_login,
    static_file,
)
from routeguard.store.errors import UnknownEntry, UnknownVersion
from routeguard.store.models import QueueStatus

__all__ = ["router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    return static_file(name)


@router.get("/ui/login")
def login_form(request: Request, next: str | None = None) -> Response:
    state = get_state(request)
    token = new_login_csrf()
    response = page(
        request,
        "login.html",
        None,
        dev=state.auth.open,
        login_csrf=token,
        next=safe_next(next),
        error=None,
    )
    set_cookie(response, request, LOGIN_COOKIE, token, 600)
    return response


# ------------------------------------------------------------------ overview
@router.get("/ui")
def overview(request: Request) -> Response:
    session = session_or_login(request)
    state = get_state(request)
    view = data.overview(state, history_of(request), holder_of(request))
    return page(request, "overview.html", session, nav="overview", **view)


@router.get("/ui/live/overview")
def overview_live(request: Request) -> Response:
    session = session_or_login(request)
    state = get_state(request)
    view = data.overview(state, history_of(request), holder_of(request))
    return page(request, "_overview.html", session, **view)


# ------------------------------------------------------------------ timeline
@router.get("/ui/timeline")
def timeline(request: Request, policy: str | None = None) -> Response:
    session = session_or_login(request)
    state = get_state(request)
    policies = sorted({name for t in state.live.tables.values() for name in t.policies})
    changes = data.timeline(state, policy or None)
    return page(
        request, "timeline.html", session, nav="timeline", changes=changes, policies=policies, policy=policy
    )


@router.get("/ui/live/timeline")
def timeline_live(request: Request, policy: str | None = None) -> Response:
    session = session_or_login(request)
    return page(request, "_timeline.html", session, changes=data.timeline(get_state(request), policy or None))


# ------------------------------------------------------------------ policies
@router.get("/ui/policies")
def policies(request: Request) -> Response:
    session = session_or_login(request)
    state = get_state(request)
    rollout = state.store.policies.rollout()
    versions = list(reversed(state.store.policies.list_versions()))
    return page(
        request,
        "policies.html",
        session,
        nav="policies",
        versions=versions,
        stable=rollout.stable_version(),
        publications=[p.to_dict() for p in rollout.publications],
    )


def _findings(state: ServiceState, content: dict[str, Any]) -> list[dict[str, Any]]:
    """The version's findings checked now (an approval may have expired since it was stored)."""
    try:
        loaded = load_bundle(dict(content))
        found = loaded.locate(check_bundle(loaded.bundle, state.settings.clock()))
    except BundleError as exc:
        found = exc.findings
    return [f.to_dict() for f in found]


@router.get("/ui/policies/{version}")
def policy_version(request: Request, version: int, compare: int | None = None) -> Response:
    session = session_or_login(request)
    state = get_state(request)
    store = state.store.policies
    try:
        pv = store.get_version(version)
    except UnknownVersion as exc:
        raise PageError(str(exc), 404) from exc
    listed = store.list_versions()
    numbers = [v.version for v in listed]
    later_live = any(v.version > version and v.live for v in listed)
    older = [n for n in numbers if n < version]
    base = compare if compare in numbers else (older[-1] if older else None)
    other = store.get_version(base).content if base is not None else None
    diff = data.policy_diff(other, pv.content, f"version {base}" if base else "(nothing)", f"version {version}")
    approved_by = {a.approver for a in pv.approvals}
    me = session.principal.name
    return page(
        request,
        "version.html",
        session,
        nav="policies",
        pv=pv,
        numbers=numbers,
        base=base,
        diff=diff,
        findings=_findings(state, pv.content or {}),
        stable=store.rollout().stable_version(),
        may_approve=session.can("approver") and me != pv.author and me not in approved_by,
        own=me == pv.author,
        may_roll_back=session.can("operator") and pv.status.value != "draft" and later_live,
        content=data.pretty(pv.content),
        business_lines=BUSINESS_LINES,
    )


# ------------------------------------------------------------------ the human queue
def _queue_view(state: ServiceState) -> dict[str, Any]:
    pending = state.store.queue.list(status=QueueStatus.PENDING, limit=200)
    pending += state.store.queue.list(status=QueueStatus.CLAIMED, limit=200)  # open: pending or claimed
    pending.sort(key=lambda e: e.id)
    return {
        "pending": pending,
        "closed": list(reversed(state.store.queue.list(status=QueueStatus.RESOLVED, limit=1000)))[:20],
        "claimed": claimants(state, pending),
    }


@router.get("/ui/queue")
def queue(request: Request) -> Response:
    session = session_or_login(request)
    if not session.can("operator"):
        raise PageError("the human queue needs the 'operator' role (as GET /v1/queue)")
    return page(request, "queue.html", session, nav="queue", **_queue_view(get_state(request)))


@router.get("/ui/live/queue")
def queue_live(request: Request) -> Response:
    session = session_or_login(request)
    if not session.can("operator"):
        raise PageError("the human queue needs the 'operator' role (as GET /v1/queue)")
    return page(request, "_queue.html", session, **_queue_view(get_state(request)))


@router.get("/ui/queue/{entry_id}")
def queue_entry(request: Request, entry_id: int) -> Response:
    session = session_or_login(request)
    if not session.can("operator"):
        raise PageError("the human queue needs the 'operator' role (as GET /v1/queue)")
    state = get_state(request)
    try:
        entry = state.store.queue.get(entry_id)
    except UnknownEntry as exc:
        raise PageError(str(exc), 404) from exc
    summary = {k: entry.request.get(k) for k in ("agent", "tenant", "task_type", "data_class", "region")}
    return page(
        request,
        "entry.html",
        session,
        nav="queue",
        entry=entry,
        summary={k: v for k, v in summary.items() if v is not None},
        claimed_by=claimants(state, [entry]).get(entry_id),
    )


# ------------------------------------------------------------------ reviews
def _review_notes(content: dict[str, Any] | None) -> list[str]:
    """What a review changed, as its proposal describes it (each changed policy's `description`)."""
    notes = []
    for name, policy in sorted(((content or {}).get("policies") or {}).items()):
        text = policy.get("description") if isinstance(policy, dict) else None
        if isinstance(text, str) and text.startswith("review"):
            notes.append(f"{name}: {text}")
    return notes


@router.get("/ui/reviews")
def reviews(request: Request) -> Response:
    session = session_or_login(request)
    state = get_state(request)
    store = state.store.policies
    drafts = [v for v in reversed(store.list_versions()) if (v.label or "").startswith("review")][:20]
    proposals = [{"pv": v, "notes": _review_notes(store.get_version(v.version).content)} for v in drafts]
    stable = store.rollout().stable_version()
    return page(request, "reviews.html", session, nav="reviews", proposals=proposals, stable=stable)


# ------------------------------------------------------------------ one model
def _model_config(state: ServiceState, model: str) -> dict[str, Any] | None:
    version = state.serving_version()
    if version is None:
        return None
    content = state.store.policies.get_version(version).content or {}
    config = (content.get("models") or {}).get(model)
    if not isinstance(config, dict):
        return None
    config = dict(redact(config))
    for holder in [config.get("endpoint"), *[d.get("endpoint") for d in config.get("deployments") or []]]:
        if isinstance(holder, dict) and isinstance(holder.get("base_url"), str):
            holder["base_url"] = redact_url(holder["base_url"]) if "@" in holder["base_url"] else holder["base_url"]
    return config


def _model_view(request: Request, model: str) -> dict[str, Any]:
    state = get_state(request)
    view = data.overview(state, history_of(request), holder_of(request))
    rows = [m for m in view["models"] if m["model"] == model]
    if not rows:
        raise PageError(f"no model {model!r} in any published version", 404)
    events = [r for r in data.recent_audit(state, "health.changed", limit=200) if r.payload.get("model") == model]
    return {
        "m": rows[0],
        "routes": [r for r in view["routes"] if r.get("model") == model],
        "config": _model_config(state, model),
        "events": events[:20],
        "samples": history_of(request).samples(model)[-10:],
    }


@router.get("/ui/models/{model}")
def model_detail(request: Request, model: str) -> Response:
    session = session_or_login(request)
    return page(request, "model.html", session, nav="overview", model=model, **_model_view(request, model))


@router.get("/ui/live/models/{model}")
def model_live(request: Request, model: str) -> Response:
    session = session_or_login(request)
    return page(request, "_model.html", session, model=model, **_model_view(request, model))

