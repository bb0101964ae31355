"""Pull sources (CONTRACT §1 `sources`): a provider registry polled for health, a cost service asked for quotes.

- Health: every `interval`, per provider of the stable bundle (`{provider}` in the URL; `{model}`: per model), GET
  the URL with `timeout`. The answer `{status: up|degraded|down, score?, ttl?}` (or `{models: {id: {status, ttl?}}}`)
  becomes an external signal with source `registry` on each model of that provider, exactly like
  `PUT /v1/health/{model}`, with the answer's `ttl`, else two intervals. A registry that stops answering (timeout,
  connection error, a non-2xx, garbage) renews nothing, so its signals expire and the models go `stale` (treated as
  degraded), never healthy. Failures back off: the interval doubles per failure, up to 10 × `interval`.
- Cost: per model of the stable bundle, GET the URL (`{model}`) for `{input_per_1m, output_per_1m}`; a quote is
  cached for `ttl` and refreshed in the background (a decision never waits on it). The decision uses
  min(quote, the bundle's `cost`) — the bundle's cost is the ceiling — and says which in `cost_detail`; while the
  source fails (or has not answered yet) the bundle's cost is used and `cost_detail` says so.
- Metrics: `agent_routing_source_requests_total{source, result}` with result `ok`, `timeout`, `error`, `invalid`.

Hand-written glue over httpx (async client, timeouts) and the public Router API (`Router.signal`); the loops run on
the service's event loop and hand the signal (which may write an audit record) to a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from prometheus_client import Counter

from routeguard.core.durations import parse_duration
from routeguard.core.model import Bundle, SourceConfig

if TYPE_CHECKING:
    from routeguard.service.state import ServiceState

__all__ = ["CostQuotes", "PullSources", "SourceError"]

log = logging.getLogger("routeguard.sources")
REGISTRY_SOURCE = "registry"
_STATUSES = frozenset({"up", "degraded", "down"})
_MAX_BACKOFF = 10.0  # × interval


class SourceError(Exception):
    """A source answered nothing usable: `result` is the metric label (timeout, error, invalid)."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result


