"""Local notifiers that need no receiver: `log` (one JSON line on the `routeguard.notify` logger) and `file`
(one JSON line appended to a file per message).

They exist so that an example bundle served by `make run` on a fresh machine delivers its notifications somewhere
real instead of retrying a dead webhook for ever (which would fire the outbox-age alert on a fresh install), and
so that a team can keep a plain JSON-lines record of what governance was told. Hand-written: a few lines each,
no library does this better. The file write runs in a worker thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["FileNotifier", "LogNotifier"]

log = logging.getLogger("routeguard.notify")


def _line(payload: Mapping[str, Any]) -> str:
    return json.dumps(dict(payload), sort_keys=True, default=str, separators=(",", ":"))


class LogNotifier:
    """Writes each payload as one JSON line at INFO on the `routeguard.notify` logger; always delivered."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, payload: Mapping[str, Any]) -> None:
        # the service's JSON log formatter puts `fields` on the line itself; plain logging shows the JSON text
        fields = {"notifier": self.name, "notification": dict(payload)}
        log.info("notification to %s: %s", self.name, _line(payload), extra={"fields": fields})

    def __repr__(self) -> str:
        return f"LogNotifier({self.name!r})"


class FileNotifier:
    """Appends each payload as one JSON line to ``path`` (created with its parent directories)."""

    def __init__(self, name: str, path: str | Path) -> None:
        self.name = name
        self.path = Path(path)

    def _append(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fp:
            fp.write(text + "\n")

    async def send(self, payload: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self._append, _line(payload))

    def __repr__(self) -> str:
        return f"FileNotifier({self.name!r}, {str(self.path)!r})"
