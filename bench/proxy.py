"""Benchmark: what the OpenAI-compatible proxy adds, and how fast a routing change reaches a webhook.

Three processes on loopback: a fake OpenAI upstream (tests/support/upstream.py under uvicorn), `routeguard
serve` with a two-model bundle on it, and this one, which sends requests one at a time on keep-alive
connections (a raw HTTP/1.1 client on asyncio streams, so the client adds as little as possible) and
alternates between the upstream directly and the proxy. Measured:

(a) plain completions: latency p50/p99, direct and through the proxy; the difference is the overhead;
(b) streams: time to the first content token and to `[DONE]`, direct and through the proxy;
(c) routing change → webhook: an external health signal (`PUT /v1/health/alpha`) flips the serving model;
    the time from sending the signal to the receiver getting the notification (both ways, N rounds);
(d) an Anthropic-typed route: the fake Messages API (tests/support/anthropic_upstream.py) called directly
    (`POST /v1/messages`) and through the proxy as OpenAI chat (`endpoint.type: anthropic`, translated both
    ways): plain and streamed (first token), the difference is the overhead;
(e) a litellm-typed route (`endpoint.type: litellm`, `openai/…` onto the OpenAI fake), beside the direct call,
    when litellm is installed (`pip install -e '.[litellm]'`).

    .venv/bin/python bench/proxy.py [--quick] [--json] [--requests 2000] [--streams 500] [--rounds 10]

Client, proxy and upstream share this machine's CPUs; the overhead figure is a difference of medians of
interleaved requests, so it is the proxy's own cost plus its share of CPU contention.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD_P50_MS = 1.0
TARGET_DELIVERY_S = 5.0
MESSAGES = [{"role": "user", "content": "Summarise the ward round in one line."}]
CONTENT = re.compile(rb'"content": ?"[^"]')  # a non-empty content delta (with or without a space)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---------------------------------------------------------------- a minimal HTTP/1.1 client
class Conn:
    """One keep-alive connection; reads content-length and chunked bodies; `on_data` sees each piece."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, first_token: list[float] | None = None,
                   headers: str = "", token: re.Pattern[bytes] = CONTENT) -> tuple[int, bytes]:
        reused = self.writer is not None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n{headers}"
        self.writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        try:
            lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            self.writer = None  # the server closed the idle connection: send once more on a new one
            return await self.post(path, body, first_token, headers, token)
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:] if ln)}
        if b"content-length" in fields:
            return status, await self.reader.readexactly(int(fields[b"content-length"]))
        out = bytearray()
        while True:  # chunked
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(out)
            if first_token is not None and not first_token and token.search(data):
                first_token.append(time.perf_counter())
            out += data[:-2]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


ANTHROPIC_TEXT = re.compile(rb'"text": ?"[^"]')
ANTHROPIC_HEADERS = "anthropic-version: 2023-06-01\r\n"


async def _latencies(up: int, proxy: int, n: int, stream: bool, route: str = "openai") -> dict[str, list[float]]:
    """Interleaved direct and proxied calls. `route`: openai (alpha), anthropic (claude), litellm."""
    direct_conn, proxy_conn = Conn(up), Conn(proxy)
    out: dict[str, list[float]] = {"direct": [], "proxy": [], "direct_ttft": [], "proxy_ttft": []}
    body = {"messages": MESSAGES, "stream": stream}
    agent = {"openai": "assistant", "anthropic": "claude-agent", "litellm": "litellm-agent"}[route]
    proxy_body = json.dumps({**body, "model": agent}).encode()
    direct_path, headers, token, end = "/v1/chat/completions", "", CONTENT, b"data: [DONE]"
    if route == "anthropic":
        direct_path, headers, token, end = "/v1/messages", ANTHROPIC_HEADERS, ANTHROPIC_TEXT, b'"message_stop"}'
        direct_body = json.dumps({**body, "model": "claude-up", "max_tokens": 256}).encode()
    else:
        direct_body = json.dumps({**body, "model": "alpha-up" if route == "openai" else "litellm-up"}).encode()
    warm = Conn(proxy)  # the first call of a route builds its provider (litellm: imports it, seconds)
    await warm.post("/v1/chat/completions", proxy_body)
    await warm.close()
    calls = (("direct", direct_conn, direct_path, direct_body, headers, token, end),
             ("proxy", proxy_conn, "/v1/chat/completions", proxy_body, "", CONTENT, b"data: [DONE]"))
    for i in range(n + 20):  # 20 warm-up rounds
        for name, conn, path, payload, extra, pattern, done in calls:
            first: list[float] = []
            t0 = time.perf_counter()
            status, data = await conn.post(path, payload, first if stream else None, extra, pattern)
            t1 = time.perf_counter()
            if status != 200 or (stream and not data.rstrip().endswith(done)):
                raise SystemExit(f"{route} {name}: HTTP {status}: {data[:200]!r}")
            if i >= 20:
                out[name].append(t1 - t0)
                if stream:
                    out[f"{name}_ttft"].append((first[0] if first else t1) - t0)
    await direct_conn.close()
    await proxy_conn.close()
    return out


