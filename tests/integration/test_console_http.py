"""The console over plain HTTP (no browser): sessions, cookies, CSRF, redirects, roles, four-eyes by name in
development mode, secrets never rendered, and the security headers of every page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from routeguard.service.ui import data
from support.console import SECRET_HOOK, TOKENS, console_bundle
from support.service import Service, run_service, write_bundle

PAGES = ("/ui", "/ui/live/overview", "/ui/timeline", "/ui/policies", "/ui/policies/1", "/ui/queue",
         "/ui/reviews", "/ui/models/triage-v3", "/ui/live/models/triage-v3")


def _secret_bundle() -> dict[str, object]:
    raw = console_bundle("http://127.0.0.1:9/v1")
    raw["notifiers"]["chat"] = {"type": "slack", "url": "https://hooks.slack.com/services/T01/B02/slack-secret-xyz"}
    raw["policies"]["triage-agent"]["notify"] = ["governance", "chat"]
    return raw


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("console-dev")
    config = write_bundle(tmp / "bundle.yaml", _secret_bundle())
    with run_service(f"sqlite:///{tmp / 'store.db'}", config=config) as svc:
        yield svc


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("console-tokens")
    auth = tmp / "auth.yaml"
    auth.write_text(
        "".join(f"- {{name: {n}, token: {t}, roles: [{', '.join(r)}]}}\n" for n, (t, r) in TOKENS.items()),
        encoding="utf-8",
    )
    config = write_bundle(tmp / "bundle.yaml", console_bundle("http://127.0.0.1:9/v1"))
    with run_service(f"sqlite:///{tmp / 'store.db'}", config=config, auth_file=auth) as svc:
        yield svc


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _login_form(client: httpx.Client, next_: str = "/ui") -> str:
    r = client.get("/ui/login", params={"next": next_})
    assert r.status_code == 200
    return re.search(r'name="login_csrf" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]


def login(svc: Service, *, name: str = "", token: str = "", next_: str = "/ui") -> httpx.Client:
    client = httpx.Client(base_url=svc.url, follow_redirects=False, timeout=30)
    _OPEN.append(client)
    r = client.post("/ui/login", data={"login_csrf": _login_form(client, next_), "name": name, "token": token,
                                       "next": next_})
    assert r.status_code == 303, r.text
    return client


def api(svc: Service, principal: str | None = None) -> httpx.Client:
    client = svc.client(principal=principal)
    _OPEN.append(client)
    return client


def csrf_of(client: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/ui").text).group(1)  # type: ignore[union-attr]


def test_without_a_session_pages_send_to_the_login_form(dev: Service) -> None:
    with httpx.Client(base_url=dev.url, follow_redirects=False) as client:
        r = client.get("/ui/policies")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/policies"
        live = client.get("/ui/live/overview", headers={"hx-request": "true"})
        assert live.status_code == 401 and live.headers["hx-redirect"].startswith("/ui/login")
        assert client.post("/ui/safe-mode", data={"enabled": "true"}).status_code == 403


def test_dev_login_by_name_sets_a_strict_httponly_cookie_and_audits_the_name(dev: Service) -> None:
    client = httpx.Client(base_url=dev.url, follow_redirects=False, timeout=30)
    _OPEN.append(client)
    answer = client.post("/ui/login", data={"login_csrf": _login_form(client), "name": "dora"})
    assert answer.status_code == 303
    session = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("rg_session=")).lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/ui" in session
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    r2 = client.post("/ui/safe-mode", data={"csrf": csrf_of(client), "enabled": "true", "reason": "drill"})
    assert r2.status_code == 303
    state = api(dev).get("/v1/safe-mode").json()
    assert state["enabled"] is True and state["global"]["by"] == "dora"
    client.post("/ui/safe-mode", data={"csrf": csrf_of(client), "enabled": "false"})
    assert api(dev).get("/v1/safe-mode").json()["enabled"] is False


def test_four_eyes_holds_by_name_in_dev_mode(dev: Service, tmp_path: Path) -> None:
    alice = login(dev, name="alice")
    raw = _secret_bundle()
    raw["policies"]["triage-agent"]["timeout"] = "25s"
    config = write_bundle(tmp_path / "b.yaml", raw)
    up = alice.post("/ui/policies", data={"csrf": csrf_of(alice), "config": config.read_text(), "label": "x"})
    assert up.status_code == 303, up.text
    version = max(v["version"] for v in api(dev).get("/v1/policies").json()["versions"])
    page = alice.get(f"/ui/policies/{version}").text
    assert "Approve version" not in page and "another principal must approve it" in page
    own = alice.post(f"/ui/policies/{version}/approve", data={"csrf": csrf_of(alice)})
    assert own.status_code == 403 and "approve" in own.text.lower()
    bob = login(dev, name="bob")
    assert bob.post(f"/ui/policies/{version}/approve", data={"csrf": csrf_of(bob)}).status_code == 303
    approvals = api(dev).get(f"/v1/policies/{version}").json()["approvals"]
    assert [a["approver"] for a in approvals] == ["bob"]


def test_health_history_is_sampled_while_nobody_watches(dev: Service) -> None:
    client = login(dev, name="hana")

    def samples() -> int:
        page = client.get("/ui/models/triage-v2").text
        return int(re.search(r"error rate over the last (\d+) samples", page).group(1))  # type: ignore[union-attr]

    before = samples()
    reads = 0
    for _ in range(8):  # a page read adds at most one sample itself: without the sampler, growth <= reads
        time.sleep(2.5)  # no page is read meanwhile
        reads += 1
        grown = samples() - before
        if grown > reads:
            break
    assert grown > reads, (grown, reads)  # the sampler took samples while nobody watched


def test_no_secret_is_ever_rendered(dev: Service) -> None:
    client = login(dev, name="sam")
    seen = "".join(client.get(p).text for p in PAGES)
    for secret in ("hook-secret-path-xyz", "query-secret", "slack-secret-xyz", "T0001/B0002", SECRET_HOOK):
        assert secret not in seen
    assert "hooks.slack.com" in client.get("/ui/policies/1").text  # the host stays visible


def test_logout_ends_the_session(dev: Service) -> None:
    client = login(dev, name="lou")
    old = dict(client.cookies)
    r = client.post("/ui/logout", data={"csrf": csrf_of(client)})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    with httpx.Client(base_url=dev.url, cookies=old, follow_redirects=False) as stale:
        assert stale.get("/ui").status_code == 303  # the old cookie no longer opens anything


def test_login_refusals_and_no_open_redirect(tokens: Service) -> None:
    with httpx.Client(base_url=tokens.url, follow_redirects=False) as client:
        csrf = _login_form(client)
        bad = client.post("/ui/login", data={"login_csrf": csrf, "token": "not-a-token-at-all"})
        assert bad.status_code == 401 and "unknown token" in bad.text
        wrong_form = client.post("/ui/login", data={"login_csrf": "forged", "token": TOKENS["victor"][0]})
        assert wrong_form.status_code == 403
        router_only = client.post("/ui/login", data={"login_csrf": _login_form(client), "token": TOKENS["rita"][0]})
        assert router_only.status_code == 403 and "viewer" in router_only.text
        evil = client.post("/ui/login", data={"login_csrf": _login_form(client), "token": TOKENS["victor"][0],
                                              "next": "//evil.example/ui"})
        assert evil.status_code == 303 and evil.headers["location"] == "/ui"
        assert TOKENS["victor"][0] not in evil.headers.get("set-cookie", "")


def test_static_assets_are_vendored_and_served_without_login(dev: Service) -> None:
    r = httpx.get(dev.url + "/ui/static/htmx.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.text.startswith("/*! htmx 2.") and "license" in r.text[:200].lower()
    assert httpx.get(dev.url + "/ui/static/..%2Fpages.py").status_code == 404
    assert httpx.get(dev.url + "/ui/static/nothing.js").status_code == 404


def test_the_fleet_card_shows_a_lagging_replica_from_the_cluster_registry(
    dev: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = {
        "replicas": [
            {"id": "a", "address": "10.0.0.1:8080", "last_seen": "2026-01-01T00:00:00Z", "age_s": 0.2,
             "status": "ok", "lag": [], "version": 3, "self": True},
            {"id": "b", "address": "10.0.0.2:8080", "last_seen": "2026-01-01T00:00:00Z", "age_s": 4.5,
             "status": "lagging", "lag": ["scope all: serves 2, the store publishes 3"], "version": 2, "self": False},
        ],
        "redis": {"url": "redis://127.0.0.1:6379/0", "status": "up"},
        "listen": "listening",
        "agreed": False,
    }
    monkeypatch.setattr(data, "_cluster_function", lambda: (lambda _state: fleet))
    client = login(dev, name="fay")
    page = client.get("/ui/live/overview").text
    card = page[page.index('id="fleet-h"'):]
    assert "lagging" in card and "scope all: serves 2, the store publishes 3" in card and "4.5 s" in card
    assert 'data-replica="b"' in card and "Redis: up" in card and "no fleet registry" not in card


def test_a_review_draft_is_listed_with_what_it_changes(dev: Service) -> None:
    raw = _secret_bundle()
    raw["policies"]["triage-agent-intake"]["primary"] = "triage-v3"
    raw["policies"]["triage-agent-intake"]["fallbacks"] = ["triage-v2"]
    raw["policies"]["triage-agent-intake"]["description"] = "review r1: task class intake triage-v2 -> triage-v3"
    up = api(dev, "routeguard:review").post("/v1/policies", json={"config": raw, "label": "review-r1"})
    assert up.status_code == 201, up.text
    client = login(dev, name="rae")
    page = client.get("/ui/reviews").text
    assert f"Version {up.json()['version']}" in page
    assert "triage-agent-intake: review r1: task class intake triage-v2 -&gt; triage-v3" in page


def test_a_claimed_entry_is_resolved_only_by_its_claimant(dev: Service) -> None:
    entry = dev.state.store.queue.put("clinical-humans", "triage-agent", "trace-claim", {"agent": "triage-agent"})
    ann, ben = login(dev, name="ann"), login(dev, name="ben")
    assert ann.post(f"/ui/queue/{entry}/claim", data={"csrf": csrf_of(ann)}).status_code == 303
    taken = ben.post(f"/ui/queue/{entry}/claim", data={"csrf": csrf_of(ben)})
    assert taken.status_code == 409 and "already claimed by" in taken.text and "ann" in taken.text
    refused = ben.post(f"/ui/queue/{entry}/resolve", data={"csrf": csrf_of(ben), "resolution": "mine"})
    assert refused.status_code == 409
    empty = ann.post(f"/ui/queue/{entry}/resolve", data={"csrf": csrf_of(ann), "resolution": " "})
    assert empty.status_code == 422 and "resolution: required" in empty.text
    done = ann.post(f"/ui/queue/{entry}/resolve", data={"csrf": csrf_of(ann), "resolution": "called back"})
    assert done.status_code == 303
    assert dev.state.store.queue.get(entry).resolved_by == "ann"
    again = ann.post(f"/ui/queue/{entry}/resolve", data={"csrf": csrf_of(ann), "resolution": "twice"})
    assert again.status_code == 409
