"""Run the routeguard service for a test over real HTTP on 127.0.0.1: in a thread (uvicorn.Server) or as a
`routeguard serve` subprocess. Both wait until /healthz answers."""

from __future__ import annotations

import functools
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from routeguard.config.load import load_raw
from routeguard.service.app import create_app
from routeguard.service.settings import Settings
from routeguard.service.state import ServiceState

__all__ = [
    "EXAMPLE",
    "ROUTE",
    "ManualClock",
    "ServeProcess",
    "Service",
    "bundle",
    "free_port",
    "run_cli",
    "run_service",
    "serve_process",
    "today_plus",
    "write_bundle",
]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clinical-triage.yaml"
ROUTE = {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted", "region": "eu-west-2"}


def bundle(**changes: Any) -> dict[str, Any]:
    """The clinical-triage example as data; `primary="triage-v2"` etc. change the triage-agent policy,
    `expires={"triage-v3": date}` moves approval expiries."""
    raw = deepcopy(load_raw(EXAMPLE))
    for approval in raw["approvals"]:
        approval["expires"] = str(approval["expires"])
    for model, day in changes.pop("expires", {}).items():
        for approval in raw["approvals"]:
            if approval["model"] == model:
                approval["expires"] = day.isoformat() if isinstance(day, date) else str(day)
    raw["policies"]["triage-agent"].update(changes)
    return raw


def write_bundle(path: Path, raw: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(raw), sort_keys=False), encoding="utf-8")
    return path


def today_plus(days: int) -> date:
    return (datetime.now(UTC) + timedelta(days=days)).date()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManualClock:
    """Real time plus an offset the test moves forward (thread-safe enough: a float assignment)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Service:
    url: str
    state: ServiceState
    clock: ManualClock
    headers: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None, principal: str | None = None) -> httpx.Client:
        headers = dict(self.headers)
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if principal is not None:
            headers["x-routeguard-principal"] = principal
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, verify=_tls())


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every test client (building one per client costs ~50 ms)."""
    return ssl.create_default_context()


def _wait_ready(url: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0, verify=_tls()) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"routeguard serve exited with {proc.returncode}")
            try:
                if client.get(url + "/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise RuntimeError(f"the service at {url} did not start")


@contextmanager
def run_service(
    db_url: str,
    *,
    config: Path | None = None,
    auth_file: Path | None = None,
    tick_s: float = 0.2,
    legacy_env: bool = False,
    redis_url: str | None = None,
    **extra: Any,
) -> Iterator[Service]:
    """The app in a uvicorn thread; the clock is a ManualClock. ``extra``: further `Settings` fields."""
    clock = ManualClock()
    port = free_port()
    settings = Settings(
        db_url=db_url,
        config_path=config,
        auth_file=auth_file,
        port=port,
        tick_s=tick_s,
        clock=clock,
        legacy_env=legacy_env,
        redis_url=redis_url,
        **extra,
    )
    state = ServiceState.open(settings)
    app = create_app(settings, state=state)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name=f"routeguard-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url)
        yield Service(url, state, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        state.store.close()


@dataclass
class ServeProcess:
    url: str
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)


def routeguard_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from routeguard.cli import main; main()", *args]


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        routeguard_cmd(*args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@contextmanager
def serve_process(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> Iterator[ServeProcess]:
    """`routeguard serve ARGS --port <free>` as a subprocess."""
    port = free_port()
    proc = subprocess.Popen(
        routeguard_cmd("serve", *args, "--port", str(port)),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    running = ServeProcess(url, proc)
    try:
        _wait_ready(url, proc)
        yield running
    finally:
        if proc.poll() is None:
            running.stop()
        if proc.stderr is not None:
            proc.stderr.close()
