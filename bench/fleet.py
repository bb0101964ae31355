"""Benchmark: a fleet of `routeguard serve` replicas on one PostgreSQL database, on loopback.

Creates a fresh database on the test server (dropped afterwards), starts three replicas on it and measures:

(a) propagation: a publish (or a safe-mode switch) sent to one replica, round-robin, and the time from its
    answer until each of the two OTHER replicas serves it (`POST /v1/route` carries the new policy_version,
    or `safe_mode: true/false`), polled every `--poll-ms` (5 ms) — p50/p99 over `--rounds` (50) rounds;
    the contract's target is 1 s, the LISTEN/NOTIFY path makes it milliseconds, the 0.5 s poll is the backstop;
(b) throughput of `POST /v1/route` with 1, 2 and 3 replicas: a closed loop of `--concurrency` keep-alive
    connections spread over the replicas, from a SECOND process, for `--seconds` (bounded, loopback only).

    .venv/bin/python bench/fleet.py [--rounds 50] [--seconds 5] [--concurrency 32] [--json]
    .venv/bin/python bench/fleet.py --redis redis://127.0.0.1:6379/0 [--rate 500]   # + (c), (d): bench/fleet_redis.py
    ROUTEGUARD_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test  (the default)

Every process shares this machine's CPUs: with 2 cores, three replicas and the load generator compete for
them, so (b) shows what a small machine allows, not how a fleet on separate hosts scales.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "clinical-triage.yaml"
CONTEXT = {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted", "region": "eu-west-2"}
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_P99_S = 1.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the load generator (second process)
class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams (cheaper per request than an httpx pool)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = f"POST /v1/route HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
        self._writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        length = next(int(v.split(b":")[1]) for v in lines if v.lower().startswith(b"content-length:"))
        await self._reader.readexactly(length)
        return int(lines[0].split()[1])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def _load(ports: list[int], concurrency: int, seconds: float) -> dict[str, Any]:
    conns = [RawConnection("127.0.0.1", ports[i % len(ports)]) for i in range(concurrency)]
    body = json.dumps(CONTEXT).encode()
    for conn in conns:
        await conn.post(body)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(conn: RawConnection) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status = await conn.post(body)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for conn in conns:
        await conn.close()
    return {
        "replicas": len(ports),
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
    }


def client_main(args: argparse.Namespace) -> None:
    ports = [int(p) for p in args.ports.split(",")]
    print(json.dumps(asyncio.run(_load(ports, args.concurrency, args.seconds))))


# ---------------------------------------------------------------- the fleet
def _libpq(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


@contextmanager
def _database() -> Iterator[str]:
    import psycopg
    from sqlalchemy import make_url

    base = os.environ.get("ROUTEGUARD_TEST_POSTGRES_URL", DEFAULT_PG)
    name = f"rg_bench_fleet_{secrets.token_hex(4)}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _replica(db: str, name: str, cwd: Path, redis: str | None = None) -> Iterator[int]:
    port = _free_port()
    cmd = [sys.executable, "-c", "from routeguard.cli import main; main()", "serve", "--db", db,
           "--config", str(EXAMPLE), "--port", str(port), "--replica-id", name, "--event-log-level", "warning"]
    cmd += ["--redis", redis] if redis else []
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica {name} did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _bundle(primary: str) -> dict[str, Any]:
    from routeguard.config.load import load_raw

    raw: dict[str, Any] = json.loads(json.dumps(load_raw(EXAMPLE), default=str))
    raw["policies"]["triage-agent"]["primary"] = primary
    return raw


async def _seen(client: httpx.AsyncClient, check: Any, t0: float, poll_s: float, limit_s: float) -> float:
    while True:
        decision = (await client.post("/v1/route", json=CONTEXT)).json()
        now = time.perf_counter()
        if check(decision):
            return now - t0
        if now - t0 > limit_s:
            return float("inf")
        await asyncio.sleep(poll_s)


async def _propagation(ports: list[int], rounds: int, poll_s: float) -> dict[str, Any]:
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=10) for p in ports]
    alice, bob = {"x-routeguard-principal": "alice"}, {"x-routeguard-principal": "bob"}
    versions = []
    for primary in ("triage-v2", "triage-v3"):
        r = await clients[0].post("/v1/policies", json={"config": _bundle(primary)}, headers=alice)
        r.raise_for_status()
        version = r.json()["version"]
        (await clients[0].post(f"/v1/policies/{version}/approve", json={}, headers=bob)).raise_for_status()
        versions.append(version)
    publish: list[float] = []
    safe: list[float] = []
    for i in range(rounds):
        origin, others = clients[i % 3], [c for j, c in enumerate(clients) if j != i % 3]
        target = versions[i % 2]
        r = await origin.post(f"/v1/policies/{target}/publish", json={"scope": {"all": True}}, headers=bob)
        t0 = time.perf_counter()
        r.raise_for_status()
        publish += await asyncio.gather(
            *(_seen(c, lambda d, v=target: d["policy_version"] == v, t0, poll_s, 5.0) for c in others)
        )
        enabled = i % 2 == 0
        r = await origin.post("/v1/safe-mode", json={"enabled": enabled, "reason": f"bench {i}"}, headers=bob)
        t0 = time.perf_counter()
        r.raise_for_status()
        safe += await asyncio.gather(
            *(_seen(c, lambda d, e=enabled: d["safe_mode"] is e, t0, poll_s, 5.0) for c in others)
        )
    if rounds % 2 == 1:
        await clients[0].post("/v1/safe-mode", json={"enabled": False, "reason": "bench end"}, headers=bob)
    for c in clients:
        await c.aclose()

    def figures(values: list[float]) -> dict[str, Any]:
        return {
            "samples": len(values),
            "p50_ms": round(_percentile(values, 0.5) * 1000, 1),
            "p99_ms": round(_percentile(values, 0.99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1),
            "within_1s": sum(v <= TARGET_P99_S for v in values),
        }

    return {"publish": figures(publish), "safe_mode": figures(safe)}


def _throughput(ports: list[int], concurrency: int, seconds: float) -> list[dict[str, Any]]:
    out = []
    for n in (1, 2, 3):
        cmd = [sys.executable, __file__, "--client", "--ports", ",".join(map(str, ports[:n])),
               "--concurrency", str(concurrency), "--seconds", str(seconds)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--redis", help="also measure fleet-wide health over this Redis (bench/fleet_redis.py)")
    parser.add_argument("--rate", type=float, default=500.0, help="steady rate of the HTTP latency runs (with --redis)")
    parser.add_argument("--only-redis", action="store_true", help="skip the governance and throughput parts")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    if not args.only_redis:
        with _database() as db, tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            ports = [stack.enter_context(_replica(db, name, Path(tmp))) for name in "abc"]
            result["propagation"] = asyncio.run(_propagation(ports, args.rounds, args.poll_ms / 1000))
            result["throughput"] = _throughput(ports, args.concurrency, args.seconds)
    if args.redis:
        result.update(_with_redis(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    _print(result)


def _with_redis(args: argparse.Namespace) -> dict[str, Any]:
    """(c) on a fleet of three with `--redis`; (d) alternating runs on its replica `a` and on a lone replica
    without Redis (started side by side, so both see the same machine load), the median run of each."""
    import fleet_redis as fr

    out: dict[str, Any] = {}
    with _database() as db, _database() as plain_db, tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        ports = [stack.enter_context(_replica(db, name, Path(tmp), args.redis)) for name in "abc"]
        plain = stack.enter_context(_replica(plain_db, "plain", Path(tmp)))
        time.sleep(1.0)
        runs: dict[str, list[dict[str, Any]]] = {"without_redis": [], "with_redis": []}
        for _ in range(3):
            runs["without_redis"].append(asyncio.run(fr.paced(plain, args.rate, args.seconds)))
            runs["with_redis"].append(asyncio.run(fr.paced(ports[0], args.rate, args.seconds)))
        for key, rows in runs.items():
            out[f"http_{key}"] = sorted(rows, key=lambda r: r["p99_ms"])[len(rows) // 2]
            out[f"http_{key}"]["runs_p99_ms"] = [r["p99_ms"] for r in rows]
        out["ejection"] = asyncio.run(fr.ejection(ports, _bundle("triage-v3"), args.rounds, args.poll_ms / 1000))
    from routeguard.store.redis_bus import fleet_prefix

    fr.forget(args.redis, fleet_prefix(db))
    raw = _bundle("triage-v3")
    out["in_process"] = [fr.in_process(raw, None), fr.in_process(raw, args.redis)]
    return out


def _print(result: dict[str, Any]) -> None:
    print(f"fleet of 3 replicas on one PostgreSQL database, {result['cpus']} CPUs, loopback")
    for kind, fig in result.get("propagation", {}).items():
        print(f"  {kind:9} propagation to the other replicas: p50 {fig['p50_ms']} ms, p99 {fig['p99_ms']} ms, "
              f"max {fig['max_ms']} ms over {fig['samples']} ({fig['within_1s']} within 1 s; target p99 ≤ 1 s)")
    for row in result.get("throughput", []):
        print(f"  /v1/route with {row['replicas']} replica(s): {row['rps']} req/s, p50 {row['p50_ms']} ms, "
              f"p99 {row['p99_ms']} ms, {row['errors']} errors")
    if "ejection" in result:
        fig = result["ejection"]
        print(f"  ejection propagation over Redis (outcomes on one replica -> the other two route around it): "
              f"p50 {fig['p50_ms']} ms, p99 {fig['p99_ms']} ms, max {fig['max_ms']} ms over {fig['samples']} "
              f"({fig['within_1s']} within 1 s; target p99 ≤ 1 s)")
        print(f"  probes reaching the recovering model per probing period (budget {fig['probe_budget']}, bursts on "
              f"all replicas): max {fig['probes_max']} over {fig['probing_periods']} periods "
              f"{fig['probes_per_period']}")
        for key in ("http_without_redis", "http_with_redis"):
            row = result[key]
            print(f"  POST /v1/route at {row['rate']:g}/s, one replica, {key[5:].replace('_', ' ')}: "
                  f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, {row['errors']} errors "
                  f"(median of runs with p99 {row['runs_p99_ms']} ms)")
        for row in result["in_process"]:
            print(f"  Router.decide in process, {'with a Redis link' if row['redis'] else 'no Redis'}: "
                  f"p50 {row['p50_us']} µs, p99 {row['p99_us']} µs over {row['decisions']}")


if __name__ == "__main__":
    main()