async def fetch_json(client: httpx.AsyncClient, url: str, timeout_s: float) -> Any:
    try:
        response = await client.get(url, timeout=timeout_s)
    except httpx.TimeoutException as exc:
        raise SourceError("timeout", f"no answer within {timeout_s:g}s") from exc
    except httpx.HTTPError as exc:
        raise SourceError("error", f"{type(exc).__name__}") from exc
    if response.status_code >= 300:
        raise SourceError("error", f"HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise SourceError("invalid", "the answer is not JSON") from exc


def _status(value: Any, where: str, default_ttl_s: float) -> tuple[str, float]:
    if not isinstance(value, Mapping) or value.get("status") not in _STATUSES:
        raise SourceError("invalid", f"{where}: expected {{status: up|degraded|down, ttl?}}")
    ttl = value.get("ttl")
    try:
        ttl_s = parse_duration(ttl) if ttl is not None else default_ttl_s
    except ValueError as exc:
        raise SourceError("invalid", f"{where}.ttl: {exc}") from exc
    return str(value["status"]), min(ttl_s, 86_400.0)


def parse_health(answer: Any, models: list[str], default_ttl_s: float) -> dict[str, tuple[str, float]]:
    """model -> (status, ttl_s) from a registry answer for `models` (one provider, or one model)."""
    if isinstance(answer, Mapping) and isinstance(answer.get("models"), Mapping):
        out = {}
        for model, value in answer["models"].items():
            if model in models:
                out[model] = _status(value, f"models.{model}", default_ttl_s)
        return out
    status = _status(answer, "answer", default_ttl_s)
    return dict.fromkeys(models, status)


def parse_quote(answer: Any) -> tuple[float, float]:
    if not isinstance(answer, Mapping):
        raise SourceError("invalid", "expected {input_per_1m, output_per_1m}")
    values = []
    for key in ("input_per_1m", "output_per_1m"):
        v = answer.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise SourceError("invalid", f"{key}: expected a non-negative number, got {v!r}")
        values.append(float(v))
    return values[0], values[1]


@dataclass
class _Backoff:
    failures: int = 0
    next_at: float = 0.0

    def ok(self, now: float, interval_s: float) -> None:
        self.failures, self.next_at = 0, now + interval_s

    def failed(self, now: float, interval_s: float) -> None:
        self.failures += 1
        self.next_at = now + min(interval_s * 2**self.failures, interval_s * _MAX_BACKOFF)


@dataclass(frozen=True, slots=True)
class Quote:
    input_per_1m: float
    output_per_1m: float
    fetched_at: float  # monotonic


class CostQuotes:
    """Cached quotes per model; read on the decision path (no I/O), refreshed by `PullSources`."""

    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}
        self.errors: dict[str, str] = {}

    def annotate(self, decision: dict[str, Any], bundle: Bundle, ttl_s: float, tokens: tuple[int, int]) -> None:
        model = decision.get("model")
        spec = bundle.models.get(model) if isinstance(model, str) else None
        if spec is None:
            return
        quote_ = self.quotes.get(spec.name)
        fresh = quote_ is not None and time.monotonic() - quote_.fetched_at <= ttl_s
        if quote_ is None or not fresh:
            why = self.errors.get(spec.name, "no quote yet" if quote_ is None else "quote expired")
            decision["cost_detail"] = f"cost: bundle ceiling (cost source unavailable: {why})"
            return
        unit_in = min(quote_.input_per_1m, spec.cost.input_per_1m)
        unit_out = min(quote_.output_per_1m, spec.cost.output_per_1m)
        decision["cost_estimate_usd"] = (tokens[0] * unit_in + tokens[1] * unit_out) / 1_000_000
        capped = unit_in < quote_.input_per_1m or unit_out < quote_.output_per_1m
        decision["cost_detail"] = (
            f"cost: quote {quote_.input_per_1m:g}/{quote_.output_per_1m:g} per 1M tokens"
            + (" capped at the bundle ceiling" if capped else "")
        )


