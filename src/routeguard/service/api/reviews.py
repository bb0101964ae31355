"""/v1/reviews: the reviews the service ran by itself (``serve --review-every``) and their reports.

``GET /v1/reviews`` lists them newest first; ``GET /v1/reviews/{id}`` gives one with its report.json;
``GET /v1/reviews/{id}/report.html`` (or ``report.md``, ``proposal.yaml``) the rendered report;
``POST /v1/reviews`` (operator) runs one now. A review proposes a draft version; it never publishes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from routeguard.service.api.deps import ERRORS, OPERATOR, VIEWER, get_state, json_response
from routeguard.service.errors import ApiError
from routeguard.service.schemas import ErrorBody

router = APIRouter(tags=["review"])

_TYPES = {".html": "text/html; charset=utf-8", ".md": "text/markdown; charset=utf-8",
          ".json": "application/json", ".yaml": "application/yaml"}


@router.get("/v1/reviews", responses=ERRORS, summary="Reviews the service ran, newest first")
def list_reviews(request: Request, _p: Any = VIEWER) -> Response:
    return json_response({"reviews": get_state(request).reviews.list()})


@router.post("/v1/reviews", status_code=201, responses=ERRORS, summary="Run a review now (never publishes)")
async def run_review_now(request: Request, _p: Any = OPERATOR) -> Response:
    summary = await asyncio.to_thread(get_state(request).reviews.run_once, "requested")
    return json_response(summary, 201)


_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "unknown_review"}}


@router.get("/v1/reviews/{review_id}", responses={**ERRORS, **_UNKNOWN}, summary="One review with its report")
def get_review(review_id: str, request: Request, _p: Any = VIEWER) -> Response:
    reviews = get_state(request).reviews
    summary = reviews.file(review_id, "summary.json")
    if summary is None:
        raise ApiError(404, "unknown_review", f"no review {review_id!r}")
    report = reviews.file(review_id, "report.json")
    body = json.loads(summary.read_text(encoding="utf-8"))
    body["report"] = json.loads(report.read_text(encoding="utf-8")) if report is not None else None
    return json_response(body)


@router.get(
    "/v1/reviews/{review_id}/{name}", responses={**ERRORS, **_UNKNOWN}, summary="A file of one review's report"
)
def review_file(review_id: str, name: str, request: Request, _p: Any = VIEWER) -> Response:
    path = get_state(request).reviews.file(review_id, name)
    if path is None:
        raise ApiError(404, "unknown_review", f"no {name!r} for review {review_id!r}")
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"))
