"""A lean pooled HTTP/1.1 client for the upstream hop: the proxy's hot path.

httpx spends about 1.4 ms of CPU per call on a small machine (bench/proxy.py), more than the proxy's whole
budget. This client does only what the OpenAI-compatible provider needs — POST a JSON body over keep-alive
HTTP/1.1 (TLS included) and read the response whole or as a stream of lines — and leaves parsing to
httptools (llhttp, the parser uvicorn uses). It offers the subset of `httpx.AsyncClient` the provider calls:
`post`, `build_request`, `send(stream=True)`, `aclose`; responses have `status_code`, `headers`, `text`,
`json()`, `aread()`, `aiter_lines()`, `aclose()`.

- Timeouts are the caller's: the provider wraps every await in `asyncio.timeout`. A call that is cancelled or
  times out, or a response closed before its end, closes its connection (the upstream sees the disconnect).
- A connection is reused only after a complete response that allows keep-alive; idle ones expire after
  `keepalive_expiry_s`. A request on a reused connection that the server had closed (no byte came back) is
  sent once more on a new connection.
- Proxies: a URL that the environment routes through a proxy (`HTTP(S)_PROXY`, `ALL_PROXY`, `NO_PROXY`)
  goes through httpx instead. CA certificates: `SSL_CERT_FILE` / `SSL_CERT_DIR`, else certifi, like httpx.
- Errors are `OSError`s (`ConnectionError`, `TimeoutError` …) or `RemoteProtocolError`, classified by type.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

__all__ = ["LeanClient", "LeanRequest", "LeanResponse", "RemoteProtocolError"]

_HIGH_WATER = 1 << 20  # pause reading a stream that the caller does not keep up with
_LOW_WATER = 1 << 16


class RemoteProtocolError(ConnectionError):
    """The server broke HTTP: closed early, or sent something that is not a valid response."""


class Headers(dict[str, str]):
    """Response headers by lower-case name (repeated ones joined with `, `)."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: str
    target: str


