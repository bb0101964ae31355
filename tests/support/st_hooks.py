"""Schemathesis hooks for the API fuzz (`SCHEMATHESIS_HOOKS=support.st_hooks`): every error answer has the
contract's shape, `{"error": {"code", "message"}}` with non-empty strings."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def error_shape(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx/5xx is JSON `{"error": {"code": str, "message": str, ...}}` and nothing else at the top."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} with a body that is not JSON") from exc
    if not isinstance(body, dict) or set(body) != {"error"}:
        raise AssertionError(f"{response.status_code}: the body is not {{'error': ...}}: {body!r}"[:300])
    error = body["error"]
    for key in ("code", "message"):
        if not isinstance(error.get(key), str) or not error[key]:
            raise AssertionError(f"{response.status_code}: error.{key} missing or empty: {body!r}"[:300])
