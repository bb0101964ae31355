"""Secrets never reach a console page (CONTRACT §3): tokens, keys, passwords, and the path and query of
notifier (webhook, Slack) URLs are replaced before a bundle, a diff or an audit payload is rendered.

Hand-written: a small recursive walk over plain JSON data. Names of environment variables (`api_key_env`,
`${VAR}`) are not secrets and stay visible; what they hold is never in the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "redact", "redact_url"]

MASK = "***"
_SECRET_WORDS = ("token", "password", "secret", "authorization", "api_key", "apikey", "private_key", "cookie")
_NOT_SECRET = ("api_key_env", "token_env", "password_env", "secret_env")
_URL_KEYS = ("url", "webhook_url", "webhook", "endpoint_url", "hook")


def _is_secret_key(key: str) -> bool:
    low = key.lower()
    if low in _NOT_SECRET or low.endswith("_env"):
        return False
    return any(word in low for word in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """Scheme and host only: `https://hooks.slack.com/***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return MASK
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if ":" in host.split(":")[0]:  # an IPv6 literal
        host = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    tail = "/" + MASK if (parts.path not in ("", "/") or parts.query) else ""
    return urlunsplit((parts.scheme, host, "", "", "")) + tail


def redact(value: Any, *, in_notifier: bool = False, key: str = "") -> Any:
    """A copy of JSON-like data with secrets masked; `notifiers` entries get their URLs cut to the host."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = str(k)
            if _is_secret_key(name) and v is not None:
                out[name] = MASK
            elif name == "headers" and isinstance(v, Mapping):
                out[name] = {str(h): MASK for h in v}
            else:
                child_in_notifier = in_notifier or name == "notifiers"
                out[name] = redact(v, in_notifier=child_in_notifier, key=name)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, in_notifier=in_notifier, key=key) for v in value]
    if isinstance(value, str) and in_notifier and (key.lower() in _URL_KEYS or "://" in value):
        return redact_url(value)
    return value
