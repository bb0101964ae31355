"""The console's web plumbing: templates, static files, security headers, sessions on requests, forms.

Templates are Jinja2 with autoescaping on; static files (htmx, the stylesheet) ship inside the package and
are served from it, so nothing is built at install and nothing is fetched from a CDN. Forms are parsed here
(urlencoded only: the console uploads bundles as pasted text), so no multipart library is needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from routeguard.service.ui.history import HealthHistory
from routeguard.service.ui.sampler import history_for
from routeguard.service.ui.sessions import Session, current

__all__ = [
    "MAX_FORM",
    "LoginRequired",
    "PageError",
    "UiRoute",
    "history_of",
    "holder_of",
    "page",
    "read_form",
    "redirect",
    "static_file",
]

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
MAX_FORM = 5 * 1024 * 1024 + 64 * 1024  # a pasted bundle (5 MiB, as the API allows) and the other fields
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".LICENSE": "text/plain"}

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["pct"] = lambda v: "–" if v is None else f"{float(v):.0%}"
_env.filters["ms"] = lambda v: "–" if v is None else f"{float(v) * 1000:.0f} ms"
_env.filters["secs"] = lambda v: "–" if v is None else f"{float(v):.0f} s"
_env.filters["when"] = lambda v: "" if not v else str(v).replace("T", " ").split(".")[0].removesuffix("Z")[:19]
_env.filters["secs1"] = lambda v: "–" if v is None else f"{float(v):.1f} s"
_env.filters["label"] = lambda key: str(key).removesuffix("_s").replace("_", " ")


class LoginRequired(Exception):
    """No live session: a page redirects to the login form, a live fragment asks htmx to."""


class PageError(Exception):
    """A refused request: shown as a small page with `status` (403 for roles and CSRF)."""

    def __init__(self, message: str, status: int = 403, findings: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.findings = findings or []


class UiRoute(APIRoute):
    """Every console route: a missing session goes to the login form, a refusal renders as a page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except PageError as exc:
                session = current(request)
                return page(
                    request, "error.html", session, exc.status, message=exc.message, findings=exc.findings
                )

        return wrapped


_lock = threading.Lock()


def history_of(request: Request) -> HealthHistory:
    return history_for(request.app)


def holder_of(request: Request) -> dict[str, Any]:
    """Per-app caches of the console (the chain verification)."""
    with _lock:
        holder: dict[str, Any] | None = getattr(request.app.state, "ui_cache", None)
        if holder is None:
            holder = {}
            request.app.state.ui_cache = holder
        return holder


def session_or_login(request: Request) -> Session:
    session = current(request)
    if session is None:
        raise LoginRequired()
    return session


def page(
    request: Request, template: str, session: Session | None, status: int = 200, **context: Any
) -> HTMLResponse:
    flash: list[tuple[str, str]] = []
    if session is not None and not template.startswith("_"):
        flash, session.flash = session.flash, []
    html = _env.get_template(template).render(
        request=request,
        session=session,
        me=session.principal if session is not None else None,
        can=(lambda role: session is not None and session.can(role)),
        flash=flash,
        nav=context.pop("nav", ""),
        **context,
    )
    return HTMLResponse(html, status, headers=HEADERS)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, 303, headers=HEADERS)


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/ui/login?next=" + quote(target, safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={**HEADERS, "HX-Redirect": location})
    return redirect(location)


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the last value of a repeated field wins); 413 past `MAX_FORM`."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise PageError("the form is too large", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PageError("the form is not UTF-8", 400) from exc
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=64))


def safe_next(target: str | None) -> str:
    """Only a console path may follow a login (no open redirect)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"


def static_file(name: str) -> Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC or not path.is_file():
        return Response("not found", 404, media_type="text/plain")
    ctype = _TYPES.get(path.suffix, "application/octet-stream")
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(path.read_bytes(), 200, headers=headers, media_type=ctype)