def _summary(samples: dict[str, list[float]], stream: bool) -> dict[str, Any]:
    keys = ["", "_ttft"] if stream else [""]
    out: dict[str, Any] = {"requests": len(samples["direct"])}
    for suffix in keys:
        d, p = samples["direct" + suffix], samples["proxy" + suffix]
        label = "ttft" if suffix else "total"
        out[label] = {
            "direct_p50_ms": _percentile(d, 0.5) * 1e3, "direct_p99_ms": _percentile(d, 0.99) * 1e3,
            "proxy_p50_ms": _percentile(p, 0.5) * 1e3, "proxy_p99_ms": _percentile(p, 0.99) * 1e3,
            "added_p50_ms": (_percentile(p, 0.5) - _percentile(d, 0.5)) * 1e3,
            "added_p99_ms": (_percentile(p, 0.99) - _percentile(d, 0.99)) * 1e3,
        }
    return out


# ---------------------------------------------------------------- processes
def _bundle(upstream_url: str, hook_url: str, anthropic_url: str) -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    model = {"provider": "bench", "capabilities": ["text"], "clearance": "restricted", "trusted": True}
    models = {m: {**model, "endpoint": {"type": "openai", "base_url": upstream_url, "model": f"{m}-up"}}
              for m in ("alpha", "beta")}
    models["claude"] = {**model, "endpoint": {"type": "anthropic", "base_url": anthropic_url, "model": "claude-up"}}
    models["via-litellm"] = {**model, "endpoint": {"type": "litellm", "base_url": upstream_url,
                                                   "model": "openai/litellm-up", "api_key_env": "BENCH_KEY"}}
    return {
        "models": models,
        "profiles": {"assist": {"requires": ["text"], "data_class": "internal"}},
        "approvals": [{"model": m, "profile": "assist", "by": "bench", "evidence": "bench", "expires": expires}
                      for m in models],
        "notifiers": {"hook": {"type": "webhook", "url": hook_url}},
        "policies": {"assistant": {"profile": "assist", "primary": "alpha", "fallbacks": ["beta"],
                                   "notify": ["hook"], "health": {"min_dwell": "0s", "probes": 1, "cooldown": "0s"}},
                     "claude-agent": {"profile": "assist", "primary": "claude"},
                     "litellm-agent": {"profile": "assist", "primary": "via-litellm"}},
    }


