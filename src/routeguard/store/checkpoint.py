"""Checkpoints of the audit chain: its head (seq, hash, ts) signed with `ROUTEGUARD_AUDIT_KEY`, written
outside the database (CONTRACT §5).

The chain alone detects an edited or deleted record and a tail cut off behind the head row; it cannot
detect someone with write access who deletes records AND rewinds the head row (or wipes everything). A
checkpoint kept elsewhere can: the record it names must still be in the chain with the same hash. With a
key, the checkpoint is an HMAC-SHA256 signature over its fields, so it cannot be forged without the key;
without one it is unsigned and only as safe as the place it is kept.

File format (one JSON object, written atomically): `{"seq", "hash", "ts", "alg", "signature"}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["AUDIT_KEY_ENV", "Checkpoint", "CheckpointError", "audit_key", "read_checkpoint", "write_checkpoint"]

AUDIT_KEY_ENV = "ROUTEGUARD_AUDIT_KEY"


def audit_key() -> bytes | None:
    """The chain's HMAC key from `ROUTEGUARD_AUDIT_KEY` (None when unset: plain SHA-256)."""
    value = os.environ.get(AUDIT_KEY_ENV, "")
    return value.encode("utf-8") if value else None


class CheckpointError(ValueError):
    """An unreadable checkpoint file, or one whose signature does not match."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    ts: str  # RFC 3339 UTC
    alg: str = "none"  # "hmac-sha256" when signed
    signature: str | None = None

    @staticmethod
    def _message(seq: int, digest: str, ts: str) -> bytes:
        return json.dumps({"seq": seq, "hash": digest, "ts": ts}, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def make(cls, seq: int, digest: str, at: datetime, key: bytes | None) -> Checkpoint:
        ts = at.isoformat().replace("+00:00", "Z")
        if key is None:
            return cls(seq, digest, ts)
        signature = hmac.new(key, cls._message(seq, digest, ts), hashlib.sha256).hexdigest()
        return cls(seq, digest, ts, "hmac-sha256", signature)

    def check_signature(self, key: bytes | None) -> str | None:
        """None when the checkpoint can be trusted with ``key``; else why not."""
        if self.alg == "none":
            return "the checkpoint is unsigned but ROUTEGUARD_AUDIT_KEY is set" if key is not None else None
        if self.alg != "hmac-sha256" or self.signature is None:
            return f"unknown checkpoint signature {self.alg!r}"
        if key is None:
            return "the checkpoint is signed: set ROUTEGUARD_AUDIT_KEY to verify it"
        expected = hmac.new(key, self._message(self.seq, self.hash, self.ts), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, self.signature) else "the checkpoint's signature does not match"

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "ts": self.ts, "alg": self.alg, "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        if not isinstance(data, dict):
            raise CheckpointError("a checkpoint is a JSON object {seq, hash, ts, alg, signature}")
        seq, digest, ts = data.get("seq"), data.get("hash"), data.get("ts")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise CheckpointError("checkpoint seq: expected a non-negative integer")
        if not isinstance(digest, str) or not isinstance(ts, str):
            raise CheckpointError("checkpoint hash and ts: expected strings")
        alg = data.get("alg", "none")
        signature = data.get("signature")
        return cls(seq, digest, ts, str(alg), signature if isinstance(signature, str) else None)


def read_checkpoint(path: Path) -> Checkpoint:
    try:
        return Checkpoint.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from exc


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` atomically (a crash leaves the old checkpoint or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            json.dump(checkpoint.to_dict(), fp, sort_keys=True)
            fp.write("\n")
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
