"""Upload a proposed bundle as a *draft* policy version (``POST {url}/v1/policies``).

It never approves or publishes: that stays with a human through the four-eyes flow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from routeguard.review.bundle_out import jsonable

__all__ = ["SubmitError", "submit_draft"]

TOKEN_ENV = "ROUTEGUARD_TOKEN"
PRINCIPAL_ENV = "ROUTEGUARD_PRINCIPAL"
PRINCIPAL_HEADER = "x-routeguard-principal"


def default_principal() -> str:
    """Who submits: ``ROUTEGUARD_PRINCIPAL``, else the operating-system user running the review."""
    import getpass

    try:
        return os.environ.get(PRINCIPAL_ENV) or getpass.getuser() or "routeguard-review"
    except (KeyError, OSError):
        return "routeguard-review"


class SubmitError(RuntimeError):
    """The server refused the draft or could not be reached."""

    def __init__(self, message: str, status: int | None = None, body: object = None) -> None:
        super().__init__(message)
        self.status, self.body = status, body


def submit_draft(
    url: str,
    config: Mapping[str, Any],
    label: str,
    *,
    token: str | None = None,
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    principal: str | None = None,
) -> dict[str, Any]:
    """Store ``config`` as a draft; returns ``{url, status, version, hash, findings}`` from the answer.

    The bearer token comes from ``token`` or the ``ROUTEGUARD_TOKEN`` environment variable (none: no header,
    which a loopback development server accepts). A token names its principal; without one, the draft's author
    is ``principal`` (default :func:`default_principal`), sent as ``x-routeguard-principal`` — never `anonymous`.
    """
    bearer = token if token is not None else os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    headers[PRINCIPAL_HEADER] = principal or default_principal()
    endpoint = url.rstrip("/") + "/v1/policies"
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            resp = client.post(endpoint, json={"config": jsonable(config), "label": label}, headers=headers)
    except httpx.HTTPError as exc:
        raise SubmitError(f"cannot reach {endpoint}: {exc}") from exc
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    if resp.status_code not in (200, 201):
        detail = body.get("error", body) if isinstance(body, dict) else body
        raise SubmitError(f"{endpoint} answered {resp.status_code}: {detail}", resp.status_code, body)
    data = body if isinstance(body, dict) else {}
    return {
        "url": endpoint,
        "status": data.get("status", "draft"),
        "version": data.get("version"),
        "hash": data.get("hash"),
        "findings": data.get("findings", []),
        "label": label,
        "author": data.get("author", principal or default_principal()),
    }