def _wait_ready(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
            try:
                if client.request("GET", url + path).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
    raise SystemExit(f"{url} did not become ready")


def _start_upstream(app: str = "upstream:UpstreamApp") -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    module, name = app.split(":")
    code = (f"import sys, uvicorn; sys.path.insert(0, 'tests'); from support.{module} import {name}; "
            f"uvicorn.run({name}(), host='127.0.0.1', port={port}, log_level='critical', access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_ready(f"http://127.0.0.1:{port}", proc, "/v1/models")
    return proc, port


def _start_proxy(
    tmp: Path, upstream_port: int, hook_url: str, anthropic_port: int
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    config = tmp / "bundle.yaml"
    bundle = _bundle(f"http://127.0.0.1:{upstream_port}/v1", hook_url, f"http://127.0.0.1:{anthropic_port}")
    config.write_text(yaml.safe_dump(bundle))
    cmd = [sys.executable, "-c", "from routeguard.cli import main; main()", "serve", "--config", str(config),
           "--db", f"sqlite:///{tmp / 'bench.db'}", "--port", str(port), "--event-log-level", "warning"]
    env = {**os.environ, "BENCH_KEY": "sk-bench"}
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _wait_ready(f"http://127.0.0.1:{port}", proc, "/readyz")
    return proc, port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class Hook:
    """A webhook receiver that notes when each audit seq arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                hook.arrived.setdefault(int(body.get("audit_seq", -1)), time.perf_counter())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def _wait_new(hook: Hook, known: set[int], what: str, poke: Any = None) -> float:
    deadline = time.monotonic() + 30
    while set(hook.arrived) == known:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: no notification within 30 s")
        if poke is not None:
            poke()
        time.sleep(0.001)
    return min(hook.arrived[s] for s in set(hook.arrived) - known)


def _delivery(proxy_port: int, hook: Hook, rounds: int) -> dict[str, Any]:
    """Per round: signal alpha down (timed: alpha → beta reaches the hook), then up, and send requests until
    a probe brings the route back (alpha recovers through probes, so the way back needs traffic)."""
    url = f"http://127.0.0.1:{proxy_port}"
    times: list[float] = []
    request = {"model": "assistant", "messages": MESSAGES}
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(rounds):
            known = set(hook.arrived)
            t0 = time.perf_counter()
            http.put("/v1/health/alpha", json={"status": "down", "ttl": "10m", "source": "bench"}).raise_for_status()
            times.append(_wait_new(hook, known, f"round {i}: down") - t0)
            known = set(hook.arrived)
            http.put("/v1/health/alpha", json={"status": "up", "ttl": "10m", "source": "bench"}).raise_for_status()
            _wait_new(hook, known, f"round {i}: back", lambda: http.post("/v1/chat/completions", json=request))
    return {"changes": len(times), "p50_s": statistics.median(times), "max_s": max(times)}


def _table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    plain, streams, delivery = results["plain"], results["stream"], results["delivery"]
    table = Table(title=f"routeguard proxy overhead and notification delivery ({os.cpu_count()} CPUs)")
    for col in ("measure", "direct p50 / p99", "proxy p50 / p99", "added p50 / p99", "target", "verdict"):
        table.add_column(col)

    def row(name: str, f: dict[str, float], target: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("[green]pass[/]" if ok else "[red]fail[/]")
        table.add_row(name, f"{f['direct_p50_ms']:.2f} / {f['direct_p99_ms']:.2f} ms",
                      f"{f['proxy_p50_ms']:.2f} / {f['proxy_p99_ms']:.2f} ms",
                      f"{f['added_p50_ms']:.2f} / {f['added_p99_ms']:.2f} ms", target, verdict)

    row(f"plain completion (n={plain['requests']})", plain["total"], f"≤ {TARGET_OVERHEAD_P50_MS:g} ms p50",
        plain["total"]["added_p50_ms"] <= TARGET_OVERHEAD_P50_MS)
    row(f"stream: first token (n={streams['requests']})", streams["ttft"], f"≤ {TARGET_OVERHEAD_P50_MS:g} ms p50",
        streams["ttft"]["added_p50_ms"] <= TARGET_OVERHEAD_P50_MS)
    row("stream: to [DONE]", streams["total"], "", None)
    target = f"≤ {TARGET_OVERHEAD_P50_MS:g} ms p50"
    a_plain, a_stream = results["anthropic_plain"], results["anthropic_stream"]
    row(f"anthropic-typed, plain (n={a_plain['requests']})", a_plain["total"], target,
        a_plain["total"]["added_p50_ms"] <= TARGET_OVERHEAD_P50_MS)
    row(f"anthropic-typed, stream: first token (n={a_stream['requests']})", a_stream["ttft"], target,
        a_stream["ttft"]["added_p50_ms"] <= TARGET_OVERHEAD_P50_MS)
    if "litellm_plain" in results:
        lite = results["litellm_plain"]
        row(f"litellm-typed, plain (n={lite['requests']})", lite["total"], "reported", None)
    ok = delivery["max_s"] <= TARGET_DELIVERY_S
    table.add_row(f"routing change → webhook (n={delivery['changes']})", "", "",
                  f"{delivery['p50_s'] * 1e3:.0f} ms p50, {delivery['max_s'] * 1e3:.0f} ms max",
                  f"≤ {TARGET_DELIVERY_S:g} s", "[green]pass[/]" if ok else "[red]fail[/]")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (CI smoke)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--requests", type=int, default=2000, help="plain completions per path")
    parser.add_argument("--streams", type=int, default=500, help="streams per path")
    parser.add_argument("--rounds", type=int, default=10, help="down/up signal pairs for the delivery figure")
    args = parser.parse_args()
    n_plain, n_stream, rounds = (300, 100, 3) if args.quick else (args.requests, args.streams, args.rounds)
    hook = Hook()
    upstream, up_port = _start_upstream()
    claude, claude_port = _start_upstream("anthropic_upstream:AnthropicApp")
    try:
        with tempfile.TemporaryDirectory(prefix="rg-bench-proxy-") as tmp:
            proxy, proxy_port = _start_proxy(Path(tmp), up_port, hook.url, claude_port)
            try:
                results: dict[str, Any] = {
                    "plain": _summary(asyncio.run(_latencies(up_port, proxy_port, n_plain, False)), False),
                    "stream": _summary(asyncio.run(_latencies(up_port, proxy_port, n_stream, True)), True),
                    "anthropic_plain": _summary(asyncio.run(
                        _latencies(claude_port, proxy_port, n_plain, False, "anthropic")), False),
                    "anthropic_stream": _summary(asyncio.run(
                        _latencies(claude_port, proxy_port, n_stream, True, "anthropic")), True),
                }
                if importlib.util.find_spec("litellm") is not None:
                    results["litellm_plain"] = _summary(asyncio.run(
                        _latencies(up_port, proxy_port, max(100, n_plain // 4), False, "litellm")), False)
                results["delivery"] = _delivery(proxy_port, hook, rounds)
            finally:
                _stop(proxy)
    finally:
        _stop(upstream)
        _stop(claude)
        hook.server.shutdown()
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        _table(results)


if __name__ == "__main__":
    main()
