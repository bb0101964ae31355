"""Periodic audit checkpoints (`routeguard serve --checkpoint-every D --checkpoint-file FILE`, CONTRACT §5).

Every interval the service writes the chain's signed head to a file outside the database (by default
beside the SQLite store: `<db>.checkpoint.json`; a PostgreSQL store needs `--checkpoint-file`), and once
more when it stops; with `--checkpoint-notify NAME` it also sends it to that notifier of the live bundle
(`{"event": "audit.checkpoint", seq, hash, ts, alg, signature}`), so a receiver can keep the history.
`GET /v1/audit/verify` and `routeguard audit verify --checkpoint FILE` check the chain
against it, which detects records deleted together with a rewound head row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from routeguard.service.settings import Settings
from routeguard.store.checkpoint import Checkpoint, CheckpointError, read_checkpoint, write_checkpoint
from routeguard.store.db import Store

__all__ = ["CheckpointWriter", "checkpoint_path"]

log = logging.getLogger("routeguard.service")


def checkpoint_path(settings: Settings) -> Path | None:
    """`--checkpoint-file`, else `<sqlite file>.checkpoint.json`, else None (no default for a server DB)."""
    if settings.checkpoint_file is not None:
        return settings.checkpoint_file
    try:
        url = make_url(settings.db_url)
    except Exception:  # an unparsable URL fails at open, not here
        return None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".checkpoint.json")
    return None


class CheckpointWriter:
    def __init__(
        self,
        store: Store,
        path: Path | None,
        every_s: float,
        notify: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.path = path
        self.every_s = every_s
        self.notify = notify

    @property
    def enabled(self) -> bool:
        return self.every_s > 0 and (self.path is not None or self.notify is not None)

    def latest(self) -> Checkpoint | None:
        """The last checkpoint written, if any (an unreadable one is reported, and verify then fails)."""
        if self.path is None or not self.path.exists():
            return None
        try:
            return read_checkpoint(self.path)
        except CheckpointError:
            log.exception("audit checkpoint %s is unreadable", self.path)
            raise

    def write_now(self) -> Checkpoint | None:
        checkpoint = self.store.audit.checkpoint()
        if self.path is not None:
            write_checkpoint(self.path, checkpoint)
        return checkpoint

    async def once(self) -> None:
        checkpoint = await asyncio.to_thread(self.write_now)
        if self.notify is not None and checkpoint is not None:
            await self.notify({"event": "audit.checkpoint", **checkpoint.to_dict()})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.once()
            except Exception as exc:  # a notifier's error may hold its URL: name the type only
                log.error("audit checkpoint failed (%s); retried next interval", type(exc).__name__)
