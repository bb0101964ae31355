"""The ``routeguard`` command line."""

from __future__ import annotations

from routeguard.cli.app import app, main

__all__ = ["app", "main"]
