"""Fixtures for integration tests: a real fake-upstream HTTP server on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # make ``support`` importable without tests/__init__.py
    sys.path.insert(0, _TESTS)

from support.upstream import UpstreamServer  # noqa: E402


@pytest.fixture(scope="session")
def upstream_session() -> Iterator[UpstreamServer]:
    server = UpstreamServer().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_session: UpstreamServer) -> Iterator[UpstreamServer]:
    """The shared fake upstream, with behaviours and recorded requests reset for each test."""
    upstream_session.reset()
    yield upstream_session
    upstream_session.reset()
