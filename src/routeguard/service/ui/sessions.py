"""Console sessions and CSRF tokens (CONTRACT §9, §3 "Auth").

A login exchanges a bearer token (or, in development with no tokens on loopback, a name) for an opaque
random session id in an HttpOnly, SameSite=Strict cookie. The server keeps the session (principal, roles,
CSRF token, expiry) in memory, keyed by the SHA-256 of the id, so the cookie alone reveals nothing and a
logout ends the session at once. The token itself is never stored. Every form carries the session's CSRF
token (checked in constant time); the login form, which has no session yet, uses a double-submit cookie.

Hand-written because it is small and sits on the service's own auth (`service.auth`), not on a web
framework's session middleware: the roles a page checks are exactly the API's. Sessions are per process:
behind a load balancer, keep a user on one replica (sticky sessions) or they log in again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request, Response

from routeguard.service.auth import ANONYMOUS, ROLES, AuthConfig, Principal

__all__ = [
    "COOKIE",
    "LOGIN_COOKIE",
    "Session",
    "SessionStore",
    "check_csrf",
    "login",
    "sessions_of",
    "tokens_match",
]

COOKIE = "rg_session"
LOGIN_COOKIE = "rg_login_csrf"
COOKIE_PATH = "/ui"
TTL_S = 8 * 3600.0  # idle lifetime
MAX_SESSIONS = 10_000
MAX_NAME = 64


@dataclass(slots=True)
class Session:
    principal: Principal
    csrf: str
    expires: float
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) shown once

    def can(self, role: str) -> bool:
        return self.principal.has(role)


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class SessionStore:
    """Live sessions of one process (thread-safe)."""

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, principal: Principal) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(principal, secrets.token_urlsafe(32), time.monotonic() + self.ttl_s)
        with self._lock:
            self._prune()
            self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(_key(session_id))
            if session is None:
                return None
            if session.expires <= now:
                del self._sessions[_key(session_id)]
                return None
            session.expires = now + self.ttl_s
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_key(session_id), None)

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:  # the oldest first (dicts keep insertion order)
            del self._sessions[next(iter(self._sessions))]


def sessions_of(request: Request) -> SessionStore:
    """The app's session store (created on first use)."""
    store: SessionStore | None = getattr(request.app.state, "ui_sessions", None)
    if store is None:
        store = SessionStore()
        request.app.state.ui_sessions = store
    return store


def current(request: Request) -> Session | None:
    return sessions_of(request).get(request.cookies.get(COOKIE))


def tokens_match(expected: str, presented: str | None) -> bool:
    return bool(expected) and bool(presented) and hmac.compare_digest(expected.encode(), str(presented).encode())


def check_csrf(session: Session, presented: str | None) -> bool:
    return tokens_match(session.csrf, presented)


def login(auth: AuthConfig, token: str, name: str) -> Principal | str:
    """The principal for a login form, or the reason it is refused. With tokens configured the token decides;
    without (development on loopback) the name is the principal and every role is open, as in the API."""
    if auth.open:
        name = name.strip() or ANONYMOUS
        if len(name) > MAX_NAME or not name.isprintable():
            return f"name: at most {MAX_NAME} printable characters"
        return Principal(name, frozenset(ROLES))
    found = auth.authenticate(f"Bearer {token.strip()}") if token.strip() else None
    if found is None:
        return "unknown token"
    if not found.has("viewer"):
        return f"{found.name!r} lacks the 'viewer' role the console needs"
    return found


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
