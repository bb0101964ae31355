"""The one transport seam every HTTP provider talks through (DESIGN "next shape" 5).

A :class:`Transport` POSTs a body and hands back a :class:`Response`, whole or as a stream of lines. Two
implementations exist and are chosen by configuration, never by the provider:

* ``lean`` (default): :class:`~routeguard.execution.providers.lean_http.LeanClient`, a pooled HTTP/1.1
  client over httptools — a fraction of httpx's CPU per call, which is most of the proxy's budget;
* ``httpx``: an ``httpx.AsyncClient`` (HTTP proxies, anything the lean client does not speak).

The kind comes from the argument, else ``ROUTEGUARD_HTTP_CLIENT`` (``lean`` | ``httpx``). Both already
offer this surface (it is the subset of ``httpx.AsyncClient`` the providers use), so the seam is a pair of
``Protocol``s rather than an adapter layer: nothing is wrapped on the hot path.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

import httpx

__all__ = [
    "DEFAULT_LIMITS",
    "TRANSPORT_ERRORS",
    "TRANSPORT_KINDS",
    "Response",
    "Transport",
    "make_httpx_transport",
    "make_transport",
]

DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)

# Errors that mean "the exchange with the upstream failed" (TimeoutError before OSError: it is one). The
# lean client raises OSErrors (its RemoteProtocolError is a ConnectionError); httpx its own HTTPError tree.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, httpx.InvalidURL, OSError)

TRANSPORT_KINDS = frozenset({"lean", "httpx"})


@runtime_checkable
class Response(Protocol):
    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...

    async def aread(self) -> bytes: ...

    def aiter_lines(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """POST a body; ``send(build_request(...), stream=True)`` for a response read as it arrives."""

    def build_request(self, method: str, url: str, *, content: bytes, headers: Mapping[str, str],
                      timeout: Any = None) -> Any: ...

    async def send(self, request: Any, *, stream: bool = False) -> Any: ...

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str], timeout: Any = None) -> Any: ...

    async def aclose(self) -> None: ...


def make_httpx_transport(*, limits: httpx.Limits = DEFAULT_LIMITS, trust_env: bool = True) -> httpx.AsyncClient:
    """The httpx implementation (one per process is enough; share it between providers)."""
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0), trust_env=trust_env,
                             follow_redirects=False)


def make_transport(kind: str | None = None, *, trust_env: bool = True) -> Transport:
    """The transport of ``kind`` (``lean`` | ``httpx``; None: ``ROUTEGUARD_HTTP_CLIENT``, default ``lean``)."""
    chosen = (kind or os.environ.get("ROUTEGUARD_HTTP_CLIENT", "") or "lean").strip().lower()
    if chosen not in TRANSPORT_KINDS:
        raise ValueError(f"unknown HTTP transport {chosen!r} (one of: {', '.join(sorted(TRANSPORT_KINDS))})")
    if chosen == "httpx":
        return make_httpx_transport(trust_env=trust_env)
    from routeguard.execution.providers.lean_http import LeanClient

    return LeanClient(trust_env=trust_env)
