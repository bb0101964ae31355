"""The console's browser tests: principals and tokens, the bundle they serve, a logged-in browser context."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.service import Service, bundle

__all__ = ["ARTIFACTS", "CHROMIUM", "SECRET_HOOK", "TOKENS", "VIEWPORT", "Console", "console_bundle", "token"]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
VIEWPORT = {"width": 1366, "height": 860}  # a laptop screen
SECRET_HOOK = "http://127.0.0.1:9/services/T0001/B0002/hook-secret-path-xyz?key=query-secret"

TOKENS = {
    "alice": ("alice-token-0123456789", ["author", "viewer"]),
    "bob": ("bob-token-0123456789", ["approver", "viewer"]),
    "olga": ("olga-token-0123456789", ["operator", "viewer"]),
    "victor": ("victor-token-0123456789", ["viewer"]),
    "rita": ("rita-token-0123456789", ["router"]),
}


def token(name: str) -> str:
    return TOKENS[name][0]


def console_bundle(base_url: str) -> dict[str, Any]:
    """The clinical example, every model on the fake upstream, a notifier URL whose path is a secret."""
    raw = bundle()
    for model in raw["models"].values():
        model["endpoint"] = {"type": "openai", "base_url": base_url, "model": model["endpoint"]["model"]}
    raw["notifiers"] = {"governance": {"type": "webhook", "url": SECRET_HOOK}}
    raw.pop("safe_mode", None)  # no automatic safe mode: the tests switch it themselves
    return raw


class Console:
    """One logged-in browser context on the console."""

    def __init__(self, browser: Any, svc: Service, name: str) -> None:
        self.svc = svc
        self.name = name
        self.context = browser.new_context(viewport=VIEWPORT, base_url=svc.url)
        self.page = self.context.new_page()
        self.errors: list[str] = []  # browser console errors (a CSP violation, a failed script) and page errors
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("response", self._response)
        self.page.set_default_timeout(5000)
        self.page.goto("/ui")
        assert "/ui/login" in self.page.url  # no session: the login form
        self.page.get_by_label("API token").fill(TOKENS[name][0])
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(re.compile(r".*/ui$"))
        assert name in self.page.locator("header .who").inner_text()

    def _console(self, msg: Any) -> None:
        # a refused page (403) is logged as a failed load too: statuses are checked by the tests, assets below
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(msg.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400 and ("/ui/static/" in response.url or "/ui/live/" in response.url):
            self.errors.append(f"{response.status} {response.url}")

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def session_cookie(self) -> str:
        cookies = {c["name"]: c["value"] for c in self.context.cookies()}
        return cookies["rg_session"]

    def csrf(self) -> str:
        value = self.page.locator("input[name=csrf]").first.get_attribute("value")
        assert value
        return value

    def close(self) -> None:
        self.context.close()
