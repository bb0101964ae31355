"""Benchmark: `POST /v1/route` over real HTTP on loopback, and how fast a publish takes effect.

Starts `routeguard serve` (a fresh SQLite store, examples/clinical-triage.yaml, no access log) and drives
it from a SECOND process: an asyncio client with keep-alive connections (localhost only, bounded by a
request count and a time limit). The default client writes HTTP/1.1 on asyncio streams; `--client httpx`
uses httpx's AsyncClient instead, whose pool costs more CPU per request than the server does (on a
2-CPU machine it caps the figures at a few hundred requests/s). Measured:

(a) throughput at the maximum rate: closed loop, `--concurrency` workers;
(b) latency p50/p99 at a fixed 500 requests/s: open loop, each request sent on its schedule;
(c) publish → effect: the time from a publish's response to the first decision that carries the new
    version (a publish is in effect before it answers, so this is one request's round trip), and the
    publish call itself.

    .venv/bin/python bench/http.py [--quick] [--json] [--concurrency 32] [--seconds 5] [--client raw|httpx]

Client and server share this machine's CPUs: on a small or busy machine the client is a large part of
what is measured, so the throughput figure is a floor for the server.
"""

from __future__ import annotations

import sys

# run as `python bench/http.py`, this file's directory comes first on sys.path and its name would
# shadow the standard library's `http` package (which httpx imports): drop that entry first
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "clinical-triage.yaml"
CONTEXT = {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted", "region": "eu-west-2"}
TARGET_RPS = 3_000
TARGET_P99_MS_AT_500 = 5.0
FIXED_RATE = 500


# ---------------------------------------------------------------- the load generator (second process)
def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _body(tenant: str) -> bytes:
    return json.dumps({**CONTEXT, "tenant": tenant}).encode()


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the cheapest client Python has, so that
    the figures are the server's (httpx's async pool costs more CPU per request than the server)."""

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


class HttpxConnection:
    """The same through httpx's AsyncClient (`--client httpx`)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, body: bytes) -> int:
        r = await self.client.post("/v1/route", content=body, headers={"content-type": "application/json"})
        return r.status_code

    async def close(self) -> None:
        return None


async def _connections(url: str, kind: str, n: int) -> tuple[list[Any], httpx.AsyncClient | None]:
    if kind == "httpx":
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        client = httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0)
        return [HttpxConnection(client) for _ in range(n)], client
    parsed = httpx.URL(url)
    return [RawConnection(parsed.host, parsed.port or 80) for _ in range(n)], None


async def _max_rate(url: str, kind: str, concurrency: int, seconds: float, count: int) -> dict[str, Any]:
    """Closed loop: `concurrency` workers, each sending its next request when the last one answered."""
    conns, client = await _connections(url, kind, concurrency)
    latencies: list[float] = []
    errors = sent = 0
    for conn in conns:  # warm up every connection
        await conn.post(_body("warm-up"))
    deadline = time.perf_counter() + seconds

    async def worker(i: int, conn: Any) -> None:
        nonlocal errors, sent
        while time.perf_counter() < deadline and sent < count:
            sent += 1
            body = _body(f"tenant-{i}-{sent % 50}")
            t0 = time.perf_counter()
            status = await conn.post(body)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200

    start = time.perf_counter()
    await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - start
    for conn in conns:
        await conn.close()
    if client is not None:
        await client.aclose()
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


async def _fixed_rate(url: str, kind: str, rps: int, seconds: float) -> dict[str, Any]:
    """Open loop: request i is due at start + i/rps whatever happened to the others; a free connection
    from a pool of 64 carries it."""
    total = int(rps * seconds)
    conns, client = await _connections(url, kind, 64)
    pool: asyncio.Queue[Any] = asyncio.Queue()
    for conn in conns:
        await conn.post(_body("warm-up"))
        pool.put_nowait(conn)
    from_send: list[float] = []
    from_schedule: list[float] = []
    errors = 0

    async def one(i: int, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        t0 = time.perf_counter()
        status = await conn.post(_body(f"tenant-{i % 200}"))
        t1 = time.perf_counter()
        pool.put_nowait(conn)
        from_send.append(t1 - t0)
        from_schedule.append(t1 - due)
        errors += status != 200

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rps
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.wait(tasks, timeout=30)
    elapsed = time.perf_counter() - start
    for conn in conns:
        await conn.close()
    if client is not None:
        await client.aclose()
    return {
        "requests": len(from_send),
        "errors": errors + sum(1 for t in tasks if not t.done()),
        "achieved_rps": len(from_send) / elapsed,
        "p50_ms": _percentile(from_send, 0.50) * 1000,
        "p99_ms": _percentile(from_send, 0.99) * 1000,
        "p99_from_schedule_ms": _percentile(from_schedule, 0.99) * 1000,
    }


def client_main(args: argparse.Namespace) -> None:
    if args.mode == "max":
        out = asyncio.run(_max_rate(args.url, args.client, args.concurrency, args.seconds, args.count))
    else:
        out = asyncio.run(_fixed_rate(args.url, args.client, args.rps, args.seconds))
    sys.stdout.write(json.dumps(out) + "\n")


# ---------------------------------------------------------------- the orchestrator
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-c",
        "from routeguard.cli import main; main()",
        "serve",
        "--config",
        str(EXAMPLE),
        "--db",
        f"sqlite:///{tmp / 'bench.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"routeguard serve exited with {proc.returncode}")
            try:
                if client.get(url + "/readyz").status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                time.sleep(0.05)
    proc.kill()
    raise SystemExit("routeguard serve did not become ready")


def _run_client(url: str, *extra: str, timeout_s: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "client", "--url", url, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _publish_effect(url: str, rounds: int) -> dict[str, Any]:
    """Upload and approve versions, then per round: publish, and route until the new version shows."""
    text = EXAMPLE.read_text(encoding="utf-8")
    author = httpx.Client(base_url=url, headers={"x-routeguard-principal": "bench-author"}, timeout=30)
    approver = httpx.Client(base_url=url, headers={"x-routeguard-principal": "bench-approver"}, timeout=30)
    effect: list[float] = []
    publish: list[float] = []
    requests_needed: list[int] = []
    for i in range(rounds):
        version = author.post("/v1/policies", json={"config": text, "label": f"bench {i}"}).json()["version"]
        approver.post(f"/v1/policies/{version}/approve", json={})
        t0 = time.perf_counter()
        r = approver.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}})
        t1 = time.perf_counter()
        r.raise_for_status()
        n = 0
        while True:
            n += 1
            decision = author.post("/v1/route", json=CONTEXT).json()
            if decision["policy_version"] == version:
                break
        effect.append(time.perf_counter() - t1)
        publish.append(t1 - t0)
        requests_needed.append(n)
    author.close()
    approver.close()
    return {
        "rounds": rounds,
        "effect_ms_median": statistics.median(effect) * 1000,
        "effect_ms_max": max(effect) * 1000,
        "publish_ms_median": statistics.median(publish) * 1000,
        "requests_until_new_version_max": max(requests_needed),
    }


