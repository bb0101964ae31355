"""Redaction of secrets in what routeguard shows: webhook and Slack URLs keep only their scheme and host
(their path and query are the credential), userinfo is dropped, header values are masked; `scrub` removes
known secret strings from free text (exception messages, delivery errors) before it is logged or stored."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from routeguard.core.egress import ENV_REF

__all__ = ["MASK", "redact_bundle", "redact_url", "scrub"]

MASK = "***"


def _only_refs(text: str) -> bool:
    return not ENV_REF.sub("", text).strip("/?&=")


def redact_url(url: str) -> str:
    """`scheme://host[:port]/***`: the path and query (and any userinfo) hidden, unless they are only
    `${VAR}` references, which name a secret without revealing it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    shown = rest if _only_refs(rest) else f"/{MASK}"
    return f"{parts.scheme}://{host}{port}{shown}" if parts.scheme else MASK


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (longest first) replaced by the mask."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_bundle(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a bundle's plain data as the API shows it: notifier URLs and headers redacted."""
    out = copy.deepcopy(dict(raw))
    notifiers = out.get("notifiers")
    if isinstance(notifiers, dict):
        for entry in notifiers.values():
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("url"), str):
                entry["url"] = redact_url(entry["url"])
            headers = entry.get("headers")
            if isinstance(headers, dict):
                entry["headers"] = {
                    k: v if isinstance(v, str) and _only_refs(v) and v else MASK for k, v in headers.items()
                }
    return out
