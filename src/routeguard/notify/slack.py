"""Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): `{text, blocks}` with a readable
summary; `text` alone carries everything for receivers that ignore blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routeguard.notify.base import summarize
from routeguard.notify.webhook import WebhookNotifier

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


class SlackNotifier(WebhookNotifier):
    """A webhook whose body is a Slack message instead of the raw payload."""

    def request(self, payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, str]]:
        return slack_message(payload), dict(self.headers)

    def __repr__(self) -> str:
        return f"SlackNotifier({self.name!r})"
