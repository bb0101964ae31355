"""The key table of the bundle reference (`docs/bundle.md`), generated from the JSON Schema.

`routeguard schema --markdown` prints it; a test checks that the table in `docs/bundle.md` is exactly this output,
so the reference cannot drift from what the loader accepts. Hand-written: a walk over our own schema dict (objects,
maps of named entries, lists, `anyOf` alternatives); no generic JSON-Schema-to-Markdown tool reads it as we want.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from routeguard.config.schema import bundle_schema

__all__ = ["key_rows", "markdown_table"]


def _kind(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "anyOf" in node:
        kinds = [_kind(alt) for alt in node["anyOf"]]
        if node.get("description", "").startswith("a duration"):
            return "duration"
        return " or ".join(dict.fromkeys(kinds))
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_kind(node.get('items', {}))}"
    if kind == "object" and "properties" not in node:
        return "map"
    return str(kind)


def _walk(node: dict[str, Any], path: str, required: bool) -> Iterator[tuple[str, str, bool, str, str]]:
    if path:
        default = json.dumps(node["default"]) if "default" in node else ""
        kind = _kind(node)
        yield path, kind, required, default, "" if kind == "duration" else node.get("description", "")
    for alt in node.get("anyOf", []):
        if alt.get("type") == "object":
            yield from _children(alt, path)
        elif alt.get("type") == "array" and alt.get("items", {}).get("type") == "object":
            yield from _children(alt["items"], f"{path}[]")
    if node.get("type") == "object":
        yield from _children(node, path)
    if node.get("type") == "array":
        items = node.get("items", {})
        for alt in (items, *items.get("anyOf", [])):
            if alt.get("type") == "object":
                yield from _children(alt, f"{path}[]")


def _children(node: dict[str, Any], path: str) -> Iterator[tuple[str, str, bool, str, str]]:
    required = set(node.get("required", []))
    for key, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{key}" if path else key, key in required)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") == "object" and "properties" in extra:
        yield from _children(extra, f"{path}.<name>")


def key_rows() -> list[tuple[str, str, bool, str, str]]:
    """(key path, kind, required, default, description) for every key the bundle accepts, schema order."""
    seen: dict[str, tuple[str, str, bool, str, str]] = {}
    for row in _walk(bundle_schema(), "", False):
        seen.setdefault(row[0], row)
    return list(seen.values())


def markdown_table() -> str:
    lines = ["| key | kind | required | default | notes |", "|---|---|---|---|---|"]
    for path, kind, required, default, note in key_rows():
        cells = [f"`{path}`", kind, "yes" if required else "", f"`{default}`" if default else "", note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") if i != 1 else c for i, c in enumerate(cells)) + " |")
    return "\n".join(lines) + "\n"
