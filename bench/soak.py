"""Soak: mixed `/v1/route` + `/v1/outcomes` traffic against `routeguard serve` for a bounded time, with
request rate, errors and the server's RSS growth after warm-up; and the YAML alias bomb's refusal time
and extra memory, in process and over HTTP (issue 13).

Starts `routeguard serve` on a fresh SQLite store with examples/clinical-triage.yaml and drives it from
this process with keep-alive HTTP/1.1 connections on asyncio streams (the cheapest client Python has).
Client and server share the machine's CPUs, so the rate is a floor for the server. The proxy is not part
of the mix (it needs upstream model servers; bench/proxy.py measures it).

    .venv/bin/python bench/soak.py [--seconds 20] [--warmup 3] [--concurrency 16] [--outcomes 0.2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "clinical-triage.yaml"
ROUTE = json.dumps(
    {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted", "region": "eu-west-2"}
).encode()
OUTCOME = json.dumps({"model": "triage-v3", "ok": True, "latency_ms": 120, "tokens": {"input": 10, "output": 5}})


def lol_bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join([*lines, "models: {}"]) + "\n"


def bomb_in_process() -> dict[str, Any]:
    """Refusal time and the peak of extra Python memory while refusing (tracemalloc)."""
    from routeguard.config.load import parse_text
    from routeguard.core.findings import BundleError

    text = lol_bomb()
    parse_text("a: 1\n")  # imports and caches out of the measurement
    tracemalloc.start()
    began = time.perf_counter()
    try:
        parse_text(text)
        refused = False
    except BundleError:
        refused = True
    elapsed = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"bytes": len(text), "refused": refused, "ms": elapsed * 1000, "peak_extra_kib": peak / 1024}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        self.writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        length = next(int(v.split(b":")[1]) for v in lines if v.lower().startswith(b"content-length:"))
        await self.reader.readexactly(length)
        return int(lines[0].split()[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _drive(port: int, seconds: float, concurrency: int, outcome_share: float, seed: int) -> dict[str, Any]:
    conns = [Conn(port) for _ in range(concurrency)]
    counts = {"route": 0, "outcomes": 0, "errors": 0}
    deadline = time.perf_counter() + seconds

    async def worker(conn: Conn, rng: random.Random) -> None:
        while time.perf_counter() < deadline:
            if rng.random() < outcome_share:
                status = await conn.post("/v1/outcomes", OUTCOME.encode())
                counts["outcomes"] += 1
                counts["errors"] += status != 202
            else:
                status = await conn.post("/v1/route", ROUTE)
                counts["route"] += 1
                counts["errors"] += status != 200

    began = time.perf_counter()
    await asyncio.gather(*(worker(c, random.Random(seed + i)) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.close()
    total = counts["route"] + counts["outcomes"]
    return {**counts, "requests": total, "seconds": elapsed, "rps": total / elapsed}


def _bomb_over_http(url: str) -> dict[str, Any]:
    body = {"config": lol_bomb(), "dry_run": True}
    with httpx.Client(base_url=url, timeout=30) as client:
        began = time.perf_counter()
        r = client.post("/v1/policies", json=body)
        elapsed = time.perf_counter() - began
    return {"status": r.status_code, "code": r.json().get("error", {}).get("code"), "ms": elapsed * 1000}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="routeguard-soak-"))
    command = [sys.executable, "-c", "from routeguard.cli import main; main()", "serve", "--config", str(EXAMPLE),
               "--db", f"sqlite:///{workdir / 'store.db'}", "--port", str(port), "--event-log-level", "warning"]
    proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc)
        asyncio.run(_drive(port, args.warmup, args.concurrency, args.outcomes, 1))
        rss_before = _rss_kib(proc.pid)
        bomb_before = _bomb_over_http(url)
        load = asyncio.run(_drive(port, args.seconds, args.concurrency, args.outcomes, 2))
        rss_after = _rss_kib(proc.pid)
        bomb_http = _bomb_over_http(url)
        rss_after_bomb = _rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "load": load,
        "rss_kib": {"after_warmup": rss_before, "after_load": rss_after,
                    "growth_pct": 100.0 * (rss_after - rss_before) / max(rss_before, 1)},
        "bomb_over_http": {**bomb_http, "first_ms": bomb_before["ms"],
                           "rss_growth_kib": rss_after_bomb - rss_after},
    }


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"routeguard serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("routeguard serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration after warm-up")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--outcomes", type=float, default=0.2, help="share of requests that report outcomes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = {"bomb_in_process": bomb_in_process(), **soak(args), "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    load, rss, bomb = out["load"], out["rss_kib"], out["bomb_in_process"]
    print(f"soak: {load['requests']} requests in {load['seconds']:.1f}s = {load['rps']:.0f} req/s "
          f"({load['route']} route, {load['outcomes']} outcomes), errors {load['errors']}")
    print(f"server RSS after warm-up {rss['after_warmup'] / 1024:.1f} MiB -> {rss['after_load'] / 1024:.1f} MiB "
          f"({rss['growth_pct']:+.1f} %)")
    print(f"YAML bomb ({bomb['bytes']} bytes): refused={bomb['refused']} in {bomb['ms']:.2f} ms, "
          f"peak extra memory {bomb['peak_extra_kib']:.0f} KiB (in process)")
    http = out["bomb_over_http"]
    print(f"YAML bomb over HTTP (dry run): {http['status']} {http['code']} in {http['ms']:.1f} ms "
          f"(first {http['first_ms']:.1f} ms), server RSS {http['rss_growth_kib']:+d} KiB")


if __name__ == "__main__":
    main()
