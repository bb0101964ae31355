"""Periodic audit checkpoints (`routeguard serve --checkpoint-every D --checkpoint-file FILE`, CONTRACT §5).

Every interval the service writes the chain's signed head to a file outside the database (by default
beside the SQLite store: `<db>.checkpoint.json`; a PostgreSQL store needs `--checkpoint-file`), and once
more when it stops. `GET /v1/audit/verify` and `routeguard audit verify --checkpoint FILE` check the chain
against it, which detects records deleted together with a rewound head row.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

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
    def __init__(self, store: Store, path: Path | None, every_s: float) -> None:
        self.store = store
        self.path = path
        self.every_s = every_s

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
        if self.path is None:
            return None
        checkpoint = self.store.audit.checkpoint()
        write_checkpoint(self.path, checkpoint)
        return checkpoint

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await asyncio.to_thread(self.write_now)
            except Exception:
                log.exception("audit checkpoint to %s failed; retried next interval", self.path)
