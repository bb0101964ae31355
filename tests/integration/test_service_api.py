"""The service over real HTTP: every endpoint, the error shape, and a table of bad inputs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.service import EXAMPLE, ROUTE, Service, bundle, run_service


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    db = tmp_path_factory.mktemp("api") / "store.db"
    with run_service(f"sqlite:///{db}", config=EXAMPLE) as service:
        yield service


@pytest.fixture(scope="module")
def http(svc: Service) -> Iterator[httpx.Client]:
    with svc.client() as client:
        yield client


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def test_route_decision_has_the_contract_shape(http: httpx.Client) -> None:
    r = http.post(
        "/v1/route", json={**ROUTE, "tenant": "acme", "estimated_tokens": {"input": 1200, "output": 300}}
    )
    assert r.status_code == 200, r.text
    d = r.json()
    for key in (
        "trace_id",
        "policy",
        "policy_version",
        "policy_hash",
        "status",
        "model",
        "arm",
        "backups",
        "degraded",
        "safe_mode",
        "terminal",
        "cost_estimate_usd",
        "rejected",
    ):
        assert key in d
    assert (d["policy"], d["status"], d["model"], d["policy_version"]) == (
        "triage-agent",
        "primary",
        "triage-v3",
        1,
    )
    assert d["policy_hash"].startswith("sha256:")
    assert r.headers["x-routeguard-trace-id"] == d["trace_id"]


def test_internal_route_twin_answers_the_same(http: httpx.Client) -> None:
    a = http.post("/v1/route", json=ROUTE).json()
    b = http.post("/internal/model-routing/route", json=ROUTE).json()
    assert {k: v for k, v in a.items() if k != "trace_id"} == {k: v for k, v in b.items() if k != "trace_id"}


def test_trace_id_header_is_used(http: httpx.Client) -> None:
    r = http.post("/v1/route", json=ROUTE, headers={"x-routeguard-trace-id": "trace-123"})
    assert r.json()["trace_id"] == "trace-123" == r.headers["x-routeguard-trace-id"]


def test_body_without_json_content_type_is_read_as_json(svc: Service) -> None:
    r = httpx.post(
        svc.url + "/v1/route",
        content=b'{"agent": "triage-agent", "task_type": "triage"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text


BAD_INPUTS = [
    ("POST", "/v1/route", b"{not json", 400, "invalid_json"),
    ("POST", "/v1/route", b"", 400, "invalid_json"),
    ("POST", "/v1/route", b"[1, 2]", 422, "invalid_request"),
    ("POST", "/v1/route", b'{"agent": 5}', 422, "invalid_request"),
    ("POST", "/v1/route", b'{"agent": "triage-agent", "sla_ms": "fast"}', 422, "invalid_request"),
    ("POST", "/v1/route", b'{"agent": "triage-agent", "bogus": 1}', 422, "invalid_request"),
    ("POST", "/v1/route", b'{"agent": "nobody"}', 404, "unknown_agent"),
    ("POST", "/v1/route", b'{"agent": "triage-agent", "data_class": "secret"}', 422, "unknown_data_class"),
    (
        "POST",
        "/v1/route",
        b'{"agent": "triage-agent", "task_type": "triage", "metadata": {"policy": "x"}}',
        403,
        "override_not_allowed",
    ),
    ("POST", "/v1/outcomes", b'{"model": "triage-v3"}', 422, "invalid_request"),
    (
        "POST",
        "/v1/outcomes",
        b'[{"model": "triage-v3", "ok": true}, {"model": "nope", "ok": true}]',
        404,
        "unknown_model",
    ),
    ("POST", "/v1/outcomes", b"{oops", 400, "invalid_json"),
    ("PUT", "/v1/health/triage-v3", b'{"status": "sideways"}', 422, "invalid_request"),
    ("PUT", "/v1/health/triage-v3", b'{"status": "down", "ttl": "soon"}', 422, "invalid_request"),
    ("PUT", "/v1/health/nope", b'{"status": "down"}', 404, "unknown_model"),
    ("PUT", "/v1/health/triage-v3", b"{", 400, "invalid_json"),
    ("POST", "/v1/policies", b"{", 400, "invalid_json"),
    ("POST", "/v1/policies", b'{"label": "no config"}', 422, "invalid_request"),
    ("POST", "/v1/policies", b'{"config": 42}', 422, "invalid_request"),
    ("POST", "/v1/policies", b'{"config": {"models": 3}}', 422, "invalid_bundle"),
    ("POST", "/v1/policies", b'{"config": "models: [unclosed"}', 422, "invalid_bundle"),
    ("POST", "/v1/policies", b'{"config": "/etc/passwd"}', 422, "invalid_bundle"),
    ("POST", "/v1/policies", b'{"config": {}, "dry_run": "yes"}', 422, "invalid_request"),
    ("GET", "/v1/policies/999", b"", 404, "unknown_version"),
    ("GET", "/v1/policies/abc", b"", 422, "invalid_request"),
    ("POST", "/v1/policies/999/approve", b"{}", 404, "unknown_version"),
    ("POST", "/v1/policies/999/publish", b"{}", 404, "unknown_version"),
    ("POST", "/v1/policies/1/publish", b'{"scope": {"percent": 0}}', 422, "invalid_request"),
    ("POST", "/v1/policies/1/publish", b'{"scope": {"percent": "ten"}}', 422, "invalid_request"),
    ("POST", "/v1/policies/1/publish", b'{"scope": {"tenants": []}}', 422, "invalid_request"),
    ("POST", "/v1/policies/1/publish", b'{"scope": {"all": true, "percent": 5}}', 422, "invalid_request"),
    ("POST", "/v1/rollback", b"{}", 422, "invalid_request"),
    ("POST", "/v1/rollback", b'{"version": 1, "tenant": "a"}', 422, "invalid_request"),
    ("POST", "/v1/rollback", b'{"version": 999}', 404, "unknown_version"),
    ("POST", "/v1/rollback", b'{"version": "one"}', 422, "invalid_request"),
    ("POST", "/v1/rollback", b'{"tenant": "never-staged"}', 409, "state_conflict"),
    ("POST", "/v1/safe-mode", b'{"reason": "no enabled"}', 422, "invalid_request"),
    ("POST", "/v1/safe-mode", b'{"enabled": "true"}', 422, "invalid_request"),
    ("GET", "/v1/audit?limit=0", b"", 422, "invalid_request"),
    ("GET", "/v1/audit?since=yesterday", b"", 422, "invalid_request"),
    ("GET", "/v1/nothing-here", b"", 404, "not_found"),
    ("DELETE", "/v1/route", b"", 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_INPUTS)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    svc: Service, http: httpx.Client, method: str, path: str, body: bytes, status: int, code: str
) -> None:
    before = http.get("/v1/policies").json()
    audit_before = http.get("/v1/audit/verify").json()["records"]
    headers = {"content-type": "application/json"}
    error = _error(http.request(method, path, content=body, headers=headers), status, code)
    if code == "invalid_bundle":
        assert error["findings"] and all({"code", "path", "message"} <= set(f) for f in error["findings"])
    if code == "invalid_request" and path == "/v1/rollback" and b"one" in body:
        assert "version" in error["message"]
    assert http.get("/v1/policies").json() == before
    verify = http.get("/v1/audit/verify").json()
    assert verify["ok"] is True and verify["records"] == audit_before


def test_validation_errors_name_the_field(http: httpx.Client) -> None:
    error = _error(
        http.post("/v1/policies/1/publish", json={"scope": {"percent": "ten"}}), 422, "invalid_request"
    )
    assert "scope.percent" in error["message"]
    error = _error(
        http.post("/v1/route", json={"agent": "triage-agent", "estimated_tokens": {"input": -1}}),
        422,
        "invalid_request",
    )
    assert "estimated_tokens.input" in error["message"]


def test_outcomes_one_or_many(http: httpx.Client) -> None:
    one = http.post("/v1/outcomes", json={"model": "triage-v2", "ok": True, "latency_ms": 120})
    assert one.status_code == 202 and one.json()["count"] == 1
    many = http.post("/v1/outcomes", json=[{"model": "triage-v2", "ok": True}] * 3)
    assert many.status_code == 202 and many.json()["accepted"] == 3
    figures = http.get("/v1/health").json()["models"]["triage-v2"]["figures"]
    assert figures is not None


def test_health_and_routes_views(http: httpx.Client) -> None:
    alias = http.put("/v1/models/triage-v4/health", json={"status": "up", "source": "probe", "ttl": "1m"})
    assert alias.status_code == 200 and alias.json()["ttl_s"] == 60
    health = http.get("/v1/health").json()["models"]
    assert {"triage-v3", "triage-v2", "triage-v4", "general-xl"} <= set(health)
    assert "triage-agent" in health["triage-v2"]["policies"] or health["triage-v2"]["policies"] == {}
    routes = http.get("/v1/routes").json()["routes"]
    serving = {(r["policy"], r["scope"]): r for r in routes}
    assert serving[("triage-agent", "all")]["policy_version"] == 1
    assert {"since", "reason", "model"} <= set(serving[("triage-agent", "all")])


def test_models_list_is_openai_shaped(http: httpx.Client) -> None:
    body = http.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["triage-agent"]
    assert body["data"][0]["object"] == "model"


def test_dry_run_stores_nothing_and_text_config_is_accepted(http: httpx.Client) -> None:
    before = len(http.get("/v1/policies").json()["versions"])
    r = http.post("/v1/policies", json={"config": EXAMPLE.read_text(), "dry_run": True})
    assert r.status_code == 200, r.text
    assert r.json()["findings"] == [] and r.json()["hash"].startswith("sha256:")
    assert len(http.get("/v1/policies").json()["versions"]) == before


def test_findings_carry_yaml_lines(http: httpx.Client) -> None:
    text = EXAMPLE.read_text().replace("primary: triage-v3", "primary: general-xl", 1)
    error = _error(http.post("/v1/policies", json={"config": text}), 422, "invalid_bundle")
    codes = {f["code"] for f in error["findings"]}
    assert "unapproved_model" in codes
    assert any(isinstance(f.get("line"), int) for f in error["findings"])


def test_meta_endpoints_and_openapi(svc: Service) -> None:
    assert httpx.get(svc.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(svc.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["version"] == 1
    spec = httpx.get(svc.url + "/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/route",
        "/v1/outcomes",
        "/v1/health/{model}",
        "/v1/health",
        "/v1/models",
        "/v1/routes",
        "/v1/policies",
        "/v1/policies/{version}",
        "/v1/policies/{version}/approve",
        "/v1/policies/{version}/publish",
        "/v1/rollback",
        "/v1/safe-mode",
        "/v1/audit",
        "/v1/audit/verify",
        "/v1/queue",
        "/internal/model-routing/route",
        "/internal/model-routing/policies",
        "/internal/model-routing/rollback",
        "/internal/model-routing/safe-mode",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    assert "requestBody" in paths["/v1/route"]["post"]


def test_queue_lists_entries(svc: Service, http: httpx.Client) -> None:
    entry = svc.state.router.executor.queue.put(
        "clinical-humans", "triage-agent", "t-1", {"messages": []}, "x"
    )
    entries = http.get("/v1/queue", params={"queue": "clinical-humans"}).json()["entries"]
    assert [e["id"] for e in entries] == [int(entry)]
    assert entries[0]["status"] == "pending" and entries[0]["trace_id"] == "t-1"


def test_audit_paging_and_filters(http: httpx.Client) -> None:
    assert http.post("/v1/policies", json={"config": bundle(), "label": "paging"}).status_code == 201
    first = http.get("/v1/audit", params={"limit": 1}).json()
    assert len(first["records"]) == 1 and first["records"][0]["seq"] == 1
    assert first["records"][0]["kind"] == "policy.bootstrap"
    assert first["next"] == 1
    rest = http.get("/v1/audit", params={"after": first["next"], "limit": 1000}).json()
    assert all(r["seq"] > 1 for r in rest["records"]) and rest["next"] is None
    boot = http.get("/v1/audit", params={"kind": "policy.bootstrap"}).json()["records"]
    assert len(boot) == 1
    assert http.get("/v1/audit", params={"since": "2100-01-01T00:00:00Z"}).json()["records"] == []


def test_upload_stores_a_draft(tmp_path: Path, http: httpx.Client) -> None:
    r = http.post("/v1/policies", json={"config": bundle(), "label": "same as v1"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "draft" and body["findings"] == [] and isinstance(body["version"], int)
    shown = http.get(f"/v1/policies/{body['version']}").json()
    assert (
        shown["author"] == "anonymous"
        and shown["config"]["policies"]["triage-agent"]["primary"] == "triage-v3"
    )
    listed = http.get("/internal/model-routing/policies").json()["versions"]
    assert body["version"] in [v["version"] for v in listed]
