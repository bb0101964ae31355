"""The operator's secrets bindings and egress allow-list (`routeguard serve --secrets FILE --allow-egress
HOSTS`), read into the plain `EgressRules` the core checks bundles with.

The secrets file is YAML, `NAME: [host, …]`: the environment variable NAME may be sent (as an
`api_key_env`, or through `${NAME}` in a notifier URL or header) to those hosts only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from routeguard.core.egress import EgressRules

__all__ = ["SecretsFileError", "egress_rules", "load_secrets", "parse_allow_egress"]


class SecretsFileError(ValueError):
    """An unreadable or malformed secrets file (the CLI exits 2)."""


def load_secrets(path: Path) -> dict[str, frozenset[str]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SecretsFileError(f"--secrets {path}: cannot be read: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SecretsFileError(f"--secrets {path}: expected a mapping NAME: [host, ...]")
    out: dict[str, frozenset[str]] = {}
    for name, hosts in data.items():
        if isinstance(hosts, str):
            hosts = [hosts]
        if not isinstance(name, str) or not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise SecretsFileError(f"--secrets {path}: {name!r}: expected a list of host names")
        out[name] = frozenset(h.strip().lower() for h in hosts if h.strip())
    return out


def parse_allow_egress(values: Iterable[str]) -> frozenset[str]:
    """`--allow-egress` values: hosts, addresses or networks, comma- or space-separated, repeatable."""
    out: set[str] = set()
    for value in values:
        out.update(part.strip().lower().strip("[]") for part in value.replace(",", " ").split() if part.strip())
    return frozenset(out)


def egress_rules(secrets_file: Path | None, allow: Iterable[str], *, loopback: bool) -> EgressRules:
    """The rules a service applies: bindings from the file; without one, any binding on loopback only."""
    secrets = load_secrets(secrets_file) if secrets_file is not None else None
    return EgressRules(secrets=secrets, open_secrets=loopback, allow=parse_allow_egress(allow))
