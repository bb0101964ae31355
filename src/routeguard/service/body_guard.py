"""Request body limits and strict JSON for every endpoint that takes a body (CONTRACT §3).

Raw ASGI, so the limit holds before anything buffers the body: a `Content-Length` past the limit is
refused at once, and a streamed body is counted as it arrives (413 `payload_too_large`). Policy uploads
get their own, larger limit. A JSON body is then checked by `strict_json` (UTF-8, no NaN/Infinity, nesting,
integer range, lone surrogates) and replayed unchanged to the application, so no handler or framework
parser ever sees a body the store cannot hold.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeguard.service.api.deps import dumps
from routeguard.service.errors import ApiError
from routeguard.service.strict_json import loads_strict

__all__ = ["UPLOAD_PATHS", "BodyGuard", "BodyTooLarge", "read_limited"]

UPLOAD_PATHS = frozenset({"/v1/policies", "/internal/model-routing/policies"})
_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"the request body is larger than {limit} bytes")


async def read_limited(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing past ``limit`` bytes (by Content-Length first, then as it arrives)."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError as exc:
                raise ApiError(400, "bad_request", "Content-Length is not a number") from exc
            if declared > limit:
                raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "invalid_json", "the client went away before sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyGuard:
    def __init__(self, app: ASGIApp, limit: int = 1 << 20, upload_limit: int = 5 << 20) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].rstrip("/") in UPLOAD_PATHS else self.limit
        try:
            body = await read_limited(scope, receive, limit)
            if body.strip() and _is_json(scope):
                loads_strict(body)
        except ApiError as exc:
            await _answer(send, exc)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _is_json(scope: Scope) -> bool:
    ctype = next((v for k, v in scope["headers"] if k == b"content-type"), b"application/json")
    return ctype.split(b";")[0].strip().endswith(b"json")


async def _answer(send: Send, exc: ApiError) -> None:
    body = dumps({"error": {"code": exc.code, "message": exc.message, **exc.extra}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
