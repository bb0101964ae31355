"""Health v2 through the live service: active health checks bring a recovered model back within seconds, a
recovering model gets at most `probes` proxied requests before the switch back is logged, and who may move
health (signaler role, trace-bound outcomes, ttl cap, withdrawal, per-principal rate, audited principal)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.proxy import AGENT, MESSAGES, UP, poll, proxy_bundle, proxy_service
from support.service import EXAMPLE, ROUTE, Service, run_service
from support.upstream import UpstreamServer, error, ok

TOKENS = {
    "router": "token-router-0123456789",
    "signaler": "token-signaler-0123456789",
    "operator": "token-operator-0123456789",
    "limited": "token-limited-0123456789",
}


def _serving(http: httpx.Client) -> str | None:
    routes = http.get("/v1/routes").json()["routes"]
    return next(r["model"] for r in routes if r["policy"] == AGENT and r["scope"] == "all")


def _route_changes(http: httpx.Client) -> list[dict[str, Any]]:
    return [r for r in http.get("/v1/audit", params={"kind": "route.changed"}).json()["records"]
            if r["policy"] == AGENT]


def test_active_checks_bring_a_recovered_primary_back_within_seconds(tmp_path: Path, upstream: UpstreamServer) -> None:
    raw = proxy_bundle(upstream.base_url, health={"cooldown": "5m", "cooldown_max": "5m", "probes": 2})
    raw["models"]["alpha"]["health_check"] = {"interval": "1s", "timeout": "2s"}
    upstream.set(UP["alpha"], error(503))
    with proxy_service(tmp_path, upstream, raw=raw) as px, px.http() as http:
        for _ in range(4):
            px.client.with_options(max_retries=0).chat.completions.create(model=AGENT, messages=MESSAGES)
        poll(lambda: _serving(http) == "beta", "the route moves to beta")
        upstream.set(UP["alpha"], ok())  # the primary answers again; its cooldown has five minutes left
        poll(lambda: _serving(http) == "alpha", "active checks end the cooldown and close the probes", 15)
        changes = _route_changes(http)
        assert [(c["payload"]["from_model"], c["payload"]["to_model"]) for c in changes] == [
            ("alpha", "beta"), ("beta", "alpha")]
        checks = [r for r in upstream.requests if r.model == UP["alpha"] and r.body.get("max_tokens") == 16]
        assert checks and checks[-1].body["messages"] == [{"role": "user", "content": "ping"}]


def test_a_recovering_primary_gets_at_most_probes_requests_before_the_switch_back(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    upstream.set(UP["alpha"], error(503))
    with proxy_service(tmp_path, upstream, health={"cooldown": "1s", "probes": 3, "min_dwell": "10s"}) as px, \
            px.http() as http:
        client = px.client.with_options(max_retries=0)
        for _ in range(4):
            client.chat.completions.create(model=AGENT, messages=MESSAGES)
        poll(lambda: _serving(http) == "beta", "the route moves to beta")
        upstream.set(UP["alpha"], ok())
        px.svc.clock.advance(2)  # the cooldown is over: probing
        before = upstream.count(UP["alpha"])
        reached = []
        for _ in range(20):
            raw = client.chat.completions.with_raw_response.create(model=AGENT, messages=MESSAGES)
            reached.append(raw.headers["x-routeguard-model"])
            if _serving(http) == "alpha":
                break
        assert _serving(http) == "alpha"
        assert upstream.count(UP["alpha"]) - before == 3  # the probe budget, then the logged switch back
        assert [c["payload"]["to_model"] for c in _route_changes(http)] == ["beta", "alpha"]


def _auth(path: Path) -> Path:
    path.write_text(
        "\n".join([
            f"- {{name: rita, token: {TOKENS['router']}, roles: [router, viewer]}}",
            f"- {{name: sam, token: {TOKENS['signaler']}, roles: [signaler, router]}}",
            f"- {{name: olga, token: {TOKENS['operator']}, roles: [operator, viewer]}}",
            f"- {{name: lim, token: {TOKENS['limited']}, roles: [router], rate: 5/s}}",
        ]) + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("guarded")
    with run_service(f"sqlite:///{tmp / 'store.db'}", config=EXAMPLE, auth_file=_auth(tmp / "auth.yaml")) as s:
        yield s


def test_a_router_token_cannot_signal_or_report_untraced_outcomes(guarded: Service) -> None:
    with guarded.client(TOKENS["router"]) as rita:
        r = rita.put("/v1/health/triage-v3", json={"status": "down", "ttl": "1h", "source": "rita"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        fake = [{"model": "triage-v3", "ok": False, "error": "server_error"}] * 5
        r = rita.post("/v1/outcomes", json=fake)
        assert r.status_code == 403 and "signaler" in r.json()["error"]["message"]
        assert rita.post("/v1/route", json=ROUTE).json()["model"] == "triage-v3"  # nothing moved


def test_traced_outcomes_count_only_for_what_their_decision_offered(guarded: Service) -> None:
    with guarded.client(TOKENS["router"]) as rita:
        decision = rita.post("/v1/route", json=ROUTE).json()
        trace, offered = decision["trace_id"], decision["model"]
        other = "triage-v4"
        r = rita.post("/v1/outcomes", json={"trace_id": trace, "model": other, "ok": False})
        assert r.status_code == 422 and "did not offer" in r.json()["error"]["message"]
        one = {"trace_id": trace, "model": offered, "ok": True, "latency_ms": 80}
        assert rita.post("/v1/outcomes", json=[one, one]).status_code == 202  # retry.attempts = 2 in the example
        r = rita.post("/v1/outcomes", json=one)
        assert r.status_code == 422 and "retry.attempts" in r.json()["error"]["message"]
        forged = {"trace_id": "0" * 32, "model": offered, "ok": False}
        assert rita.post("/v1/outcomes", json=forged).status_code == 403  # a trace this service never issued


def test_signals_need_a_signaler_are_capped_at_24h_withdrawn_by_source_and_audited(guarded: Service) -> None:
    with guarded.client(TOKENS["signaler"]) as sam, guarded.client(TOKENS["operator"]) as olga:
        r = sam.put("/v1/health/triage-v3", json={"status": "down", "ttl": 1e23, "source": "statuspage"})
        assert r.status_code == 422 and "24h" in r.json()["error"]["message"]
        r = sam.put("/v1/health/triage-v3", json={"status": "up", "ttl": "1h", "source": "x", "override": True})
        assert r.status_code == 403  # an override needs the operator role
        assert sam.put("/v1/health/triage-v3", json={"status": "down", "ttl": "1h", "source": "statuspage"}
                       ).status_code == 200
        assert sam.put("/v1/health/triage-v3", json={"status": "up", "ttl": "1h", "source": "registry"}
                       ).status_code == 200
        assert sam.post("/v1/route", json=ROUTE).json()["model"] == "triage-v2"  # the worst signal wins
        r = sam.delete("/v1/health/triage-v3/signals/statuspage")
        assert r.status_code == 200 and r.json()["withdrawn"] is True
        assert sam.delete("/v1/health/triage-v3/signals/statuspage").status_code == 404
        records = olga.get("/v1/audit", params={"kind": "health.signal"}).json()["records"]
        assert {(rec["actor"], rec["payload"]["source"]) for rec in records} >= {
            ("sam", "statuspage"), ("sam", "registry")}
        sam.delete("/v1/health/triage-v3/signals/registry")


def test_a_principal_over_its_rate_gets_429_with_retry_after(guarded: Service) -> None:
    with guarded.client(TOKENS["limited"]) as lim:
        statuses = [lim.post("/v1/route", json=ROUTE) for _ in range(20)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and statuses[0].status_code == 200
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json()["error"]["code"] == "rate_limited"
