"""Shared console helpers for the CLI.

When output is piped (not a terminal) and ``COLUMNS`` is unset, Rich would wrap at 80 columns and cut paths and
hashes mid-word; piped consoles therefore do not soft-wrap text and render tables at a generous width.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from routeguard.consoles import PIPE_WIDTH, make_console

__all__ = ["PIPE_WIDTH", "console", "err_console", "make_console", "print_json"]

console = make_console()
err_console = make_console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
