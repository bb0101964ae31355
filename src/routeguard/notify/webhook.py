"""Generic webhook: POST the CONTRACT §5 payload as recorded in the outbox, JSON, with the notifier's headers.

Extra headers identify the message so a receiver can deduplicate (delivery is at least once):
`x-routeguard-event` and `x-routeguard-audit-seq`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from routeguard.core.egress import EgressRules
from routeguard.notify._http import JsonPoster
from routeguard.notify.base import DEFAULT_TIMEOUT_S
from routeguard.notify.redact import redact_url, scrub

__all__ = ["WebhookNotifier"]


class WebhookNotifier:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
        rules: EgressRules | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self._poster = JsonPoster(timeout_s, client, rules)

    def redact(self, text: str) -> str:
        """``text`` without this notifier's URL path, query or header values (for logs and stored errors)."""
        parts = urlsplit(self.url)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        secrets = [self.url, rest if len(rest) > 1 else "", parts.query, *self.headers.values()]
        return scrub(text, secrets)

    def request(self, payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, str]]:
        """The JSON body and headers to POST for ``payload`` (subclasses reshape the body)."""
        headers = dict(self.headers)
        headers.setdefault("x-routeguard-event", str(payload.get("event", "")))
        if payload.get("audit_seq") is not None:
            headers.setdefault("x-routeguard-audit-seq", str(payload["audit_seq"]))
        return payload, headers

    async def send(self, payload: Mapping[str, Any]) -> None:
        body, headers = self.request(payload)
        await self._poster.post(self.url, body, headers)

    async def aclose(self) -> None:
        await self._poster.aclose()

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.name!r}, {redact_url(self.url)!r})"
