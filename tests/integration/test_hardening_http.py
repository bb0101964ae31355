"""Bad input over real HTTP never gets a 5xx (issue 13: D1, D6, D7, D9): every refusal is a 4xx in the
contract's error shape that names what is wrong, and a refused batch changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.attacks import deep_json, lol_bomb, self_alias
from support.service import EXAMPLE, Service, bundle, run_service
from support.services import postgres_schema


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    db = tmp_path_factory.mktemp("hardening") / "store.db"
    with run_service(f"sqlite:///{db}", config=EXAMPLE) as service:
        yield service


@pytest.fixture(scope="module")
def http(svc: Service) -> Iterator[httpx.Client]:
    with svc.client() as client:
        yield client


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def _raw(http: httpx.Client, path: str, body: bytes, method: str = "POST") -> httpx.Response:
    return http.request(method, path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("text", [lol_bomb(), self_alias()], ids=["lol-bomb", "self-alias"])
def test_yaml_bombs_are_refused_on_dry_run_and_upload(http: httpx.Client, text: str) -> None:
    for dry_run in (True, False):
        r = http.post("/v1/policies", json={"config": text, "dry_run": dry_run, "label": "bomb"})
        err = _error(r, 422, "invalid_bundle")
        assert "schema" in [f["code"] for f in err["findings"]], err
    assert http.get("/healthz").status_code == 200


def test_body_limits_answer_413_in_the_error_shape(http: httpx.Client) -> None:
    big = b'{"model": "triage-v3", "ok": true, "trace_id": "' + b"x" * (1 << 20) + b'"}'
    _error(_raw(http, "/v1/outcomes", big), 413, "payload_too_large")
    _error(_raw(http, "/v1/route", big), 413, "payload_too_large")
    _error(_raw(http, "/v1/safe-mode", big), 413, "payload_too_large")
    upload = json.dumps({"config": "# " + "x" * (5 << 20) + "\nmodels: {}\n", "dry_run": True}).encode()
    _error(_raw(http, "/v1/policies", upload), 413, "payload_too_large")
    # 2 MiB is within the upload limit: refused for its content, not its size
    text = EXAMPLE.read_text(encoding="utf-8") + "\n# " + "x" * (2 << 20) + "\n"
    r = http.post("/v1/policies", json={"config": text, "dry_run": True})
    assert r.status_code == 200, r.text[:300]


def test_non_finite_numbers_are_refused_naming_the_field(http: httpx.Client) -> None:
    for field, body in (
        ("latency_ms", b'{"model": "triage-v3", "ok": true, "latency_ms": NaN}'),
        ("tokens.input", b'{"model": "triage-v3", "ok": true, "tokens": {"input": Infinity}}'),
        ("latency_ms", b'{"model": "triage-v3", "ok": true, "latency_ms": 1e999}'),
    ):
        err = _error(_raw(http, "/v1/outcomes", body), 422, "invalid_request")
        assert err["message"].startswith(field), err
    body = b'{"agent": "triage-agent", "estimated_tokens": {"input": NaN}}'
    assert _error(_raw(http, "/v1/route", body), 422, "invalid_request")["message"].startswith("estimated_tokens")
    err = _error(_raw(http, "/v1/route", b'{"agent": "triage-agent", "sla_ms": 99999999999999999999}'),
                 422, "invalid_request")
    assert "sla_ms" in err["message"]


def _samples(http: httpx.Client, model: str) -> Any:
    r = http.get("/v1/health")
    assert r.status_code == 200
    models = r.json()["models"]
    return models[model] if isinstance(models, dict) else next(m for m in models if m.get("model") == model)


def test_a_batch_with_one_bad_item_changes_nothing(http: httpx.Client) -> None:
    before = _samples(http, "triage-v4")
    good = {"model": "triage-v4", "ok": False, "error": "timeout", "latency_ms": 10}
    for bad in ({**good, "latency_ms": -1}, {**good, "error": "nonsense"}, {**good, "quality": 7}):
        r = http.post("/v1/outcomes", json=[good, good, bad])
        err = _error(r, 422, "invalid_request")
        assert err["message"].startswith("outcome[2]"), err
    r = _raw(http, "/v1/outcomes", json.dumps([good, good]).encode()[:-1] + b', {"model": "triage-v4", '
             b'"ok": false, "latency_ms": NaN}]')
    assert _error(r, 422, "invalid_request")["message"].startswith("[2].latency_ms")
    assert _samples(http, "triage-v4") == before


def test_nesting_utf8_and_surrogates(http: httpx.Client) -> None:
    _error(_raw(http, "/v1/policies", deep_json().encode()), 400, "invalid_json")
    _error(_raw(http, "/v1/outcomes", deep_json(65).encode()), 400, "invalid_json")
    _error(_raw(http, "/v1/route", b'{"agent": "triage-agent", "metadata": ' + deep_json(70).encode() + b"}"),
           400, "invalid_json")
    _error(_raw(http, "/v1/safe-mode", b'{"enabled": false, "reason": "\xff\xfe"}'), 400, "invalid_json")
    err = _error(_raw(http, "/v1/policies", b'{"config": "models: {}", "label": "\\ud800"}'), 422, "invalid_request")
    assert err["message"].startswith("label")
    err = _error(http.post("/v1/policies", json={"config": "models: {}\n", "label": "x" * 201}), 422,
                 "invalid_request")
    assert "label" in err["message"]
    _error(http.post("/v1/route", json={"agent": "a" * 201}), 422, "invalid_request")
    r = http.post("/v1/outcomes", json={"model": "triage-v3", "ok": True},
                  headers={"x-routeguard-principal": "p" * 201})
    _error(r, 400, "bad_request")


def test_trailing_slash_is_a_404_without_a_location_and_allow_is_complete(http: httpx.Client) -> None:
    r = http.get("/v1/policies/", headers={"host": "evil.example"})
    _error(r, 404, "not_found")
    assert "location" not in r.headers
    r = http.request("OPTIONS", "/v1/policies")
    _error(r, 405, "method_not_allowed")
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}
    r = http.delete("/v1/route")
    assert {"POST"} <= {m.strip() for m in r.headers["allow"].split(",")}


def _check_out_of_range_input(http: httpx.Client) -> None:
    huge = 99999999999
    _error(http.get(f"/v1/policies/{huge}"), 404, "unknown_version")
    _error(http.post(f"/v1/policies/{huge}/approve", json={}), 404, "unknown_version")
    _error(http.post(f"/v1/policies/{huge}/publish", json={"scope": {"all": True}}), 404, "unknown_version")
    _error(http.post("/v1/rollback", json={"version": huge}), 404, "unknown_version")
    r = http.get("/v1/audit", params={"after": huge})
    assert r.status_code == 200 and r.json()["records"] == [], r.text
    _error(http.post("/v1/rollback", json={"version": 2**80}), 404, "unknown_version")
    # long strings that reach the store's columns
    _error(http.post("/v1/safe-mode", json={"enabled": False, "tenant": "t" * 201, "reason": "x"}), 422,
           "invalid_request")
    assert http.post("/v1/safe-mode", json={"enabled": False, "tenant": "t" * 200, "reason": "x"}).status_code == 200
    raw = bundle()
    raw["policies"]["p" * 201] = raw["policies"]["triage-agent-intake"]
    err = _error(http.post("/v1/policies", json={"config": raw, "dry_run": True}), 422, "invalid_bundle")
    assert "schema" in [f["code"] for f in err["findings"]], err
    version = http.post("/v1/policies", json={"config": bundle(), "label": "many tenants"},
                        headers={"x-routeguard-principal": "alice"}).json()["version"]
    approver = {"x-routeguard-principal": "bob"}
    assert http.post(f"/v1/policies/{version}/approve", json={}, headers=approver).status_code == 200
    tenants = [f"tenant-{i:04d}-" + "x" * 40 for i in range(30)]  # a scope longer than the audit column
    r = http.post(f"/v1/policies/{version}/publish", json={"scope": {"tenants": tenants}}, headers=approver)
    assert r.status_code == 200, r.text
    assert http.get("/v1/audit/verify").json()["ok"] is True


def test_huge_numbers_and_long_strings_never_reach_the_store_on_sqlite(http: httpx.Client) -> None:
    _check_out_of_range_input(http)


@pytest.mark.services
def test_huge_numbers_and_long_strings_never_reach_the_store_on_postgresql() -> None:
    with postgres_schema() as url, run_service(url, config=EXAMPLE) as service, service.client() as http:
        _check_out_of_range_input(http)


def test_a_streamed_body_without_length_is_cut_at_the_limit(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "triage-v3", "ok": true, "trace_id": "'
        for _ in range(64):  # 4 MiB offered, in 64 KiB pieces, with no Content-Length
            yield b"x" * 65536
        yield b'"}'

    try:
        r = http.post("/v1/outcomes", content=chunks(), headers={"content-type": "application/json"})
    except httpx.HTTPError:
        return  # the server closed the connection mid-upload: also a refusal
    _error(r, 413, "payload_too_large")
