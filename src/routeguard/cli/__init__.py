"""The ``routeguard`` command line (needs the `cli` extra: Typer and Rich; `serve` needs the `server` extra).

A library-only install (`pip install routeguard`, PyYAML only) that runs `routeguard` gets a one-line hint naming
the extra instead of a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["app", "main"]

try:
    from routeguard.cli.app import app
    from routeguard.cli.app import main as _run
except ModuleNotFoundError as _missing:  # pragma: no cover - only without the `cli` extra
    _MISSING: str | None = _missing.name
else:
    _MISSING = None


def main() -> None:
    if _MISSING is not None:
        sys.stderr.write(
            f"routeguard: the command line needs {_MISSING!r}: pip install 'routeguard[cli]' "
            "(or 'routeguard[server]' to serve)\n"
        )
        raise SystemExit(2)
    _run()
