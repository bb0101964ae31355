"""Tokens and roles: 401 without a valid token, 403 without the role, the token's name as principal."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from routeguard.service.auth import AuthError, load_auth_file
from routeguard.service.settings import Settings
from routeguard.service.state import ServiceState
from support.service import EXAMPLE, ROUTE, Service, run_service

ROLES = ("viewer", "router", "signaler", "author", "approver", "operator")
TOKENS = {role: f"token-for-{role}-0123456789" for role in (*ROLES, "admin")}
SECOND_APPROVER = "token-for-carol-0123456789"

# (method, path, body, role) for every endpoint of CONTRACT §3 served here
ENDPOINTS = [
    ("POST", "/v1/route", ROUTE, "router"),
    ("POST", "/internal/model-routing/route", ROUTE, "router"),
    ("POST", "/v1/outcomes", {"model": "triage-v2", "ok": True}, "signaler"),  # untraced: signaler only
    ("PUT", "/v1/health/triage-v4", {"status": "up", "ttl": 60}, "signaler|operator"),
    ("GET", "/v1/models", None, "router"),
    ("GET", "/v1/health", None, "viewer"),
    ("GET", "/v1/routes", None, "viewer"),
    ("POST", "/v1/policies", {"config": {}, "dry_run": True}, "author"),
    ("POST", "/internal/model-routing/policies", {"config": {}, "dry_run": True}, "author"),
    ("GET", "/v1/policies", None, "viewer"),
    ("GET", "/v1/policies/1", None, "viewer"),
    ("POST", "/v1/policies/1/approve", {}, "approver"),
    ("POST", "/v1/policies/1/publish", {"scope": {"all": True}}, "approver"),
    ("POST", "/v1/rollback", {"tenant": "nobody"}, "operator"),
    ("POST", "/internal/model-routing/rollback", {"tenant": "nobody"}, "operator"),
    ("POST", "/v1/safe-mode", {"enabled": False, "reason": "test"}, "operator"),
    ("GET", "/v1/safe-mode", None, "operator"),
    ("GET", "/internal/model-routing/safe-mode", None, "operator"),
    ("GET", "/v1/audit", None, "viewer"),
    ("GET", "/v1/audit/verify", None, "viewer"),
    ("GET", "/v1/queue", None, "operator"),
    ("POST", "/v1/queue/999/claim", None, "operator"),
    ("POST", "/v1/queue/999/resolve", {"resolution": "answered"}, "operator"),
]


def _auth_file(path: Path) -> Path:
    lines = [f"- {{name: {role}-user, token: {token}, roles: [{role}]}}" for role, token in TOKENS.items()]
    digest = hashlib.sha256(SECOND_APPROVER.encode()).hexdigest()
    lines.append(f"- {{name: carol, token_sha256: {digest}, roles: [approver, viewer]}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("auth")
    with run_service(
        f"sqlite:///{tmp / 'store.db'}", config=EXAMPLE, auth_file=_auth_file(tmp / "auth.yaml")
    ) as s:
        yield s


@pytest.mark.parametrize(("method", "path", "body", "role"), ENDPOINTS)
def test_every_endpoint_needs_its_role(svc: Service, method: str, path: str, body: object, role: str) -> None:
    with httpx.Client(base_url=svc.url, timeout=30) as client:
        kwargs = {"json": body} if body is not None else {}
        none = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert none.status_code == 401 and none.json()["error"]["code"] == "unauthorized"
        assert none.headers.get("www-authenticate") == "Bearer"
        bad = client.request(method, path, headers={"authorization": "Bearer not-a-token"}, **kwargs)  # type: ignore[arg-type]
        assert bad.status_code == 401
        allowed = role.split("|")
        for other in ROLES:
            if other in allowed:
                continue
            r = client.request(method, path, headers={"authorization": f"Bearer {TOKENS[other]}"}, **kwargs)  # type: ignore[arg-type]
            assert r.status_code == 403, (other, r.text)
            assert r.json()["error"]["code"] == "forbidden"
        for holder in (*allowed, "admin"):
            r = client.request(method, path, headers={"authorization": f"Bearer {TOKENS[holder]}"}, **kwargs)  # type: ignore[arg-type]
            assert r.status_code not in (401, 403), (holder, r.text)


def test_meta_endpoints_need_no_token(svc: Service) -> None:
    assert httpx.get(svc.url + "/healthz").status_code == 200
    assert httpx.get(svc.url + "/readyz").status_code == 200
    assert httpx.get(svc.url + "/openapi.json").status_code == 200


def test_principal_is_the_token_name_and_four_eyes_holds(svc: Service) -> None:
    def client(token: str) -> httpx.Client:
        # the principal header is ignored when tokens are configured
        return httpx.Client(
            base_url=svc.url,
            timeout=30,
            headers={"authorization": f"Bearer {token}", "x-routeguard-principal": "someone-else"},
        )

    with client(TOKENS["admin"]) as admin, client(SECOND_APPROVER) as carol:
        up = admin.post("/v1/policies", json={"config": EXAMPLE.read_text(), "label": "by admin"})
        assert up.status_code == 201
        version = up.json()["version"]
        assert admin.get(f"/v1/policies/{version}").json()["author"] == "admin-user"
        own = admin.post(f"/v1/policies/{version}/approve", json={})
        assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
        ok = carol.post(f"/v1/policies/{version}/approve", json={"comment": "looks right"})
        assert ok.status_code == 200 and ok.json()["approvals"][0]["approver"] == "carol"
        records = admin.get("/v1/audit", params={"kind": "policy.approved"}).json()["records"]
        assert records[-1]["actor"] == "carol"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- {name: a, roles: [viewer]}\n", "exactly one"),
        ("- {name: a, token: abcdefghij, roles: [king]}\n", "unknown role"),
        ("- {name: a, token: short, roles: [viewer]}\n", "at least 8"),
        ("- {name: a, token_sha256: nothex, roles: [viewer]}\n", "64 hex"),
        ("{name: a}\n", "expected a list"),
        (
            "- {name: a, token: abcdefghij, roles: [viewer]}\n"
            "- {name: b, token: abcdefghij, roles: [admin]}\n",
            "share a token",
        ),
    ],
)
def test_bad_auth_files_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AuthError, match=problem):
        load_auth_file(path)


def test_no_tokens_on_a_public_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="without tokens"):
        ServiceState.open(Settings(db_url=f"sqlite:///{tmp_path / 's.db'}", host="0.0.0.0"))
    assert not (tmp_path / "s.db").exists()
