"""The proxy under test: a two-model bundle on the fake upstream, a running service, an `openai` client.

    with proxy_service(tmp_path, upstream) as px:        # run_service on a fresh SQLite store
        px.client.chat.completions.create(model=AGENT, messages=MESSAGES)
        upstream.count(UP["alpha"])                       # requests the primary's upstream saw

Models `alpha` (primary) and `beta` (fallback) are served by the fake upstream as `alpha-up` / `beta-up`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

from support.service import Service, run_service, today_plus, write_bundle
from support.upstream import UpstreamServer

__all__ = ["AGENT", "MESSAGES", "UP", "Proxy", "openai_client", "poll", "proxy_bundle", "proxy_service"]

AGENT = "assistant"
UP = {"alpha": "alpha-up", "beta": "beta-up"}
MESSAGES: list[Any] = [{"role": "user", "content": "Summarise the ward round."}]


def _model(base_url: str, name: str) -> dict[str, Any]:
    return {
        "provider": "test",
        "endpoint": {"type": "openai", "base_url": base_url, "model": UP[name]},
        "capabilities": ["text", "tool_use"],
        "clearance": "restricted",
        "regions": ["eu-west-2"],
        "cost": {"input_per_1m": 0.5, "output_per_1m": 1.5},
        "trusted": True,
    }


def proxy_bundle(
    base_url: str,
    *,
    terminal: dict[str, Any] | None = None,
    health: dict[str, Any] | None = None,
    notifiers: dict[str, Any] | None = None,
    fallback_on: list[str] | None = None,
) -> dict[str, Any]:
    """`assistant`: primary alpha, fallback beta; one try per model; a model is down after 3 calls with
    half failing, for 60 s (override with `health`)."""
    expires = today_plus(365).isoformat()
    policy: dict[str, Any] = {
        "profile": "assist",
        "primary": "alpha",
        "fallbacks": [{"model": "beta", "on": fallback_on or ["unavailable", "retryable"]}],
        "terminal": terminal or {"action": "human_queue", "queue": "humans"},
        "timeout": "10s",
        "retry": {"attempts": 1},
        "health": {"window": "60s", "min_samples": 3, "error_rate": 0.5, "cooldown": "60s", "min_dwell": "1s",
                   "probes": 1, **(health or {})},
    }
    if notifiers:
        policy["notify"] = sorted(notifiers)
    return {
        "models": {"alpha": _model(base_url, "alpha"), "beta": _model(base_url, "beta")},
        "profiles": {"assist": {"requires": ["text"], "capabilities": ["text", "tool_use"],
                                "data_class": "internal", "regions": ["eu-west-2"]}},
        "approvals": [{"model": m, "profile": "assist", "by": "governance", "evidence": f"EVAL-{m}",
                       "expires": expires} for m in ("alpha", "beta")],
        "notifiers": notifiers or {},
        "policies": {AGENT: policy},
    }


@dataclass
class Proxy:
    svc: Service
    client: openai.OpenAI
    aclient: openai.AsyncOpenAI

    @property
    def base_url(self) -> str:
        return self.svc.url + "/v1"

    def http(self) -> httpx.Client:
        return self.svc.client()


def openai_client(base_url: str, **options: Any) -> openai.OpenAI:
    """The SDK with its defaults (2 retries on 408/409/429/5xx unless `x-should-retry: false`), as users run it."""
    return openai.OpenAI(base_url=base_url, api_key="x", **options)


@contextmanager
def proxy_service(
    tmp_path: Path, upstream: UpstreamServer, raw: dict[str, Any] | None = None, **bundle_options: Any
) -> Iterator[Proxy]:
    config = write_bundle(tmp_path / "bundle.yaml", raw or proxy_bundle(upstream.base_url, **bundle_options))
    with run_service(f"sqlite:///{tmp_path / 'store.db'}", config=config) as svc:
        base = svc.url + "/v1"
        client = openai_client(base)
        aclient = openai.AsyncOpenAI(base_url=base, api_key="x")
        try:
            yield Proxy(svc, client, aclient)
        finally:
            client.close()


def poll(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Wait until `predicate()` holds; fail after a generous bound (never a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s}s")
        time.sleep(0.02)
