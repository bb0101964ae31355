"""The FastAPI application: `create_app(settings)` (CONTRACT §3).

Building the app opens the store and bootstraps it (see `ServiceState.open`), so a bad `--config` or an
unsafe exposure fails before anything listens. The background ticker runs while the app is served.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import ModuleType
from typing import ClassVar

from fastapi import APIRouter, FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import routeguard
from routeguard.service.api import (
    audit,
    cluster,
    health,
    meta,
    metrics,
    models,
    outcomes,
    outcomes_export,
    policies,
    queue,
    reviews,
    rollback,
    route,
    routes,
)
from routeguard.service.api import safe_mode as safe_mode_api
from routeguard.service.body_guard import BodyGuard
from routeguard.service.errors import install_error_handlers
from routeguard.service.fastpath import RouteFastPath
from routeguard.service.proxy import PROXY_PATH, ChatProxy
from routeguard.service.proxy_apis import PROXY_APIS
from routeguard.service.settings import Settings
from routeguard.service.sources import PullSources
from routeguard.service.state import ServiceState
from routeguard.service.ui import router as console_router

__all__ = ["create_app"]

_ROUTERS: tuple[ModuleType, ...] = (
    route, outcomes, health, routes, models, policies, rollback, safe_mode_api, audit, queue, meta, metrics
)
_ROUTERS += (cluster,)
_JSON = b"application/json"


class RouteguardAPI(FastAPI):
    """FastAPI, with `POST /v1/chat/completions` answered before the framework's middleware and routing
    (the proxy is raw ASGI and handles its own errors): its budget is well under a millisecond."""

    # chat completions, embeddings, responses: one proxy each
    proxies: ClassVar[dict[str, ChatProxy]] = {path: ChatProxy(api) for path, api in PROXY_APIS.items()}
    proxy = proxies[PROXY_PATH]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            proxy = self.proxies.get(scope["path"])
            if proxy is not None:
                scope["app"] = self
                await proxy(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class JsonByDefault:
    """A body sent without a JSON content type (curl -d) is read as JSON: every endpoint takes JSON only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/ui/"):  # the console posts HTML forms
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = scope["headers"]
            ctype = next((v for k, v in headers if k == b"content-type"), None)
            if ctype is None or not ctype.split(b";")[0].strip().endswith(b"json"):
                rest = [(k, v) for k, v in headers if k != b"content-type"]
                scope = {**scope, "headers": [*rest, (b"content-type", _JSON)]}
        await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None, state: ServiceState | None = None, routers: Iterable[APIRouter] = ()
) -> FastAPI:
    """The service app. Pass `state` to reuse an opened one (the CLI does, to report start-up problems);
    `routers` adds more endpoints."""
    settings = settings or Settings()
    service = state if state is not None else ServiceState.open(settings)
    sources = PullSources(service)  # the bundle's `sources:` pollers (idle when it names none)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        sources.start()
        try:
            yield
        finally:
            await sources.stop()
            await service.stop()
            service.close()  # closes the store if the state opened it

    app = RouteguardAPI(
        title="routeguard",
        version=getattr(routeguard, "__version__", "0"),
        description="Governed model routing for AI agents: decide, fall back safely, prove what happened.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.sources = sources
    app.router.redirect_slashes = False  # a redirect would build its Location from the Host header: 404 instead
    app.state.auth = service.auth
    install_error_handlers(app)
    for module in _ROUTERS:
        app.include_router(module.router)
    app.include_router(outcomes_export.router)  # the outcome ledger (CONTRACT §7)
    app.include_router(reviews.router)  # reviews that run themselves (CONTRACT §7)
    for extra in routers:
        app.include_router(extra)
    app.include_router(console_router)  # the operator console at /ui (CONTRACT §9)
    # POST never gets here (RouteguardAPI answers it first); the route makes GET a 405, not a 404
    for path, proxy in RouteguardAPI.proxies.items():
        app.router.routes.append(Route(path, proxy, methods=["POST"], include_in_schema=False))
    app.add_middleware(BodyGuard, limit=settings.max_body_bytes, upload_limit=settings.max_upload_bytes)
    app.add_middleware(JsonByDefault)
    app.add_middleware(RouteFastPath)  # outermost: /v1/route skips the framework's per-request work
    return app
