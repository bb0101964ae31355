"""Refuse a bundle before expanding it: size, node count (aliases included), nesting depth, text encoding.

CONTRACT §1: a bundle larger than 5 MiB, or whose YAML would expand past 100,000 nodes (aliases included)
or 64 levels of nesting, is refused without being expanded. PyYAML builds aliases as shared objects, but
everything after the loader (the content hash, the store's JSON column) walks the expanded tree, so a
700-byte "billion laughs" upload would cost gigabytes there. This module is hand-written because no YAML
library offers expansion limits: it walks libyaml's *event stream* (never the composed graph, never the
constructed objects) and keeps, for every anchor, the size and height its subtree has once expanded; an
alias adds that size where it is used. The walk stops at the first limit passed, so its cost is bounded by
the text, not by what the text would expand to. Expanded scalar text is bounded too (a 1 MiB string
aliased 100,000 times is small as nodes but huge as JSON). Plain data (a JSON body, a parsed JSON text)
gets the same node and depth limits through an iterative walk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from routeguard.core.findings import BundleError, Finding

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_DEPTH",
    "MAX_EXPANDED_TEXT",
    "MAX_NODES",
    "check_data",
    "check_text",
    "check_yaml_events",
]

MAX_BUNDLE_BYTES = 5 * 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_EXPANDED_TEXT = 16 * 1024 * 1024  # characters of scalar text once aliases are expanded


def _refuse(message: str, source: str | None, path: str = "", line: int | None = None) -> BundleError:
    return BundleError([Finding("schema", path, message, line=line, source=source)])


def check_text(text: str, source: str | None = None) -> None:
    """Size and encoding of bundle text: at most 5 MiB of UTF-8, no lone surrogates."""
    if len(text) > MAX_BUNDLE_BYTES:
        raise _refuse(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes", source)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        message = f"the bundle is not valid UTF-8 (a lone surrogate at character {exc.start})"
        raise _refuse(message, source, line=line) from exc
    if size > MAX_BUNDLE_BYTES:
        raise _refuse(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes", source)


@dataclass(slots=True)
class _Open:
    anchor: str | None
    nodes: int = 1
    height: int = 0  # the tallest child so far (expanded)
    chars: int = 0


class _Budget:
    """Running totals of the expanded document; raises at the first limit passed."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.nodes = 0
        self.chars = 0

    def add(self, nodes: int, chars: int, event: yaml.Event) -> None:
        self.nodes += nodes
        self.chars += chars
        if self.nodes > MAX_NODES:
            raise _refuse(
                f"the bundle would expand past {MAX_NODES} YAML nodes (aliases included); refused unexpanded",
                self.source,
                line=_line(event),
            )
        if self.chars > MAX_EXPANDED_TEXT:
            raise _refuse(
                f"the bundle would expand past {MAX_EXPANDED_TEXT} characters of text (aliases included)",
                self.source,
                line=_line(event),
            )


def _line(event: yaml.Event) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def check_yaml_events(events: Iterable[yaml.Event], source: str | None = None) -> None:
    """Walk a YAML event stream; raise BundleError when the expanded document passes a limit.

    Nothing is composed or constructed: each anchor's expanded (nodes, height, chars) is recorded when
    its node ends, and an alias adds them to its parent."""
    stack: list[_Open] = []
    done: dict[str, tuple[int, int, int]] = {}
    budget = _Budget(source)
    for event in events:
        if isinstance(event, yaml.ScalarEvent):
            value = event.value
            if not value.isascii():
                _check_scalar(value, source, event)
            _close_into(stack, done, event.anchor, (1, 1, len(value)))
            budget.add(1, len(value), event)
            if len(stack) + 1 > MAX_DEPTH:
                raise _refuse(f"the bundle nests deeper than {MAX_DEPTH} levels", source, line=_line(event))
        elif isinstance(event, yaml.CollectionStartEvent):
            stack.append(_Open(event.anchor))
            budget.add(1, 0, event)
            if len(stack) > MAX_DEPTH:
                raise _refuse(f"the bundle nests deeper than {MAX_DEPTH} levels", source, line=_line(event))
        elif isinstance(event, yaml.CollectionEndEvent):
            node = stack.pop()
            _close_into(stack, done, node.anchor, (node.nodes, node.height + 1, node.chars))
        elif isinstance(event, yaml.AliasEvent):
            _alias(stack, done, budget, event)


def _alias(stack: list[_Open], done: dict[str, tuple[int, int, int]], budget: _Budget, event: yaml.AliasEvent) -> None:
    anchor = event.anchor or ""
    if any(frame.anchor == anchor for frame in stack):
        raise _refuse(f"the alias *{anchor} refers to a node that contains it (a self-referencing alias)",
                      budget.source, line=_line(event))
    if anchor not in done:
        raise _refuse(f"the alias *{anchor} names no anchor defined before it", budget.source, line=_line(event))
    nodes, height, chars = done[anchor]
    if len(stack) + height > MAX_DEPTH:
        raise _refuse(f"the bundle nests deeper than {MAX_DEPTH} levels (through *{anchor})",
                      budget.source, line=_line(event))
    budget.add(nodes, chars, event)
    _close_into(stack, done, None, (nodes, height, chars))


def _close_into(
    stack: list[_Open], done: dict[str, tuple[int, int, int]], anchor: str | None, size: tuple[int, int, int]
) -> None:
    if anchor is not None:
        done[anchor] = size
    if stack:
        parent = stack[-1]
        parent.nodes += size[0]
        parent.height = max(parent.height, size[1])
        parent.chars += size[2]


def _check_scalar(value: str, source: str | None, event: yaml.Event) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse("a value is not valid UTF-8 (a lone surrogate)", source, line=_line(event)) from exc


def check_data(data: object, source: str | None = None, *, where: str = "the bundle") -> None:
    """Node count, nesting depth, finite numbers and valid text of plain data, walked without recursion."""
    todo: list[tuple[object, int, str]] = [(data, 1, "")]
    nodes = 0
    while todo:
        value, depth, path = todo.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _refuse(f"{where} has more than {MAX_NODES} nodes", source)
        if depth > MAX_DEPTH:
            raise _refuse(f"{where} nests deeper than {MAX_DEPTH} levels", source, path=path)
        if isinstance(value, Mapping):
            for key, item in value.items():
                _check_str(key, source, path, where)
                todo.append((item, depth + 1, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list | tuple):
            todo.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise _refuse(f"{value} is not a number JSON allows", source, path=path)
        elif isinstance(value, str):
            _check_str(value, source, path, where)


def _check_str(value: Any, source: str | None, path: str, where: str) -> None:
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _refuse(f"{where} holds text that is not valid UTF-8 (a lone surrogate)", source, path=path) from exc
