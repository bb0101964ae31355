"""The operator console in a real browser (CONTRACT §9): live health, safe mode, four-eyes publishing,
the human queue, and a viewer who can act on nothing. Each test saves screenshots of the views it visits.

The tests share one service and run in file order: the outage of the first one is what the timeline and
the model page show afterwards.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from playwright.sync_api import expect

from support.console import SECRET_HOOK, Console, console_bundle, token
from support.service import Service
from support.upstream import UpstreamServer, ok, overloaded

CHAT = {
    "model": "triage-agent",
    "messages": [{"role": "user", "content": "chest pain, 54 years old"}],
    "metadata": {"task_type": "triage", "data_class": "restricted", "region": "eu-west-2"},
}


def api(svc: Service, name: str) -> httpx.Client:
    return svc.client(token=token(name))


def _serving(page: Any, policy: str, scope: str = "all") -> Any:
    return page.locator(f'tr[data-policy="{policy}"][data-scope="{scope}"] td.serving')


def test_outage_on_the_upstream_shows_on_the_overview_within_2s(
    console: Any, svc: Service, upstream: UpstreamServer
) -> None:
    victor: Console = console("victor")
    page = victor.page
    expect(_serving(page, "triage-agent")).to_contain_text("triage-v3")
    expect(page.locator('tr[data-model="triage-v3"]')).to_have_attribute("data-worst", "healthy")
    page.evaluate("window.__noReload = true")
    victor.shot("overview-healthy")

    upstream.set("triage-v3", overloaded())  # the outage: every call answers 503
    with api(svc, "rita") as client:
        for _ in range(4):  # each call fails on triage-v3 (retried) and falls back to triage-v2
            r = client.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200 and r.headers["x-routeguard-model"] == "triage-v2"
    began = time.monotonic()
    expect(page.locator('tr[data-model="triage-v3"]')).to_have_attribute("data-worst", "unhealthy", timeout=2000)
    expect(_serving(page, "triage-agent")).to_contain_text("triage-v2", timeout=2000)
    elapsed = time.monotonic() - began
    print(f"outage visible on the overview {elapsed:.2f} s after the last failed call")
    assert elapsed < 2.0
    assert page.evaluate("window.__noReload") is True  # updated in place, no reload
    victor.shot("overview-outage")

    page.get_by_role("link", name="Routing changes").click()
    row = page.locator("#timeline-live tbody tr").first
    expect(row).to_contain_text("triage-v3")
    expect(row).to_contain_text("triage-v2")
    expect(row).to_contain_text("approved")  # the verification of the change
    victor.shot("timeline")

    page.goto("/ui/models/triage-v3")
    expect(page.locator("#model-live")).to_contain_text("unhealthy")
    victor.shot("model-detail")
    upstream.set("triage-v3", ok())


def test_an_operator_engages_safe_mode_from_the_page(console: Any, svc: Service) -> None:
    olga: Console = console("olga")
    page = olga.page
    expect(page.locator("#safe-mode-banner")).to_contain_text("off")
    page.get_by_label("Reason").fill("suspected data leak at a provider")
    page.keyboard.press("Tab")  # by keyboard: the next stop after the reason is the engage button
    assert page.evaluate("document.activeElement.textContent.trim()") == "Engage safe mode"
    page.keyboard.press("Enter")
    expect(page.locator("#safe-mode-banner")).to_contain_text("ON")
    expect(page.get_by_role("status")).to_contain_text("Safe mode engaged globally")
    olga.shot("overview-safe-mode")
    with api(svc, "olga") as client:
        state = client.get("/v1/safe-mode").json()
        assert state["enabled"] is True
        assert state["global"]["by"] == "olga"
        assert state["global"]["reason"] == "suspected data leak at a provider"
        audit = client.get("/v1/audit", params={"kind": "safe_mode"}).json()["records"]
    page.get_by_role("button", name="Release safe mode").click()
    expect(page.locator("#safe-mode-banner")).to_contain_text("off")
    with api(svc, "olga") as client:
        assert client.get("/v1/safe-mode").json()["enabled"] is False
    assert audit[-1]["actor"] == "olga"


def test_author_uploads_another_approves_and_publishes_to_a_tenant(
    console: Any, svc: Service, upstream: UpstreamServer, tmp_path: Path
) -> None:
    raw = console_bundle(upstream.base_url)
    raw["policies"]["triage-agent"]["timeout"] = "20s"
    alice: Console = console("alice")
    page = alice.page
    page.get_by_role("link", name="Policies").click()
    page.get_by_label("Label").fill("shorter timeout for acme")
    bundle_file = tmp_path / "candidate.yaml"
    bundle_file.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    page.get_by_label("Load the bundle from a file").set_input_files(str(bundle_file))  # read into the form
    expect(page.get_by_label("Bundle (YAML or JSON)")).to_have_value(re.compile("timeout: 20s"))
    page.get_by_role("button", name="Upload as draft").click()
    flash = page.get_by_role("status")
    expect(flash).to_contain_text("Stored as version")
    version = int(re.search(r"version (\d+)", flash.inner_text()).group(1))  # type: ignore[union-attr]
    alice.shot("policies")

    page.goto(f"/ui/policies/{version}")
    expect(page.locator("pre.diff")).to_contain_text("timeout: 20s")
    assert SECRET_HOOK not in page.content() and "hook-secret-path" not in page.content()
    expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)  # the author: four eyes
    csrf = alice.csrf()
    forged = page.request.post(f"/ui/policies/{version}/approve", form={"csrf": csrf})
    assert forged.status == 403  # alice lacks the approver role
    alice.shot("version-author")

    bob: Console = console("bob")
    page = bob.page
    page.goto(f"/ui/policies/{version}")
    page.get_by_label("Comment").fill("reviewed with clinical governance")
    page.get_by_role("button", name=f"Approve version {version}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Version {version} approved by bob")
    page.get_by_role("radio", name="named tenants").check()
    page.get_by_label("Tenants (comma-separated").fill("acme")
    page.get_by_role("button", name=f"Publish version {version}").click()
    expect(page.get_by_role("status")).to_contain_text("published to tenants:acme")
    bob.shot("version-published")

    with api(svc, "victor") as client:
        pv = client.get(f"/v1/policies/{version}").json()
        assert pv["author"] == "alice"
        assert [a["approver"] for a in pv["approvals"]] == ["bob"]
        assert pv["scopes"] == [{"tenants": ["acme"]}]
        records = client.get("/v1/audit", params={"kind": "policy.published"}).json()["records"]
        assert records[-1]["actor"] == "bob"
    page.goto("/ui")
    expect(_serving(page, "triage-agent", "tenants:acme")).to_be_visible()

    olga: Console = console("olga")  # an operator ends acme's staged publication from the page
    olga.page.goto("/ui/policies")
    olga.page.get_by_label("Tenant").fill("acme")
    olga.page.get_by_role("button", name="Return tenant to stable").click()
    expect(olga.page.get_by_role("status")).to_contain_text("Tenant acme returned to version 1")
    with api(svc, "victor") as client:
        assert client.get(f"/v1/policies/{version}").json()["scopes"] == []


def test_a_queue_entry_is_claimed_and_resolved(console: Any, svc: Service) -> None:
    entry = svc.state.store.queue.put("clinical-humans", "triage-agent", "trace-ui-1", {**CHAT, "tenant": "acme"})
    olga: Console = console("olga")
    page = olga.page
    page.get_by_role("link", name="Human queue").click()
    row = page.locator(f'tr[data-entry="{entry}"]')
    expect(row).to_be_visible()
    olga.shot("queue")
    row.get_by_role("button", name=f"Claim entry {entry}").click()
    expect(page.locator("#claimed-by")).to_have_text("olga")
    page.get_by_label("Resolution").fill("triaged by the nurse on call")
    page.get_by_role("button", name=f"Resolve entry {entry}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Entry {entry} resolved by olga")
    olga.shot("queue-resolved")
    with api(svc, "olga") as client:
        done = client.get("/v1/queue", params={"status": "resolved"}).json()["entries"]
        mine = [e for e in done if e["id"] == entry]
        assert mine and mine[0]["resolved_by"] == "olga"
        assert mine[0]["resolution"]["resolution"] == "triaged by the nurse on call"
        kinds = [(r["kind"], r["actor"]) for r in client.get("/v1/audit").json()["records"]]
    assert ("queue.claimed", "olga") in kinds and ("queue.resolved", "olga") in kinds


def test_a_viewer_sees_no_actions_and_forged_posts_are_refused(console: Any, svc: Service) -> None:
    victor: Console = console("victor")
    page = victor.page
    page.locator("#model-triage-v2").focus()  # keyboard focus inside the live part survives its refreshes
    page.wait_for_timeout(2500)
    assert page.evaluate("document.activeElement.id") == "model-triage-v2"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ui/models/triage-v2$"))
    for path in ("/ui", "/ui/policies", "/ui/policies/1", "/ui/timeline"):
        page.goto(path)
        buttons = [b.strip() for b in page.get_by_role("button").all_inner_texts()]
        assert set(buttons) <= {"Log out", "Show", "Compare"}, (path, buttons)
    page.goto("/ui/queue")
    expect(page.get_by_role("alert")).to_contain_text("operator")
    victor.shot("viewer-queue-refused")

    session, csrf = victor.session_cookie(), victor.csrf()
    form = {"enabled": "true", "reason": "forged"}
    with httpx.Client(base_url=svc.url) as raw:
        assert raw.post("/ui/safe-mode", data={**form, "csrf": csrf}).status_code == 403  # no session
        raw.cookies.set("rg_session", session, path="/ui")
        assert raw.post("/ui/safe-mode", data=form).status_code == 403  # no CSRF token
        assert raw.post("/ui/safe-mode", data={**form, "csrf": "x" * 43}).status_code == 403  # a wrong one
        assert raw.post("/ui/safe-mode", data={**form, "csrf": csrf}).status_code == 403  # a viewer
        assert raw.post("/ui/policies/1/publish", data={"csrf": csrf, "scope": "all"}).status_code == 403
    with api(svc, "olga") as client:
        assert client.get("/v1/safe-mode").json()["enabled"] is False
