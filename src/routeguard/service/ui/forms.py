"""The console's forms (POST): login, logout and every action.

Each action needs a live session (else 403: a forged post has none), the session's CSRF token in the form
(else 403), and the role the API needs for the same action (else 403); four-eyes and every other rule are
the service's own (`actions.py` calls the API's functions). The action runs outside the event loop; the page
then redirects back (post/redirect/get) with a one-time message.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from routeguard.service.api.deps import get_state
from routeguard.service.state import ServiceState
from routeguard.service.ui import actions
from routeguard.service.ui.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    Session,
    check_csrf,
    current,
    login,
    new_login_csrf,
    sessions_of,
    set_cookie,
    tokens_match,
)
from routeguard.service.ui.web import PageError, UiRoute, page, read_form, redirect, safe_next

__all__ = ["router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)

Action = Callable[[ServiceState, str, dict[str, str]], str]


async def _guard(request: Request, role: str) -> tuple[Session, dict[str, str]]:
    session = current(request)
    if session is None:
        raise PageError("no session: log in first")
    form = await read_form(request)
    if not check_csrf(session, form.get("csrf") or request.headers.get("x-csrf-token")):
        raise PageError("the form's CSRF token is missing or wrong; reload the page and try again")
    if not session.can(role):
        raise PageError(f"{session.principal.name!r} lacks the {role!r} role")
    return session, form


async def _act(request: Request, role: str, action: Action, back: str) -> Response:
    session, form = await _guard(request, role)
    state = get_state(request)
    try:
        message = await run_in_threadpool(action, state, session.principal.name, form)
    except actions.ActionError as exc:
        raise PageError(exc.message, exc.status, exc.findings) from exc
    session.flash.append(("ok", message))
    return redirect(back)


# ------------------------------------------------------------------ login / logout
def _login_refused(request: Request, state: ServiceState, target: str, error: str, status: int) -> Response:
    token = new_login_csrf()
    response = page(
        request, "login.html", None, status, dev=state.auth.open, login_csrf=token, next=target, error=error
    )
    set_cookie(response, request, LOGIN_COOKIE, token, 600)
    return response


@router.post("/ui/login")
async def do_login(request: Request) -> Response:
    form = await read_form(request)
    state = get_state(request)
    target = safe_next(form.get("next"))
    if not tokens_match(request.cookies.get(LOGIN_COOKIE, ""), form.get("login_csrf")):
        return _login_refused(request, state, target, "the login form expired; try again", 403)
    found = login(state.auth, form.get("token", ""), form.get("name", ""))
    if isinstance(found, str):
        return _login_refused(request, state, target, found, 401 if found == "unknown token" else 403)
    sessions = sessions_of(request)
    sessions.end(request.cookies.get(COOKIE))  # a new id at every login (no session fixation)
    session_id, _session = sessions.create(found)
    response = redirect(target)
    set_cookie(response, request, COOKIE, session_id, None)
    response.delete_cookie(LOGIN_COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


@router.post("/ui/logout")
async def do_logout(request: Request) -> Response:
    await _guard(request, "viewer")
    sessions_of(request).end(request.cookies.get(COOKIE))
    response = redirect("/ui/login")
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


# ------------------------------------------------------------------ actions
@router.post("/ui/safe-mode")
async def safe_mode(request: Request) -> Response:
    return await _act(request, "operator", actions.safe_mode, "/ui")


@router.post("/ui/policies")
async def upload(request: Request) -> Response:
    return await _act(request, "author", actions.upload, "/ui/policies")


@router.post("/ui/policies/{version}/approve")
async def approve(request: Request, version: int) -> Response:
    def run(state: ServiceState, by: str, form: dict[str, str]) -> str:
        return actions.approve(state, by, version, form)

    return await _act(request, "approver", run, f"/ui/policies/{version}")


@router.post("/ui/policies/{version}/publish")
async def publish(request: Request, version: int) -> Response:
    def run(state: ServiceState, by: str, form: dict[str, str]) -> str:
        return actions.publish(state, by, version, form)

    return await _act(request, "approver", run, f"/ui/policies/{version}")


@router.post("/ui/rollback")
async def rollback(request: Request) -> Response:
    return await _act(request, "operator", actions.rollback, "/ui/policies")


@router.post("/ui/queue/{entry_id}/claim")
async def claim(request: Request, entry_id: int) -> Response:
    def run(state: ServiceState, by: str, _form: dict[str, str]) -> str:
        return actions.claim_entry(state, by, entry_id)

    return await _act(request, "operator", run, f"/ui/queue/{entry_id}")


@router.post("/ui/queue/{entry_id}/resolve")
async def resolve(request: Request, entry_id: int) -> Response:
    def run(state: ServiceState, by: str, form: dict[str, str]) -> str:
        return actions.resolve_entry(state, by, entry_id, form)

    return await _act(request, "operator", run, "/ui/queue")
