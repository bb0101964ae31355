"""Every README command block marked `<!-- runnable -->` runs as written and prints what the README shows.

In a runnable block, each command (with `\\` continuations) is run by bash from the repository root, with the
test's own environment first on PATH (so `.venv/bin/routeguard` and a bare `routeguard` both mean the installed
one). The `# ` lines under a command are its sample output: each must appear, in order, among the lines it printed
(stdout and stderr), whitespace-insensitive, `…` matching any text. A command must exit 0 unless its sample says
`# (exit N)`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- runnable -->"


@dataclass
class Command:
    line: int
    text: str
    expected: list[str] = field(default_factory=list)


def runnable_commands(readme: str) -> list[Command]:
    commands: list[Command] = []
    lines = readme.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        assert lines[i + 1].startswith("```"), f"README line {i + 1}: {MARKER} must precede a code block"
        j, pending = i + 2, ""
        while not lines[j].startswith("```"):
            row = lines[j]
            if row.startswith("# ") or row == "#":
                commands[-1].expected.append(row[2:])
            elif row.strip():
                pending += row.rstrip("\\") + " " if row.endswith("\\") else row
                if not row.endswith("\\"):
                    commands.append(Command(j + 1, pending))
                    pending = ""
            j += 1
    return commands


def _pattern(sample: str) -> re.Pattern[str]:
    parts = [re.escape(" ".join(p.split())) for p in sample.split("…")]
    return re.compile("^" + ".*".join(parts) + "$")


def _normalized(output: str) -> list[str]:
    return [" ".join(line.split()) for line in output.splitlines()]


COMMANDS = runnable_commands((REPO / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_runnable_blocks() -> None:
    assert len(COMMANDS) >= 4 and all(c.expected for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"line{c.line}" for c in COMMANDS])
def test_a_runnable_readme_command_prints_its_sample(command: Command) -> None:
    bindir = str(Path(sys.executable).parent)
    text = command.text.replace(".venv/bin/", bindir + "/")
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("COLUMNS", None)
    result = subprocess.run(["bash", "-c", text], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    exit_sample = next((int(m.group(1)) for e in command.expected if (m := re.match(r"\(exit (\d+)\)", e))), 0)
    assert result.returncode == exit_sample, f"README line {command.line}: {result.stderr[-2000:]}"
    got = _normalized(result.stdout + "\n" + result.stderr)
    at = 0
    for sample in (e for e in command.expected if not e.startswith("(exit ")):
        pattern = _pattern(sample)
        while at < len(got) and not pattern.match(got[at]):
            at += 1
        assert at < len(got), f"README line {command.line}: {sample!r} not printed (in order); got:\n" + "\n".join(got)
        at += 1
