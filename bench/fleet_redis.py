"""The `--redis` part of `bench/fleet.py` (fleet-wide health); run through it:

    .venv/bin/python bench/fleet.py --redis redis://127.0.0.1:6379/0 [--rounds 50] [--rate 500] [--seconds 3]

(c) ejection propagation: `consecutive_failures` failed outcomes sent to one replica (round-robin), and the time
    from the answer to `POST /v1/outcomes` until each OTHER replica routes to the fallback (polled every
    `--poll-ms`); between rounds the model recovers (cooldown 100 ms, one probe). p50/p99 — target p99 ≤ 1 s;
(d) decision latency with and without `--redis`: in process (`Router.decide`, with a running Redis link attached
    or not) and over HTTP (`POST /v1/route` at a steady `--rate` per second, open loop, one replica).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from collections import Counter
from typing import Any

import httpx

FAST_HEALTH = {"window": "60s", "min_samples": 1000, "consecutive_failures": 3, "cooldown": "100ms",
               "cooldown_max": "200ms", "probes": 2, "probes_in_flight": 2, "error_rate": 0.99}
PRIMARY, FALLBACK = "triage-v3", "triage-v2"


def figures(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2) if ordered else float("nan")

    return {"samples": len(values), "p50_ms": q(0.5), "p99_ms": q(0.99),
            "max_ms": round(max(values) * 1000, 2) if values else None,
            "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else None,
            "within_1s": sum(v <= 1.0 for v in values)}


async def _publish_fast_health(client: httpx.AsyncClient, raw: dict[str, Any]) -> None:
    alice, bob = {"x-routeguard-principal": "alice"}, {"x-routeguard-principal": "bob"}
    raw["policies"]["triage-agent"]["health"] = FAST_HEALTH
    raw["policies"]["triage-agent"]["primary"] = PRIMARY
    r = await client.post("/v1/policies", json={"config": raw}, headers=alice)
    r.raise_for_status()
    version = r.json()["version"]
    (await client.post(f"/v1/policies/{version}/approve", json={}, headers=bob)).raise_for_status()
    r = await client.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}}, headers=bob)
    r.raise_for_status()


async def _model(client: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await client.post("/v1/route", json=CONTEXT)).json())


async def _until(client: httpx.AsyncClient, model: str, t0: float, poll_s: float, limit_s: float = 5.0) -> float:
    while True:
        decision = await _model(client)
        now = time.perf_counter()
        if decision["model"] == model:
            return now - t0
        if now - t0 > limit_s:
            return float("inf")
        await asyncio.sleep(poll_s)


async def _recovered(clients: list[httpx.AsyncClient], limit_s: float = 10.0) -> int:
    """Bursts on every replica at once (successes reported where decided) until each serves the primary
    again; returns how many requests reached it as probes (the fleet's budget is `probes`)."""
    deadline = time.monotonic() + limit_s
    back: set[int] = set()
    probes = 0
    while len(back) < len(clients) and time.monotonic() < deadline:
        burst = [(i, c) for i, c in enumerate(clients) for _ in range(2)]
        decisions = await asyncio.gather(*(_model(c) for _, c in burst))
        for (i, client), d in zip(burst, decisions, strict=True):
            if d["model"] == PRIMARY and not d.get("probe"):
                back.add(i)
            elif d["model"] == PRIMARY:
                probes += 1
                await client.post("/v1/outcomes", json={"trace_id": d["trace_id"], "model": PRIMARY, "ok": True})
        await asyncio.sleep(0.02)
    return probes


async def ejection(ports: list[int], raw: dict[str, Any], rounds: int, poll_s: float) -> dict[str, Any]:
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=10) for p in ports]
    await _publish_fast_health(clients[0], raw)
    await asyncio.sleep(1.5)  # every replica serves the new version (its health settings)
    fails = [{"model": PRIMARY, "ok": False, "error": "server_error"}] * 3
    seen: list[float] = []
    probes: list[int] = []
    for i in range(rounds):
        probes.append(await _recovered(clients))
        origin = clients[i % len(clients)]
        others = [c for c in clients if c is not origin]
        (await origin.post("/v1/outcomes", json=fails)).raise_for_status()
        t0 = time.perf_counter()
        seen += await asyncio.gather(*(_until(c, FALLBACK, t0, poll_s) for c in others))
    probes.append(await _recovered(clients))
    for c in clients:
        await c.aclose()
    periods = probes[1:]  # the first call only waits for the new version to serve
    return {**figures(seen), "probe_budget": FAST_HEALTH["probes"], "probing_periods": len(periods),
            "probes_max": max(periods), "probes_per_period": dict(sorted(Counter(periods).items()))}


async def paced(port: int, rate: float, seconds: float, connections: int = 16) -> dict[str, Any]:
    """`POST /v1/route` at a steady rate (open loop) on one replica: latency of each answer."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10) as client:
        for _ in range(50):
            await client.post("/v1/route", json=CONTEXT)
        latencies: list[float] = []
        errors = 0

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            r = await client.post("/v1/route", json=CONTEXT)
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

        start, tasks = time.perf_counter(), []
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return {"rate": rate, "errors": errors, **figures(latencies)}


def in_process(raw: dict[str, Any], redis_url: str | None, n: int = 20_000) -> dict[str, Any]:
    """`Router.decide` p50/p99 (µs), with a running Redis link attached when `redis_url` is given."""
    from routeguard.runtime import Router
    from routeguard.service.fleet_health import FleetHealth
    from routeguard.store.redis_bus import RedisBus

    router = Router.from_bundle(raw)
    link = None
    if redis_url:
        link = FleetHealth(RedisBus(redis_url, f"routeguard:{{bench-{secrets.token_hex(4)}}}:"), "bench",
                           lambda: router)
        router.attach_fleet(link)
        link.start()
        time.sleep(0.3)
    out: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        router.decide(CONTEXT)
        out.append(time.perf_counter() - t0)
        if i % 50 == 0:
            router.report({"model": PRIMARY, "ok": True, "latency_ms": 20})  # something for the link to push
    if link is not None:
        link.stop()
        forget(str(redis_url), link.bus.prefix)
    ordered = sorted(out)
    return {"redis": bool(redis_url), "decisions": n, "p50_us": round(ordered[n // 2] * 1e6, 1),
            "p99_us": round(ordered[int(n * 0.99)] * 1e6, 1)}


def forget(redis_url: str, prefix: str) -> None:
    """Delete the keys a bench run left under its prefix."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


CONTEXT = {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted", "region": "eu-west-2"}


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
