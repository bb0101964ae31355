"""Secrets and egress rules of CONTRACT §1, as pure checks: where a bundle may send data and which secrets
from the server's environment it may attach.

- `api_key_env` and `${VAR}` (in notifier URLs and headers) may name a variable only for a host that the
  operator bound it to (`routeguard serve --secrets FILE`: `NAME: [host, …]`); without that file, any
  binding is accepted when serving on loopback (`open_secrets`) and none otherwise;
- URLs are `http`/`https` (`smtp`/`smtps` for e-mail notifiers);
- link-local and cloud-metadata hosts (169.254.0.0/16, fe80::/10, fd00:ec2::254, metadata.google.internal)
  are refused unless the operator's allow-list (`--allow-egress`) names them.

The rules are plain data handed in by the shell (the core reads no file and no environment); the shell
checks the same rules again at connect time against the resolved address (`refused_address`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from routeguard.core.findings import Finding
from routeguard.core.model import Bundle

__all__ = ["EgressRules", "check_egress", "env_refs", "refused_address", "refused_host", "url_host"]

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_METADATA_IPS = frozenset({ipaddress.ip_address("fd00:ec2::254")})
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.google.internal."})
_WEB = frozenset({"http", "https"})
_MAIL = frozenset({"smtp", "smtps"})


@dataclass(frozen=True, slots=True)
class EgressRules:
    """`secrets`: NAME → hosts it may be sent to (None: no secrets file); `open_secrets`: without a file,
    accept any binding (serving on loopback); `allow`: hosts, addresses or networks let through anyway."""

    secrets: Mapping[str, frozenset[str]] | None = None
    open_secrets: bool = True
    allow: frozenset[str] = field(default_factory=frozenset)

    def secret_allowed(self, name: str, host: str | None) -> bool:
        if self.secrets is None:
            return self.open_secrets
        hosts = self.secrets.get(name)
        return hosts is not None and host is not None and host.lower() in hosts

    def allowed(self, host: str) -> bool:
        host = host.lower().strip("[]")
        if host in self.allow:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        for entry in self.allow:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False


def env_refs(value: str) -> list[str]:
    """The variable names of every `${NAME}` in ``value``."""
    return ENV_REF.findall(value)


def url_host(url: str) -> str | None:
    """The host of ``url`` (lower case, no brackets), or None when it has none or is not a URL."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def refused_address(address: str) -> bool:
    """Whether an IP address is link-local or a cloud metadata address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in _METADATA_IPS or any(ip in net for net in _LINK_LOCAL)


def refused_host(host: str) -> bool:
    """Whether a host name or literal address is one the egress rules refuse by default."""
    host = host.lower().strip("[]")
    return host in _METADATA_NAMES or refused_address(host)


def _url_findings(path: str, url: str, schemes: frozenset[str], rules: EgressRules) -> list[Finding]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [Finding("egress_not_allowed", path, "not a valid URL")]
    del port
    if parts.scheme.lower() not in schemes:
        allowed = "/".join(sorted(schemes))
        return [Finding("egress_not_allowed", path, f"scheme {parts.scheme or '(none)'!r}: only {allowed} URLs")]
    host = (parts.hostname or "").lower()
    if not host:
        return [Finding("egress_not_allowed", path, "the URL names no host")]
    if ENV_REF.search(host):
        return [Finding("secret_not_allowed", path, "a ${VAR} may not stand for the host: it must be written out")]
    if refused_host(host) and not rules.allowed(host):
        return [
            Finding(
                "egress_not_allowed",
                path,
                f"host {host} is link-local or a cloud metadata service; allow it with --allow-egress",
            )
        ]
    return []


def _secret_findings(path: str, names: Iterable[str], host: str | None, rules: EgressRules) -> list[Finding]:
    out: list[Finding] = []
    for name in names:
        if not rules.secret_allowed(name, host):
            where = f"host {host}" if host else "this endpoint"
            why = "no --secrets file binds it" if rules.secrets is None else "the --secrets file does not bind it"
            out.append(Finding("secret_not_allowed", path, f"${{{name}}} may not be sent to {where}: {why} there"))
    return out


def check_egress(bundle: Bundle, rules: EgressRules) -> list[Finding]:
    """Every secrets and egress finding of ``bundle`` under ``rules``."""
    out: list[Finding] = []
    for name, model in bundle.models.items():
        endpoints = [(f"models.{name}.endpoint", model.endpoint)]
        for i, deployment in enumerate(getattr(model, "deployments", ()) or ()):
            endpoint = getattr(deployment, "endpoint", None)
            if endpoint is not None:
                endpoints.append((f"models.{name}.deployments[{i}].endpoint", endpoint))
        for path, endpoint in endpoints:
            base_url = getattr(endpoint, "base_url", None)
            host = url_host(base_url) if base_url else None
            if base_url:
                out.extend(_url_findings(f"{path}.base_url", base_url, _WEB, rules))
            key_env = getattr(endpoint, "api_key_env", None)
            if key_env:
                out.extend(_secret_findings(f"{path}.api_key_env", [key_env], host, rules))
    for name, notifier in bundle.notifiers.items():
        path = f"notifiers.{name}"
        url = notifier.url
        host = url_host(url) if url else notifier.host
        if url:
            out.extend(_url_findings(f"{path}.url", url, _MAIL if notifier.type == "email" else _WEB, rules))
            out.extend(_secret_findings(f"{path}.url", env_refs(url), host, rules))
        elif notifier.host and refused_host(notifier.host) and not rules.allowed(notifier.host):
            out.append(Finding("egress_not_allowed", f"{path}.host", f"host {notifier.host} is link-local or metadata"))
        for key, value in notifier.headers.items():
            out.extend(_secret_findings(f"{path}.headers.{key}", env_refs(value), host, rules))
    return out
