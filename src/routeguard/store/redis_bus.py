"""The fleet's Redis keys (``routeguard serve --redis URL``): one health stream, probe leases, check locks.

Every key starts with the fleet's prefix, ``routeguard:{<hash of the store URL>}:`` — two fleets (two
stores) on one Redis never mix, and the hash tag keeps a fleet's keys on one Redis Cluster slot. Every
operation touches one key (plain commands or a one-key Lua script), so Redis Cluster serves it.

* ``…:health`` — a stream (``XADD … MAXLEN ~ 20000``): each entry is one replica's batch of health items
  (``r`` = replica id, ``b`` = the items as JSON). Every replica reads it with ``XREAD`` from the last id
  it saw and skips its own entries.
* ``…:probe:<policy>:<model>`` — the lease that lets one replica admit the probes of a probing pair: taken or
  renewed by its owner token (``SET NX PX`` inside a Lua script), released only by that token.
* ``…:check:<model>`` — the active-health-check lock: ``SET NX PX`` with the owner token for just under one
  interval, never released, so one replica checks each model per interval.

Hand-written on redis-py (sync: the link runs it on its own thread, never on the decision path).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["RedisBus", "fleet_prefix"]

_TAKE = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
MAXLEN = 20_000


def fleet_prefix(store_url: str) -> str:
    """``routeguard:{<12 hex>}:`` from the store URL without its password (one fleet = one store)."""
    from sqlalchemy import make_url

    try:
        shown = make_url(store_url).render_as_string(hide_password=True)
    except Exception:
        shown = store_url
    return f"routeguard:{{{hashlib.sha256(shown.encode()).hexdigest()[:12]}}}:"


class RedisBus:
    """One fleet's keys on one Redis. Every call may raise a ``redis.RedisError`` (the link treats it as down)."""

    def __init__(self, url: str, prefix: str, *, timeout_s: float = 0.5) -> None:
        import redis

        self.prefix = prefix
        self.stream = f"{prefix}health"
        self._r = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry_on_timeout=False
        )
        self._take = self._r.register_script(_TAKE)
        self._release = self._r.register_script(_RELEASE)

    def ping(self) -> None:
        self._r.ping()

    def last_id(self) -> str:
        """The id of the stream's newest entry ("0-0" when empty): read on from here."""
        newest: Any = self._r.xrevrange(self.stream, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    def push(self, replica: str, items: list[dict[str, Any]]) -> str:
        """Append one batch; returns its entry id."""
        body = json.dumps(items, separators=(",", ":"), allow_nan=False)
        return _text(self._r.xadd(self.stream, {"r": replica, "b": body}, maxlen=MAXLEN, approximate=True))

    def read(self, after: str, block_ms: int, count: int = 1000) -> list[tuple[str, str, list[dict[str, Any]]]]:
        """Entries after id ``after`` (waiting up to ``block_ms`` for one): (id, replica, items)."""
        answer: Any = self._r.xread({self.stream: after}, count=count, block=block_ms)
        out: list[tuple[str, str, list[dict[str, Any]]]] = []
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                replica = _text(fields.get(b"r", b""))
                try:
                    items = json.loads(fields.get(b"b", b"[]"))
                except ValueError:
                    items = []
                out.append((_text(entry_id), replica, items if isinstance(items, list) else []))
        return out

    def take_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """Take the lease ``key`` for ``token`` (or renew it when ``token`` holds it)."""
        return bool(self._take(keys=[self.prefix + key], args=[token, ttl_ms]))

    def release_lease(self, key: str, token: str) -> bool:
        """Give the lease back, only if ``token`` still holds it."""
        return bool(self._release(keys=[self.prefix + key], args=[token]))

    def claim(self, key: str, token: str, ttl_ms: int) -> bool:
        """``SET NX PX``: True for the one caller that set it (a lock left to expire)."""
        return bool(self._r.set(self.prefix + key, token, nx=True, px=max(1, ttl_ms)))

    def holder(self, key: str) -> str | None:
        value = self._r.get(self.prefix + key)
        return _text(value) if value is not None else None

    def close(self) -> None:
        self._r.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
