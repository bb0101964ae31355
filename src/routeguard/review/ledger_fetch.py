"""``routeguard review --server URL``: download the outcome ledger (``GET /v1/outcomes/export``) as a CSV file."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from routeguard.review.submit import TOKEN_ENV

__all__ = ["LedgerFetchError", "fetch_ledger"]


class LedgerFetchError(RuntimeError):
    """The service could not be reached or refused the export."""


def fetch_ledger(
    url: str, report_dir: str | Path, since: str = "30d", *, token: str | None = None, timeout_s: float = 120.0
) -> Path:
    """Stream the export into ``REPORT_DIR/ledger-export.csv`` and return its path (token: ROUTEGUARD_TOKEN)."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ledger-export.csv"
    bearer = token if token is not None else os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    endpoint = url.rstrip("/") + "/v1/outcomes/export"
    try:
        with httpx.Client(timeout=timeout_s) as client, client.stream(
            "GET", endpoint, params={"since": since, "format": "csv"}, headers=headers
        ) as resp:
            if resp.status_code != 200:
                resp.read()
                raise LedgerFetchError(f"{endpoint} answered {resp.status_code}: {resp.text[:500]}")
            with path.open("wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        raise LedgerFetchError(f"cannot read {endpoint}: {exc}") from exc
    return path
