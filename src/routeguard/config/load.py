"""Load a bundle from YAML or JSON, with errors that name the file, the key path and (for YAML) the line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from routeguard.config.limits import MAX_BUNDLE_BYTES, check_data, check_text, check_yaml_events
from routeguard.core.findings import BundleError, Finding
from routeguard.core.model import Bundle
from routeguard.core.parse import parse_bundle
from routeguard.core.table import content_hash

__all__ = ["LoadedBundle", "load_bundle", "load_raw", "parse_text"]


@dataclass(frozen=True, slots=True)
class LoadedBundle:
    bundle: Bundle
    raw: dict[str, Any]
    content_hash: str
    source: str | None
    text: str | None = None  # the YAML text, kept to find lines only when a finding needs one

    @property
    def lines(self) -> dict[str, int]:
        return yaml_lines(self.text) if self.text else {}

    def locate(self, findings: list[Finding]) -> list[Finding]:
        """``findings`` with the file and, for YAML, the line of their key path filled in."""
        if not findings:
            return findings
        line_of = _line_lookup(self.lines)
        return [
            replace(f, line=f.line if f.line is not None or line_of is None else line_of(f.path), source=self.source)
            for f in findings
        ]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's when available) that keeps dates as ISO strings so bundles round-trip through JSON."""


# YAML 1.1 reads `on`, `off`, `yes`, `no` as booleans, which would turn the `on:` key of a fallback into True.
# Only `true` and `false` are booleans here, as in YAML 1.2 and JSON.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),
)


def load_raw(path: str | Path) -> dict[str, Any]:
    """The plain data of a bundle file (no checks)."""
    return parse_text(Path(path).read_text(encoding="utf-8"), source=str(path))[0]


def parse_text(text: str, source: str | None = None) -> tuple[dict[str, Any], str | None]:
    """Plain data from YAML or JSON text, and the YAML text (for line lookups); BundleError on syntax errors
    and on text past the limits of `routeguard.config.limits` (checked before anything is expanded)."""
    check_text(text, source)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        except json.JSONDecodeError as exc:
            raise BundleError(
                [Finding("schema", "", f"invalid JSON: {exc.msg}", line=exc.lineno, source=source)]
            ) from exc
        except (RecursionError, ValueError) as exc:
            raise BundleError([Finding("schema", "", f"invalid JSON: {_short(exc)}", source=source)]) from exc
        check_data(data, source)
        return _expect_mapping(data, source), None
    try:
        check_yaml_events(yaml.parse(text, Loader=_Loader), source)
        data = yaml.load(text, Loader=_Loader)
    except BundleError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise BundleError([Finding("schema", "", f"invalid YAML: {problem}", line=line, source=source)]) from exc
    except (RecursionError, ValueError, TypeError) as exc:  # a value YAML accepts but a bundle cannot hold
        raise BundleError([Finding("schema", "", f"invalid YAML: {_short(exc)}", source=source)]) from exc
    check_data(data, source)
    return _expect_mapping(data, source), text


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range for a number")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply (at most 64 levels)"
    return str(exc)[:200]


def yaml_lines(text: str) -> dict[str, int]:
    """Key path → line for YAML text (composed again: only needed when a finding is reported)."""
    lines: dict[str, int] = {}
    node = yaml.compose(text, Loader=_Loader)
    if node is not None:
        _collect_lines(node, "", lines)
    return lines


def load_bundle(source: str | Path | Mapping[str, Any]) -> LoadedBundle:
    """A bundle from a file path, YAML/JSON text or plain data; raises BundleError listing every finding."""
    name: str | None = None
    text: str | None = None
    if isinstance(source, Mapping):
        check_data(source)
        raw = dict(source)
    elif isinstance(source, Path) or ("\n" not in source and not source.lstrip().startswith("{")):
        path = Path(source)
        name = str(path)
        try:
            if path.stat().st_size > MAX_BUNDLE_BYTES:
                message = f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes"
                raise BundleError([Finding("schema", "", message, source=name)])
            content = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            message = f"{path} is not valid UTF-8 (byte {exc.start})"
            raise BundleError([Finding("schema", "", message, source=name)]) from exc
        except OSError as exc:
            raise BundleError([Finding("schema", "", f"cannot read {path}: {exc.strerror}", source=name)]) from exc
        raw, text = parse_text(content, source=name)
    else:
        raw, text = parse_text(source)
    bundle = parse_bundle(raw, line_of=_lazy_line_of(text), source=name)
    return LoadedBundle(bundle=bundle, raw=raw, content_hash=content_hash(raw), source=name, text=text)


def _lazy_line_of(text: str | None) -> Any:
    if not text:
        return None
    cache: list[Any] = []

    def line_of(path: str) -> int | None:
        if not cache:
            cache.append(_line_lookup(yaml_lines(text)))
        lookup = cache[0]
        return lookup(path) if lookup is not None else None

    return line_of


def _expect_mapping(data: object, source: str | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BundleError([Finding("schema", "", "a bundle must be a mapping at the top level", source=source)])
    return data


def _collect_lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            out[child] = key_node.start_mark.line + 1
            _collect_lines(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(item, f"{path}[{i}]", out)


def _line_lookup(lines: dict[str, int]) -> Any:
    if not lines:
        return None

    def line_of(path: str) -> int | None:
        probe = path
        while probe:
            if probe in lines:
                return lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None

    return line_of
