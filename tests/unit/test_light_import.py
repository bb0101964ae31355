"""`import routeguard` and `Router.from_file` need only the base install (PyYAML): no web, database, numeric or
CLI library is imported (CONTRACT §8), so `pip install routeguard` is enough for the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "clinical-triage.yaml"
HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "numpy", "sklearn", "matplotlib",
         "redis", "pydantic", "httpx", "httptools", "typer", "rich", "prometheus_client", "opentelemetry")

SCRIPT = f"""
import json, sys
from routeguard import Router
router = Router.from_file({str(EXAMPLE)!r})
decision = router.decide({{"agent": "triage-agent", "taskType": "triage", "dataClass": "restricted"}})
router.report({{"model": "triage-v3", "ok": True, "latency_ms": 40}})
print(json.dumps({{"model": decision.model, "loaded": sorted({{m.split(".")[0] for m in sys.modules}})}}))
"""


def test_the_library_path_imports_nothing_heavy() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(out.stdout)
    assert result["model"] == "triage-v3"
    assert sorted(set(result["loaded"]) & set(HEAVY)) == []


def test_the_base_install_declares_pyyaml_only() -> None:
    import tomllib

    project = tomllib.loads((EXAMPLE.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert [d.split(">")[0].split("=")[0] for d in project["dependencies"]] == ["pyyaml"]
    extras = project["optional-dependencies"]
    assert {"server", "cli", "http", "charts", "review", "cluster", "all", "dev"} <= set(extras)
    assert any(d.startswith("fastapi") for d in extras["server"])
