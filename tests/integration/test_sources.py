"""Pull sources (CONTRACT §1 `sources`) against stub services on loopback that are up, slow, down or answer garbage:
a provider registry feeding health as source `registry` (expiring into `stale`, never healthy), and a cost service
whose quotes are cached, with the bundle's cost as the ceiling while it fails (said in the decision)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.service import ROUTE, Service, bundle, run_service, write_bundle

CEILINGS = {"triage-v3": (0.50, 1.50), "triage-v2": (0.40, 1.20)}  # the example bundle's cost per 1M tokens


class Stub:
    """A JSON service on 127.0.0.1 whose `mode` is up (answers `answer(path)`), slow, garbage or down."""

    def __init__(self, answer: Callable[[str], Any]) -> None:
        self.answer = answer
        self.mode = "up"
        self.hits: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.hits.append(self.path)
                if stub.mode == "slow":
                    time.sleep(1.0)
                body = b"<html>oops" if stub.mode == "garbage" else json.dumps(stub.answer(self.path)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout_s}s")


def _metric(http: httpx.Client, source: str, result: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("agent_routing_source_requests_total{") and f'source="{source}"' in line \
                and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _state(http: httpx.Client, model: str) -> str:
    """The model's state under triage-agent."""
    models = http.get("/v1/health").json()["models"]
    entry = models[model] if isinstance(models, dict) else next(m for m in models if m.get("model") == model)
    return str(entry["policies"]["triage-agent"]["state"])


@pytest.fixture
def registry() -> Iterator[Stub]:
    stub = Stub(lambda path: {"models": {"triage-v3": {"status": "down", "ttl": "2s"}}})
    yield stub
    stub.stop()


@pytest.fixture
def costs() -> Iterator[Stub]:
    stub = Stub(lambda path: {"input_per_1m": 0.25, "output_per_1m": 5.0})
    yield stub
    stub.stop()


@pytest.fixture
def svc(tmp_path: Path, registry: Stub, costs: Stub) -> Iterator[Service]:
    raw = bundle()
    raw["sources"] = {
        "health": {"url": f"http://127.0.0.1:{registry.port}/internal/providers/{{provider}}/health",
                   "interval": "100ms", "timeout": "300ms"},
        "cost": {"url": f"http://127.0.0.1:{costs.port}/internal/cost/model-quote?model={{model}}",
                 "ttl": "1s", "timeout": "300ms"},
    }
    with run_service(f"sqlite:///{tmp_path / 's.db'}", config=write_bundle(tmp_path / "b.yaml", raw)) as service:
        yield service


def test_a_registry_answer_moves_health_as_source_registry(svc: Service, registry: Stub) -> None:
    with svc.client() as http:
        _wait("the registry's down signal", lambda: http.post("/v1/route", json=ROUTE).json()["model"] == "triage-v2")
        assert "/internal/providers/acme-onprem/health" in registry.hits  # polled per provider

        def audited() -> bool:
            changes = http.get("/v1/audit", params={"kind": "route.changed"}).json()["records"]
            return any("registry" in c["reason"] for c in changes if c["to_model"] == "triage-v2")

        _wait("the audited routing change naming the registry", audited)
        assert _metric(http, "health", "ok") >= 1


@pytest.mark.parametrize("failure", ["down", "slow", "garbage"])
def test_a_registry_that_stops_answering_leaves_the_model_stale_never_healthy(
    svc: Service, registry: Stub, failure: str
) -> None:
    with svc.client() as http:
        _wait("the registry's down signal", lambda: http.post("/v1/route", json=ROUTE).json()["model"] == "triage-v2")
        if failure == "down":
            registry.stop()
        else:
            registry.mode = failure
        result = {"down": "error", "slow": "timeout", "garbage": "invalid"}[failure]
        _wait(f"a counted {result}", lambda: _metric(http, "health", result) >= 1)
        svc.clock.advance(5)  # past the last answer's ttl (2s): nothing renewed it
        decision = http.post("/v1/route", json=ROUTE).json()
        assert decision["model"] != "triage-v3" or decision["degraded"] or decision["probe"]
        assert _state(http, "triage-v3") in ("stale", "unhealthy", "probing", "degraded")  # never healthy
        svc.clock.advance(600)  # long after: still not healthy on the word of a registry that went silent
        assert _state(http, "triage-v3") != "healthy"


def test_cost_quotes_are_used_under_the_bundle_ceiling_and_the_ceiling_while_the_source_fails(
    svc: Service, registry: Stub, costs: Stub
) -> None:
    context = {**ROUTE, "estimated_tokens": {"input": 10_000, "output": 1_000}}  # under the 0.05 USD budget
    with svc.client() as http:
        def quoted() -> bool:
            return "quote" in http.post("/v1/route", json=context).json().get("cost_detail", "")

        _wait("a quote in the decision", quoted)
        decision = http.post("/v1/route", json=context).json()
        ceiling_in, ceiling_out = CEILINGS[decision["model"]]
        # quote 0.25/1M in (under the ceiling), 5.0/1M out capped at the ceiling
        assert decision["cost_estimate_usd"] == pytest.approx((10_000 * 0.25 + 1_000 * ceiling_out) / 1e6)
        assert "capped at the bundle ceiling" in decision["cost_detail"]
        costs.mode = "garbage"
        _wait("the cached quote to expire", lambda: "bundle ceiling (cost source unavailable"
              in http.post("/v1/route", json=context).json().get("cost_detail", ""), timeout_s=20)
        ceiling = http.post("/v1/route", json=context).json()
        ceiling_in, ceiling_out = CEILINGS[ceiling["model"]]
        assert ceiling["cost_estimate_usd"] == pytest.approx((10_000 * ceiling_in + 1_000 * ceiling_out) / 1e6)
        assert "invalid" in ceiling["cost_detail"]
        costs.mode = "slow"
        _wait("a counted cost timeout", lambda: _metric(http, "cost", "timeout") >= 1)
        assert _metric(http, "cost", "invalid") >= 1 and _metric(http, "cost", "ok") >= 1


def test_without_a_cost_source_the_decision_is_unchanged(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "plain.yaml", bundle())
    with run_service(f"sqlite:///{tmp_path / 'p.db'}", config=config) as svc, svc.client() as http:
        assert "cost_detail" not in http.post("/v1/route", json=ROUTE).json()
        assert "agent_routing_source_requests_total{" not in http.get("/metrics").text  # nothing polled
