"""Shared console helpers for the CLI.

When output is piped (not a terminal) and ``COLUMNS`` is unset, Rich would wrap at 80 columns and cut paths and
hashes mid-word; piped consoles therefore do not soft-wrap text and render tables at a generous width.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from rich.console import Console

__all__ = ["PIPE_WIDTH", "console", "err_console", "make_console", "print_json"]

PIPE_WIDTH = 160


def make_console(stderr: bool = False) -> Console:
    """A Console for stdout (or stderr) that does not break words when its stream is not a terminal."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    if piped:
        return Console(stderr=stderr, soft_wrap=True, width=PIPE_WIDTH)
    return Console(stderr=stderr)


console = make_console()
err_console = make_console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