def _table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    mx, fixed, pub = results["max_rate"], results["fixed_rate"], results["publish"]
    cpus = os.cpu_count()
    table = Table(title=f"routeguard /v1/route over loopback HTTP ({cpus} CPUs, {results['client']} client)")
    for col in ("measure", "value", "target", "verdict"):
        table.add_column(col)

    def row(name: str, value: str, target: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("[green]pass[/]" if ok else "[red]fail[/]")
        table.add_row(name, value, target, verdict)

    row(
        f"max rate (c={results['concurrency']})",
        f"{mx['rps']:,.0f} decisions/s",
        f"≥ {TARGET_RPS:,}/s",
        mx["rps"] >= TARGET_RPS,
    )
    row("  latency p50 / p99 at max rate", f"{mx['p50_ms']:.2f} / {mx['p99_ms']:.2f} ms", "", None)
    row("  errors", f"{mx['errors']} of {mx['requests']:,}", "0", mx["errors"] == 0)
    row(f"at {FIXED_RATE} rps: p50", f"{fixed['p50_ms']:.2f} ms", "", None)
    row(
        f"at {FIXED_RATE} rps: p99",
        f"{fixed['p99_ms']:.2f} ms (from schedule {fixed['p99_from_schedule_ms']:.2f})",
        f"≤ {TARGET_P99_MS_AT_500:g} ms",
        fixed["p99_ms"] <= TARGET_P99_MS_AT_500,
    )
    row("  achieved rate / errors", f"{fixed['achieved_rps']:.0f}/s, {fixed['errors']} errors", "", None)
    row(
        "publish → next decision sees it",
        f"{pub['effect_ms_median']:.2f} ms (max {pub['effect_ms_max']:.2f})",
        "1 request",
        pub["requests_until_new_version_max"] == 1,
    )
    row("publish call", f"{pub['publish_ms_median']:.1f} ms median", "", None)
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    client = sub.add_parser("client", help="(internal) the load generator")
    client.add_argument("--url", required=True)
    client.add_argument("--mode", choices=["max", "rate"], default="max")
    client.add_argument("--concurrency", type=int, default=32)
    client.add_argument("--seconds", type=float, default=5.0)
    client.add_argument("--count", type=int, default=200_000)
    client.add_argument("--rps", type=int, default=FIXED_RATE)
    client.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--quick", action="store_true", help="short runs (CI smoke)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--client", choices=["raw", "httpx"], default="raw", help="load generator: asyncio streams or httpx"
    )
    args = parser.parse_args()
    if args.command == "client":
        client_main(args)
        return
    seconds = 1.5 if args.quick else args.seconds
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
        proc, url = _start_server(Path(tmp))
        try:
            results: dict[str, Any] = {
                "concurrency": args.concurrency,
                "seconds": seconds,
                "client": args.client,
            }
            results["max_rate"] = _run_client(
                url,
                "--mode",
                "max",
                "--concurrency",
                str(args.concurrency),
                "--seconds",
                str(seconds),
                timeout_s=seconds + 60,
            )
            results["fixed_rate"] = _run_client(
                url,
                "--mode",
                "rate",
                "--rps",
                str(FIXED_RATE),
                "--seconds",
                str(seconds),
                timeout_s=seconds + 60,
            )
            results["publish"] = _publish_effect(url, 3 if args.quick else 10)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        _table(results)


if __name__ == "__main__":
    main()
