"""Browser tests of the operator console: Playwright driving Debian's Chromium (`apt-get install chromium`).

Without /usr/bin/chromium (or the `playwright` package) the tests are skipped, unless
ROUTEGUARD_REQUIRE_SERVICES=1, where they fail (CI installs Chromium in `.ci/run`). One service (the clinical
example pointed at a local fake upstream, with tokens for four principals) serves the whole module.
Screenshots go to tests/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from support.console import ARTIFACTS, CHROMIUM, TOKENS, Console, console_bundle
from support.service import Service, run_service, write_bundle
from support.services import services_required
from support.upstream import UpstreamServer, upstream_server

CHROMIUM_PATH = os.environ.get("ROUTEGUARD_CHROMIUM", CHROMIUM)


def _unavailable(message: str) -> NoReturn:
    if services_required():
        pytest.fail(f"{message} (ROUTEGUARD_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"{message} (set ROUTEGUARD_REQUIRE_SERVICES=1 to fail instead)")


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with upstream_server() as up:
        yield up


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("console")
    auth = tmp / "auth.yaml"
    auth.write_text(
        "".join(f"- {{name: {n}, token: {t}, roles: [{', '.join(r)}]}}\n" for n, (t, r) in TOKENS.items()),
        encoding="utf-8",
    )
    config = write_bundle(tmp / "bundle.yaml", console_bundle(upstream.base_url))
    with run_service(f"sqlite:///{tmp / 'store.db'}", config=config, auth_file=auth) as service:
        yield service


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the `playwright` package is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM_PATH).exists():
        _unavailable(f"no Chromium at {CHROMIUM_PATH} (apt-get install -y chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console(browser: Any, svc: Service) -> Iterator[Any]:
    opened: list[Console] = []

    def open_as(name: str) -> Console:
        c = Console(browser, svc, name)
        opened.append(c)
        return c

    yield open_as
    errors = [f"{c.name}: {e}" for c in opened for e in c.errors]
    for c in opened:
        c.close()
    assert not errors, errors  # no CSP violation, no script error, on any page visited
