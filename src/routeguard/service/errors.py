"""One error shape for every failure: `{"error": {"code", "message", ...}}` with a fitting status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from routeguard.core.context import RoutingError
from routeguard.core.findings import BundleError, Finding
from routeguard.store.errors import (
    FourEyesViolation,
    InvalidScope,
    NotApproved,
    NotTheApprover,
    StateConflict,
    StoreError,
    UnknownEntry,
    UnknownVersion,
)

__all__ = ["ROUTING_CODES", "ApiError", "error_response", "install_error_handlers", "invalid_bundle"]

log = logging.getLogger("routeguard.service")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}
# a request the core refuses for its shape is an invalid request, like any other wrong type
ROUTING_CODES = {"invalid_context": "invalid_request", "invalid_outcome": "invalid_request"}


class ApiError(Exception):
    """Raise from a handler to answer with the error shape."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


def invalid_bundle(findings: list[Finding], message: str | None = None) -> ApiError:
    text = message or f"the bundle has {len(findings)} finding(s)"
    return ApiError(422, "invalid_bundle", text, findings=[f.to_dict() for f in findings])


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or [parts[0]]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _store_error(exc: StoreError) -> tuple[int, str]:
    if isinstance(exc, UnknownVersion):
        return 404, "unknown_version"
    if isinstance(exc, UnknownEntry):
        return 404, "unknown_entry"
    if isinstance(exc, NotTheApprover):
        return 403, "not_the_approver"
    if isinstance(exc, FourEyesViolation):
        return 403, "four_eyes"
    if isinstance(exc, NotApproved):
        return 409, "not_approved"
    if isinstance(exc, InvalidScope):
        return 422, "invalid_request"
    if isinstance(exc, StateConflict):
        return 409, "state_conflict"
    return 409, "conflict"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.headers:
        headers = {**(headers or {}), **exc.headers}
    return error_response(exc.status, exc.code, exc.message, headers, **exc.extra)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        return error_response(
            400, "invalid_json", f"the request body is not valid JSON: {detail}".rstrip(": ")
        )
    fields = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in errors]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    return error_response(422, "invalid_request", message, fields=fields)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method of every route on the path, not only the first route's
        headers["Allow"] = ", ".join(_allowed(request))
    return error_response(exc.status_code, code, message, headers or None)


def _allowed(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            methods.add(method)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _routing(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RoutingError)
    return error_response(exc.status, ROUTING_CODES.get(exc.code, exc.code), exc.message)


async def _store(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    status, code = _store_error(exc)
    return error_response(status, code, str(exc))


async def _bundle(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BundleError)
    return invalid_bundle_response(exc.findings)


def invalid_bundle_response(findings: list[Finding]) -> JSONResponse:
    err = invalid_bundle(findings)
    return error_response(err.status, err.code, err.message, **err.extra)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RoutingError, _routing)
    app.add_exception_handler(StoreError, _store)
    app.add_exception_handler(BundleError, _bundle)
    app.add_exception_handler(Exception, _unexpected)
