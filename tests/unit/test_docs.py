"""The repository stands on its own: reference docs match the code, and nothing points outside the checkout."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from routeguard.config.schema_doc import key_rows, markdown_table

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
OUTSIDE = re.compile(r"\.\./shared|/work/shared|\bshared/data\b|\bshared/CONTRACT|\bshared/DESIGN")


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): walk the tree
        out = [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file() and ".venv" not in p.parts]
    keep = {".md", ".py", ".yaml", ".yml", ".toml", ".json", ".txt", ".cfg", ""}
    return [REPO / p for p in out if Path(p).suffix in keep and (REPO / p).is_file()]


def test_the_bundle_reference_table_is_what_routeguard_schema_generates() -> None:
    text = (DOCS / "bundle.md").read_text(encoding="utf-8")
    table = text.split("<!-- keys:begin -->\n", 1)[1].split("<!-- keys:end -->", 1)[0]
    assert table == markdown_table(), "regenerate: routeguard schema --markdown (between the keys markers)"


def test_every_key_the_loader_accepts_is_in_the_reference() -> None:
    paths = {row[0] for row in key_rows()}
    # spot checks that the walk reaches nested objects, lists of objects and maps of named entries
    assert {"policies.<name>.fallbacks[].after", "models.<name>.cost.input_per_1m", "sources.health.url",
            "policies.<name>.match.business_lines", "notifiers.<name>.path"} <= paths


def test_no_file_of_the_repository_points_outside_it() -> None:
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in _tracked_text_files()
        if p.name != "test_docs.py"
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_every_local_link_of_the_readme_and_docs_resolves() -> None:
    broken = []
    for doc in [REPO / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.name} -> {target}")
    assert broken == []


@pytest.mark.parametrize("name", ["bundle", "http-api", "cli", "health", "notifications", "governance"])
def test_the_reference_pages_exist_and_the_readme_links_them(name: str) -> None:
    assert (DOCS / f"{name}.md").is_file()
    assert f"docs/{name}.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_replay_data_ships_with_its_attribution() -> None:
    assert (REPO / "data" / "replay-mmlu-gsm8k.csv.gz").stat().st_size > 1_000_000
    readme = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    assert "RouteLLM" in readme and "Apache-2.0" in readme



def test_every_test_file_the_docs_name_exists() -> None:
    named = {m for doc in DOCS.glob("*.md") for m in re.findall(r"tests/[\w/]+\.py", doc.read_text(encoding="utf-8"))}
    assert named and sorted(p for p in named if not (REPO / p).is_file()) == []