class PullSources:
    """The health and cost pollers of the stable bundle's `sources`, started and stopped with the service."""

    def __init__(self, state: ServiceState, client: httpx.AsyncClient | None = None) -> None:
        self.state = state
        self.costs = CostQuotes()
        self._client = client
        self._tasks: list[asyncio.Task[None]] = []
        self._health_backoff: dict[str, _Backoff] = {}
        self._cost_backoff: dict[str, _Backoff] = {}
        self.requests = Counter(
            "agent_routing_source_requests_total",
            "Requests to pull sources (health registry, cost service) by result.",
            ["source", "result"],
            registry=state.metrics.registry,
        )

    # ---------------------------------------------------------------- configuration
    def _bundle(self) -> Bundle:
        return self.state.live.stable.bundle

    def cost_config(self) -> SourceConfig | None:
        return self._bundle().sources.cost

    def annotate(self, decision: dict[str, Any], request: Mapping[str, Any]) -> None:
        """Use the cached quote for the decision's model (never waits); a no-op without a cost source."""
        cfg = self.cost_config()
        if cfg is None:
            return
        tokens = request.get("estimated_tokens") or request.get("estimatedTokens") or {}
        counts = (int(tokens.get("input", 0) or 0), int(tokens.get("output", 0) or 0)) if isinstance(
            tokens, Mapping) else (0, 0)
        self.costs.annotate(decision, self._bundle(), cfg.ttl_s, counts)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._loop(self._health_pass, "health"), name="routeguard-source-health"),
            loop.create_task(self._loop(self._cost_pass, "cost"), name="routeguard-source-cost"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self, one_pass: Any, name: str) -> None:
        while True:
            try:
                wait_s = await one_pass()
            except Exception:
                log.exception("%s source pass failed", name)
                wait_s = 1.0
            await asyncio.sleep(wait_s)

    def _count(self, source: str, result: str) -> None:
        self.requests.labels(source=source, result=result).inc()

    # ---------------------------------------------------------------- health
    def _health_targets(self, cfg: SourceConfig) -> dict[str, list[str]]:
        by_model = "{provider}" not in cfg.url
        targets: dict[str, list[str]] = {}
        for name, model in self._bundle().models.items():
            targets.setdefault(name if by_model else model.provider, []).append(name)
        return targets

    async def _health_pass(self) -> float:
        cfg = self._bundle().sources.health
        if cfg is None:
            return 1.0
        now = time.monotonic()
        due = [(k, ms) for k, ms in self._health_targets(cfg).items()
               if self._health_backoff.setdefault(k, _Backoff()).next_at <= now]
        await asyncio.gather(*(self._poll_health(cfg, key, models) for key, models in due))
        upcoming = [b.next_at for b in self._health_backoff.values()]
        return max(0.01, min([*upcoming, now + cfg.interval_s]) - time.monotonic())

    async def _poll_health(self, cfg: SourceConfig, key: str, models: list[str]) -> None:
        assert self._client is not None
        url = cfg.url.replace("{provider}", quote(key, safe="")).replace("{model}", quote(key, safe=""))
        backoff = self._health_backoff[key]
        try:
            answer = await fetch_json(self._client, url, cfg.timeout_s)
            signals = parse_health(answer, models, 2 * cfg.interval_s)
        except SourceError as exc:
            self._count("health", exc.result)
            backoff.failed(time.monotonic(), cfg.interval_s)
            log.warning("health source for %s: %s (next try in %.1fs)", key, exc, backoff.next_at - time.monotonic())
            return
        self._count("health", "ok")
        backoff.ok(time.monotonic(), cfg.interval_s)
        await asyncio.to_thread(self._feed, signals)

    def _feed(self, signals: Mapping[str, tuple[str, float]]) -> None:
        router = self.state.router
        ledger = self.state.sink.episodes.signals
        for model, (status, ttl_s) in signals.items():
            ledger.note(model, status, REGISTRY_SOURCE, ttl_s, router.now())
            router.signal(model, status, ttl_s=ttl_s, source=REGISTRY_SOURCE)

    # ---------------------------------------------------------------- cost
    async def _cost_pass(self) -> float:
        cfg = self.cost_config()
        if cfg is None:
            return 1.0
        now = time.monotonic()
        refresh_s = max(0.05, cfg.ttl_s * 0.8)  # renew before the cached quote expires
        due = []
        for model in self._bundle().models:
            backoff = self._cost_backoff.setdefault(model, _Backoff())
            if backoff.next_at <= now:
                due.append(model)
        await asyncio.gather(*(self._quote(cfg, m, refresh_s) for m in due))
        upcoming = [b.next_at for b in self._cost_backoff.values()]
        return max(0.01, min([*upcoming, now + refresh_s]) - time.monotonic())

    async def _quote(self, cfg: SourceConfig, model: str, refresh_s: float) -> None:
        assert self._client is not None
        backoff = self._cost_backoff[model]
        try:
            answer = await fetch_json(self._client, cfg.url.replace("{model}", quote(model, safe="")), cfg.timeout_s)
            unit_in, unit_out = parse_quote(answer)
        except SourceError as exc:
            self._count("cost", exc.result)
            self.costs.errors[model] = f"{exc.result}: {exc}"
            backoff.failed(time.monotonic(), min(refresh_s, 5.0))
            return
        self._count("cost", "ok")
        self.costs.quotes[model] = Quote(unit_in, unit_out, time.monotonic())
        self.costs.errors.pop(model, None)
        backoff.ok(time.monotonic(), refresh_s)