@dataclass(frozen=True, slots=True)
class LeanRequest:
    origin: _Origin
    payload: bytes  # the whole request, head and body


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.idle_since = 0.0
        self.start()

    def start(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers = Headers()
        self.head_done = self.done = self.until_close = self.paused = self.keep_alive = False
        self.chunks: deque[bytes] = deque()
        self.buffered = self.received = 0
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not registered subclasses

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = RemoteProtocolError(f"invalid HTTP response from the upstream: {exc}")
            self.close()
            self._wake()

    def eof_received(self) -> bool:
        return False  # close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.head_done and not self.done and self.until_close and exc is None:
            self.done = True  # a body delimited by the end of the connection
        elif not self.done and self.error is None:
            what = "before the response was complete" if self.received else "without sending a response"
            self.error = RemoteProtocolError(f"the upstream closed the connection {what}")
            self.error.__cause__ = exc
        self._wake()

    # ------------------------------------------------------------------ parser callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # read now: llhttp resets it after the message
        self.head_done = True
        chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.until_close = "content-length" not in self.headers and not chunked
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        self._wake()

    # ------------------------------------------------------------------ for the response
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def take(self) -> bytes | None:
        if not self.chunks:
            return None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered < _LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return (self.done and self.error is None and not self.lost and not self.until_close
                and self.keep_alive and self.transport is not None and not self.transport.is_closing())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class LeanResponse:
    def __init__(self, client: LeanClient, origin: _Origin, conn: _Connection) -> None:
        self.status_code = conn.status
        self.headers = conn.headers
        self._client, self._origin, self._conn = client, origin, conn
        self._content: bytes | None = None
        self._finished = False

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            chunk = conn.take()
            if chunk is not None:
                yield chunk
                continue
            if conn.done:
                self._finish()
                return
            if conn.error is not None:
                self._finish()
                raise conn.error
            await conn.wait()

    async def aread(self) -> bytes:
        if self._content is None:
            try:
                self._content = b"".join([chunk async for chunk in self.aiter_raw()])
            except BaseException:
                await self.aclose()
                raise
        return self._content

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Lines without their ending (`\\n` or `\\r\\n`), as they arrive; the last one even unterminated."""
        pending = ""
        async for chunk in self.aiter_raw():
            pending += chunk.decode("utf-8", "replace")
            if "\n" not in pending:
                continue
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line[:-1] if line.endswith("\r") else line
        if pending:
            yield pending[:-1] if pending.endswith("\r") else pending

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("read the response first (aread)")
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._client._release(self._origin, self._conn)

    async def aclose(self) -> None:
        if not self._finished:
            self._finished = True
            self._conn.close()  # not read to its end: the connection cannot carry another request


class LeanClient:
    def __init__(self, *, max_keepalive_per_origin: int = 64, keepalive_expiry_s: float = 30.0,
                 trust_env: bool = True, user_agent: str = "routeguard") -> None:
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._origins: dict[str, _Origin] = {}
        self._proxied: dict[str, bool] = {}
        self._max_idle = max_keepalive_per_origin
        self._expiry_s = keepalive_expiry_s
        self._trust_env = trust_env
        self._agent = user_agent
        self._ssl: ssl.SSLContext | None = None
        self._fallback: Any = None  # an httpx.AsyncClient for proxied URLs, made on first use
        self.is_closed = False

    # ------------------------------------------------------------------ the httpx-like surface
    def build_request(self, method: str, url: str, *, content: bytes, headers: Mapping[str, str],
                      timeout: object = None) -> Any:
        if self._uses_proxy(url):
            return self._httpx().build_request(method, url, content=content, headers=headers, timeout=timeout)
        origin = self._origin(url)
        head = [f"{method} {origin.target} HTTP/1.1\r\nhost: {origin.host_header}\r\nuser-agent: {self._agent}\r\n"]
        head += [f"{k}: {v}\r\n" for k, v in headers.items()]
        head.append(f"content-length: {len(content)}\r\n\r\n")
        return LeanRequest(origin, "".join(head).encode("latin-1") + content)

    async def send(self, request: Any, *, stream: bool = False) -> Any:
        if not isinstance(request, LeanRequest):
            return await self._httpx().send(request, stream=stream)
        conn = await self._exchange(request)
        response = LeanResponse(self, request.origin, conn)
        if not stream:
            await response.aread()
        return response

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str], timeout: object = None) -> Any:
        return await self.send(self.build_request("POST", url, content=content, headers=headers, timeout=timeout))

    async def aclose(self) -> None:
        self.is_closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ connections
    async def _exchange(self, request: LeanRequest) -> _Connection:
        """Send the request and wait for the response head; one retry when a reused connection was dead."""
        for attempt in (1, 2):
            conn, reused = await self._acquire(request.origin)
            try:
                assert conn.transport is not None
                conn.transport.write(request.payload)
                while not conn.head_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait()
                return conn
            except RemoteProtocolError:
                conn.close()
                if reused and conn.received == 0 and attempt == 1:
                    continue  # the server had closed the idle connection: the request never reached it
                raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(self, origin: _Origin) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            stale = now - conn.idle_since > self._expiry_s
            if stale or conn.lost or conn.transport is None or conn.transport.is_closing():
                conn.close()
                continue
            conn.start()
            return conn, True
        loop = asyncio.get_running_loop()
        ssl_context = self._ssl_context() if origin.scheme == "https" else None
        _transport, conn = await loop.create_connection(
            lambda: _Connection(loop), origin.host, origin.port, ssl=ssl_context,
            server_hostname=origin.host if ssl_context is not None else None)
        return conn, False

    def _release(self, origin: _Origin, conn: _Connection) -> None:
        if self.is_closed or not conn.reusable:
            conn.close()
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    # ------------------------------------------------------------------ URLs, TLS, proxies
    def _origin(self, url: str) -> _Origin:
        found = self._origins.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise RemoteProtocolError(f"unsupported URL {url!r} (http or https with a host)")
            default = 443 if parts.scheme == "https" else 80
            port = parts.port or default
            host = parts.hostname
            name = f"[{host}]" if ":" in host else host
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            found = _Origin(parts.scheme, host, port, name if port == default else f"{name}:{port}", target)
            self._origins[url] = found
        return found

    def _uses_proxy(self, url: str) -> bool:
        known = self._proxied.get(url)
        if known is None:
            known = False
            if self._trust_env:
                proxies = urllib.request.getproxies()
                parts = urlsplit(url)
                if (proxies.get(parts.scheme) or proxies.get("all")) and parts.hostname:
                    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
                    known = not bypass(parts.hostname, proxies)
            self._proxied[url] = known
        return known

    def _httpx(self) -> Any:
        if self._fallback is None:
            from routeguard.execution.providers.transport import make_httpx_transport

            self._fallback = make_httpx_transport(trust_env=self._trust_env)
        return self._fallback

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            cafile = None
            if not (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")):
                try:
                    import certifi

                    cafile = certifi.where()
                except ImportError:  # pragma: no cover - httpx depends on certifi
                    cafile = None
            self._ssl = ssl.create_default_context(cafile=cafile)
        return self._ssl
