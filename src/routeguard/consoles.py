"""Rich consoles for every command (the CLI, the simulator, the review loop): one place, no import of the CLI.

Piped output (not a terminal, no COLUMNS) gets a wide soft-wrapping console, so paths and ids are never broken
mid-word in logs and CI output.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

__all__ = ["PIPE_WIDTH", "make_console"]

PIPE_WIDTH = 160


def make_console(stderr: bool = False) -> Console:
    """A Console for stdout (or stderr) that does not break words when its stream is not a terminal."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    if piped:
        return Console(stderr=stderr, soft_wrap=True, width=PIPE_WIDTH)
    return Console(stderr=stderr)
