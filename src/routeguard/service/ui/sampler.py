"""Samples every model's health once a second for the console's sparklines, while the service runs.

A lifespan of the console's router (FastAPI merges it into the app's): one task that reads
`state.router.health()` — the function `GET /v1/health` uses — off the event loop and adds it to the app's
`HealthHistory`. Pages also sample when they are read, so history exists even where the lifespan is not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from routeguard.service.ui.history import HealthHistory

__all__ = ["INTERVAL_S", "history_for", "sampling"]

INTERVAL_S = 1.0
log = logging.getLogger("routeguard.service")
_lock = threading.Lock()


def history_for(app: Any) -> HealthHistory:
    with _lock:
        history: HealthHistory | None = getattr(app.state, "ui_history", None)
        if history is None:
            history = HealthHistory()
            app.state.ui_history = history
        return history


def _sample(app: Any) -> None:
    state = getattr(app.state, "service", None)
    if state is not None:
        history_for(app).observe(time.time(), state.router.health())


async def _run(app: Any) -> None:
    while True:
        try:
            await asyncio.to_thread(_sample, app)
        except Exception:
            log.exception("console health sampling failed")
        await asyncio.sleep(INTERVAL_S)


@asynccontextmanager
async def sampling(app: Any) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(_run(app), name="routeguard-console-sampler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
