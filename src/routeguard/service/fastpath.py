"""`POST /v1/route` served straight from ASGI, ahead of the framework's routing and dependency injection.

A decision costs tens of microseconds; the framework around it costs several times that. This
middleware answers the two route paths itself, with the same auth, body rules, error shapes and
headers as the documented FastAPI endpoint in `api/route.py` (which stays registered for the OpenAPI
document and answers if the middleware is not installed).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from routeguard.core.context import RoutingError
from routeguard.service.api.deps import dumps, parse_json
from routeguard.service.api.route import TRACE_HEADER
from routeguard.service.auth import PRINCIPAL_HEADER, authorize
from routeguard.service.body_guard import read_limited
from routeguard.service.errors import ROUTING_CODES, ApiError
from routeguard.telemetry.tracing import span_decision

__all__ = ["ROUTE_PATHS", "RouteFastPath"]

log = logging.getLogger("routeguard.service")
ROUTE_PATHS = frozenset({"/v1/route", "/internal/model-routing/route"})
_TRACE = TRACE_HEADER.encode()
_JSON_HEADERS = [(b"content-type", b"application/json")]


class RouteFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in ROUTE_PATHS:
            await self.app(scope, receive, send)
            return
        status, body, headers = await self._answer(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        authorization = principal = trace = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
            elif key == PRINCIPAL_HEADER.encode():
                principal = value.decode("latin-1")
            elif key == _TRACE:
                trace = value.decode("latin-1")
        service = scope["app"].state.service
        try:
            authorize(service.auth, "router", authorization, principal)
            data = parse_json(await read_limited(scope, receive, service.settings.max_body_bytes))
            if not isinstance(data, dict):
                raise ApiError(422, "invalid_request", "the route request must be a JSON object")
            if trace and "trace_id" not in data:
                data["trace_id"] = trace
            agent = data.get("agent")
            with span_decision(agent if isinstance(agent, str) else None) as span:
                began = time.perf_counter()
                decision = service.router.decide(data)
                service.observe_decision(decision, time.perf_counter() - began)
                service.router.note_decision(decision)  # the caller calls the model: feeds auto safe mode
                span.record_decision(decision)
        except ApiError as exc:
            extra = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
            extra += [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
            return exc.status, _error(exc.code, exc.message, **exc.extra), extra
        except RoutingError as exc:
            return exc.status, _error(ROUTING_CODES.get(exc.code, exc.code), exc.message), []
        except Exception:
            log.exception("route request failed")
            return 500, _error("internal_error", "internal error; see the server log"), []
        out = decision.to_dict()
        sources = getattr(scope["app"].state, "sources", None)
        if sources is not None:
            sources.annotate(out, data)  # a cost source's cached quote (CONTRACT §1 `sources`)
        return 200, dumps(out), [(_TRACE, decision.trace_id.encode("latin-1"))]


def _error(code: str, message: str, **extra: Any) -> bytes:
    return dumps({"error": {"code": code, "message": message, **extra}})
