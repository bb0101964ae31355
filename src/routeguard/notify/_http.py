"""The JSON POST shared by the webhook and Slack notifiers (httpx, async, bounded by a timeout).

An httpx client is costly to build (~0.1 s: TLS context), so each sender keeps one per event loop and
reuses its connections; `aclose()` releases it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx

from routeguard.notify.base import NotifyError

__all__ = ["USER_AGENT", "JsonPoster"]

USER_AGENT = "routeguard-notify/1"
_BODY_SNIPPET = 300


class JsonPoster:
    def __init__(self, timeout_s: float, client: httpx.AsyncClient | None = None) -> None:
        self.timeout_s = timeout_s
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
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        sent_headers = {"content-type": "application/json", "user-agent": USER_AGENT, **headers}
        client = self._client()
        response = await client.post(url, content=content, headers=sent_headers, timeout=self.timeout_s)
        if not response.is_success:
            snippet = response.text[:_BODY_SNIPPET].strip()
            raise NotifyError(f"HTTP {response.status_code} from {url}" + (f": {snippet}" if snippet else ""))

    async def aclose(self) -> None:
        own, self._own = self._own, None
        if own is not None and self._own_loop is asyncio.get_running_loop():
            await own.aclose()
