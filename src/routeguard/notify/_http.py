"""The JSON POST shared by the webhook and Slack notifiers (httpx, async, bounded by a timeout).

An httpx client is costly to build (~0.1 s: TLS context), so each sender keeps one per event loop and
reuses its connections; `aclose()` releases it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from routeguard.core.egress import EgressRules, refused_address, refused_host
from routeguard.notify.base import NotifyError
from routeguard.notify.redact import redact_url

__all__ = ["USER_AGENT", "JsonPoster", "check_egress_at_connect"]

USER_AGENT = "routeguard-notify/1"


class _RedactUrls(logging.Filter):
    """httpx logs every request's full URL at INFO: a webhook URL's path is its credential, so log
    records of the HTTP client show URLs as `scheme://host/***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())
_BODY_SNIPPET = 300


class JsonPoster:
    def __init__(
        self, timeout_s: float, client: httpx.AsyncClient | None = None, rules: EgressRules | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.rules = rules if rules is not None else EgressRules()
        self._given = client
        self._own: httpx.AsyncClient | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        if self._own is None or self._own_loop is not loop or self._own.is_closed:
            self._own = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
            self._own_loop = loop
        return self._own

    async def post(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        """POST `body` as JSON; a 2xx answer is a delivery, anything else raises (NotifyError, httpx's)."""
        await check_egress_at_connect(url, self.rules)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        sent_headers = {"content-type": "application/json", "user-agent": USER_AGENT, **headers}
        client = self._client()
        response = await client.post(url, content=content, headers=sent_headers, timeout=self.timeout_s)
        if not response.is_success:
            snippet = response.text[:_BODY_SNIPPET].strip()
            where = redact_url(url)  # the path and query of a webhook URL are its credential
            raise NotifyError(f"HTTP {response.status_code} from {where}" + (f": {snippet}" if snippet else ""))

    async def aclose(self) -> None:
        own, self._own = self._own, None
        if own is not None and self._own_loop is asyncio.get_running_loop():
            await own.aclose()


async def check_egress_at_connect(url: str, rules: EgressRules) -> None:
    """Refuse a URL whose scheme is not http(s) or whose host resolves to a link-local or metadata address
    (unless allowed): checked on the resolved address, so a DNS name cannot smuggle one in. Redirects are
    never followed (a 3xx is a failed delivery), so a receiver cannot bounce the message elsewhere."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise NotifyError(f"egress refused: {redact_url(url)} is not an http(s) URL")
    if rules.allowed(host):
        return
    if refused_host(host):
        raise NotifyError(f"egress refused: {host} is link-local or a metadata service")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 0, type=socket.SOCK_STREAM)
    except OSError:
        return  # unresolvable: the connection attempt reports it
    for info in infos:
        address = str(info[4][0])
        if refused_address(address) and not rules.allowed(address):
            raise NotifyError(f"egress refused: {host} resolves to {address}, a link-local or metadata address")
