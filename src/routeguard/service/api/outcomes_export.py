"""GET /v1/outcomes/export: the outcome ledger in the review's long form (CONTRACT §7), streamed.

``since`` (RFC 3339 or a duration back from now, e.g. ``7d``; default: everything retained) and ``format``
(``csv``, default, or ``jsonl``). Rows are read from the store a page at a time in a worker thread, so a large
export never holds the event loop or the whole ledger in memory. What is still buffered for the ledger is
written first, so an export sees every outcome reported before it was asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from routeguard.core.durations import parse_duration
from routeguard.service.api.deps import ERRORS, VIEWER, get_state
from routeguard.service.errors import ApiError
from routeguard.store.ledger import EXPORT_COLUMNS

router = APIRouter(tags=["review"])

_PAGE = 2000
_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _since(value: str | None, now: float) -> datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return datetime.fromtimestamp(now - parse_duration(text), UTC)
    except (TypeError, ValueError) as exc:
        message = f"since: expected an RFC 3339 time or a duration, got {value!r}"
        raise ApiError(422, "invalid_request", message) from exc


def _render(rows: list[dict[str, Any]], fmt: str, header: bool) -> bytes:
    if fmt == "jsonl":
        return "".join(json.dumps({k: r[k] for k in EXPORT_COLUMNS}) + "\n" for r in rows).encode()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows({k: ("" if r[k] is None else r[k]) for k in EXPORT_COLUMNS} for r in rows)
    return buffer.getvalue().encode()


@router.get(
    "/v1/outcomes/export",
    responses={**ERRORS, 200: {"content": {t: {} for t in _TYPES.values()}, "description": "the ledger"}},
    summary="Export the outcome ledger (long form, CSV or JSONL, streamed)",
    response_class=StreamingResponse,
)
async def export(
    request: Request,
    since: Annotated[str | None, Query(description="RFC 3339 time, or a duration back from now (7d)")] = None,
    format: Annotated[str, Query(description="csv or jsonl")] = "csv",
    _p: Any = VIEWER,
) -> StreamingResponse:
    if format not in _TYPES:
        raise ApiError(422, "invalid_request", f"format: expected csv or jsonl, got {format!r}")
    state = get_state(request)
    start = _since(since, state.settings.clock())
    with contextlib.suppress(Exception):  # what is still buffered; the background writer retries on failure
        await asyncio.to_thread(state.ledger.flush)
    ledger = state.store.ledger

    async def body() -> AsyncIterator[bytes]:
        after, first = 0, True
        while True:
            page = await asyncio.to_thread(ledger.page, start, after, _PAGE)
            if first or page:
                yield _render(page, format, first)
            first = False
            if len(page) < _PAGE:
                return
            after = int(page[-1]["_id"])

    name = f"outcomes.{format}"
    return StreamingResponse(body(), media_type=_TYPES[format],
                             headers={"content-disposition": f'attachment; filename="{name}"'})
