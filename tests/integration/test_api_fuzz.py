"""Schemathesis against the running service's own `/openapi.json` (issue 13): whatever it sends, no 5xx,
every status and body as documented, every error in the contract's shape.

Bounded for CI (`ROUTEGUARD_FUZZ_EXAMPLES`, default 8 per operation, and `ROUTEGUARD_FUZZ_SECONDS`,
default 45); `make fuzz` runs it longer. The proxy endpoints are left out: they call upstream models.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.service import EXAMPLE, Service, run_service

TESTS = Path(__file__).resolve().parents[1]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,error_shape"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    db = tmp_path_factory.mktemp("fuzz") / "store.db"
    with run_service(f"sqlite:///{db}", config=EXAMPLE) as service:
        yield service


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(svc: Service, tmp_path: Path) -> None:
    examples = os.environ.get("ROUTEGUARD_FUZZ_EXAMPLES", "8")
    seconds = os.environ.get("ROUTEGUARD_FUZZ_SECONDS", "45")
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{svc.url}/openapi.json",
        "--checks", CHECKS, "--max-examples", examples, "--max-time", seconds, "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--exclude-path-regex", "^/v1/(chat|embeddings|responses)",
        "--suppress-health-check", "all", "--request-timeout", "20",
        "--seed", os.environ.get("ROUTEGUARD_FUZZ_SEED", "13"),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "support.st_hooks", "PYTHONPATH": str(TESTS), "NO_COLOR": "1"}
    result = subprocess.run(  # in a temporary directory: schemathesis keeps a cache where it runs
        command, capture_output=True, text=True, env=env, timeout=int(seconds) + 240, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
