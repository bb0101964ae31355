"""Bearer tokens and roles (`routeguard serve --auth FILE`, CONTRACT §3 "Auth").

The file is a YAML list: `- {name: alice, token: "…", roles: [author, viewer]}`; `token_sha256:` (hex) may
stand for `token:`. Presented tokens are hashed and compared to every entry in constant time. With no
tokens, every role is open and the principal is the `x-routeguard-principal` header (`anonymous` by
default) — allowed on loopback only: `check_exposure` refuses any other address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request

from routeguard.service.errors import ApiError
from routeguard.service.rate_limit import RateLimiter, parse_rate

__all__ = [
    "ANONYMOUS",
    "PRINCIPAL_HEADER",
    "ROLES",
    "AuthConfig",
    "AuthError",
    "Principal",
    "TokenEntry",
    "authorize",
    "check_exposure",
    "is_loopback",
    "load_auth_file",
    "require",
]

ROLES = ("viewer", "router", "signaler", "author", "approver", "operator", "admin")
PRINCIPAL_HEADER = "x-routeguard-principal"
ANONYMOUS = "anonymous"


class AuthError(ValueError):
    """An unusable auth file, or an unsafe way to serve (the CLI exits 2)."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]
    rate_per_s: float | None = None  # `rate: 200/s` on its auth entry
    authenticated: bool = True  # False in open (no-token) development mode

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


@dataclass(frozen=True, slots=True)
class TokenEntry:
    name: str
    digest: bytes  # sha256 of the token
    roles: frozenset[str]
    rate_per_s: float | None = None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class AuthConfig:
    """The configured tokens; empty means open (development on loopback)."""

    def __init__(self, entries: tuple[TokenEntry, ...] = ()) -> None:
        self.entries = entries
        self.limiter = RateLimiter()

    @property
    def open(self) -> bool:
        return not self.entries

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an `Authorization: Bearer …` header, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = _digest(token.strip())
        found: TokenEntry | None = None
        for entry in self.entries:  # every entry is compared: the time does not depend on which matched
            if hmac.compare_digest(entry.digest, presented) and found is None:
                found = entry
        return Principal(found.name, found.roles, found.rate_per_s) if found is not None else None


def _entry(i: int, item: Any) -> TokenEntry:
    where = f"entry {i + 1}"
    if not isinstance(item, dict):
        raise AuthError(f"{where}: expected a mapping {{name, token, roles}}")
    unknown = sorted(set(item) - {"name", "token", "token_sha256", "roles", "rate"})
    if unknown:
        raise AuthError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise AuthError(f"{where}: `name` must be a non-empty string")
    roles = item.get("roles")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise AuthError(f"{where} ({name}): `roles` must be a non-empty list of roles")
    bad = sorted(set(roles) - set(ROLES))
    if bad:
        raise AuthError(f"{where} ({name}): unknown role(s) {', '.join(bad)} (roles: {', '.join(ROLES)})")
    token, hashed = item.get("token"), item.get("token_sha256")
    if (token is None) == (hashed is None):
        raise AuthError(f"{where} ({name}): give exactly one of `token` and `token_sha256`")
    if token is not None:
        if not isinstance(token, str) or len(token) < 8:
            raise AuthError(f"{where} ({name}): `token` must be a string of at least 8 characters")
        digest = _digest(token)
    else:
        text = str(hashed).strip().lower().removeprefix("sha256:")
        try:
            digest = bytes.fromhex(text)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise AuthError(f"{where} ({name}): `token_sha256` must be 64 hex digits")
    rate: float | None = None
    if item.get("rate") is not None:
        try:
            rate = parse_rate(item["rate"])
        except ValueError as exc:
            raise AuthError(f"{where} ({name}): {exc}") from exc
    return TokenEntry(name, digest, frozenset(roles), rate)


def load_auth_file(path: str | Path) -> AuthConfig:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthError(f"cannot read auth file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise AuthError(f"auth file {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = []
    if isinstance(data, dict) and "tokens" in data:
        data = data["tokens"]
    if not isinstance(data, list):
        raise AuthError(f"auth file {path}: expected a list of {{name, token, roles}}")
    entries = tuple(_entry(i, item) for i, item in enumerate(data))
    digests = [e.digest for e in entries]
    if len(set(digests)) != len(digests):
        raise AuthError(f"auth file {path}: two entries share a token")
    return AuthConfig(entries)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(auth: AuthConfig, host: str) -> None:
    """Refuse to serve without tokens on anything but loopback."""
    if auth.open and not is_loopback(host):
        raise AuthError(
            f"refusing to serve on {host} without tokens: pass --auth FILE "
            "(a YAML list of {name, token, roles}), or serve on 127.0.0.1"
        )


def authorize(
    auth: AuthConfig, role: str | tuple[str, ...], authorization: str | None, principal: str | None
) -> Principal:
    """The caller's principal if it holds `role` (or one of several); ApiError 401 / 403 / 429 otherwise."""
    if auth.open:
        if principal is not None and len(principal) > 200:  # the store keeps principals in 200 characters
            raise ApiError(400, "bad_request", f"{PRINCIPAL_HEADER}: at most 200 characters")
        return Principal(principal or ANONYMOUS, frozenset(ROLES), authenticated=False)
    found = auth.authenticate(authorization)
    if found is None:
        raise ApiError(401, "unauthorized", "a valid bearer token is required (Authorization: Bearer …)")
    roles = (role,) if isinstance(role, str) else role
    if not any(found.has(r) for r in roles):
        raise ApiError(403, "forbidden", f"{found.name!r} lacks the {' or '.join(map(repr, roles))} role")
    if found.rate_per_s is not None:
        wait = auth.limiter.take(found.name, found.rate_per_s)
        if wait is not None:
            raise ApiError(
                429, "rate_limited", f"{found.name!r} is over its rate of {found.rate_per_s:g}/s",
                headers={"Retry-After": RateLimiter.retry_after_header(wait)},
            )
    return found


def require(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller's principal, if it holds one of `roles` (401 / 403 / 429 otherwise)."""
    for name in roles:
        if name not in ROLES:
            raise ValueError(f"unknown role {name!r}")
    role: str | tuple[str, ...] = roles[0] if len(roles) == 1 else roles

    async def dependency(request: Request) -> Principal:  # async: no worker thread per request
        headers = request.headers
        return authorize(
            request.app.state.auth, role, headers.get("authorization"), headers.get(PRINCIPAL_HEADER)
        )

    dependency.__name__ = f"require_{'_or_'.join(roles)}"
    return dependency
