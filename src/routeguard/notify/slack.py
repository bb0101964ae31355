"""Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): `{text, blocks}` with a readable
summary; `text` alone carries everything for receivers that ignore blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from routeguard.notify._http import JsonPoster
from routeguard.notify.base import DEFAULT_TIMEOUT_S, summarize

__all__ = ["SlackNotifier", "slack_message"]


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    head, lines = summarize(payload)
    return {
        "text": f"{head}\n" + "\n".join(lines),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"routeguard · {payload.get('event', '')}"}],
            },
        ],
    }


class SlackNotifier:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self._poster = JsonPoster(timeout_s, client)

    async def send(self, payload: Mapping[str, Any]) -> None:
        body = slack_message(payload)
        await self._poster.post(self.url, body, self.headers)

    async def aclose(self) -> None:
        await self._poster.aclose()

    def __repr__(self) -> str:
        return f"SlackNotifier({self.name!r})"
