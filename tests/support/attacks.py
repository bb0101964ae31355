"""Inputs from the security review (issue 13, D1–D9), shared by the regression tests and `bench/soak.py`."""

from __future__ import annotations

import itertools

__all__ = ["deep_json", "deep_yaml", "lol_bomb", "self_alias"]


def lol_bomb(levels: int = 9, width: int = 9) -> str:
    """The ~700-byte "billion laughs" bundle: each level is `width` aliases of the one before (9^9 strings)."""
    names = [f"l{i}" for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * width)}]")
    lines.append("models: {}")
    return "\n".join(lines) + "\n"


def self_alias() -> str:
    """A mapping that contains an alias of itself (was a RecursionError and a 500)."""
    return "models: &a {x: *a}\nprofiles: {}\npolicies: {}\n"


def deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


def deep_yaml(depth: int = 100) -> str:
    return "models: " + "[" * depth + "]" * depth + "\n"
