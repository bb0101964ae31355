"""Settings of one `routeguard serve` process (CONTRACT §6), plain data; the CLI fills them in."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_DB_URL", "DEFAULT_HOST", "DEFAULT_PORT", "Settings", "default_db_url"]

DEFAULT_DB_URL = "sqlite:///./routeguard.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def default_db_url() -> str:
    """`ROUTEGUARD_DB`, else the SQLite file `./routeguard.db`."""
    return os.environ.get("ROUTEGUARD_DB") or DEFAULT_DB_URL


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def default_outbox_lease_s() -> float:
    """`ROUTEGUARD_OUTBOX_LEASE_S` (at least 7 s), else 30 s: how long a claimed notification is held by the
    replica sending it; one that died mid-send is sent again after it."""
    return _env_seconds("ROUTEGUARD_OUTBOX_LEASE_S", 30.0)


def default_outbox_poll_s() -> float:
    """`ROUTEGUARD_OUTBOX_POLL_S`, else 0.5 s: how often the outbox is polled (besides every enqueue)."""
    return _env_seconds("ROUTEGUARD_OUTBOX_POLL_S", 0.5)


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str = field(default_factory=default_db_url)
    config_path: Path | None = None
    auth_file: Path | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    redis_url: str | None = None
    tick_s: float = 1.0  # the background refresh of health and routes
    approval_warning_s: float = 7 * 86400.0  # `approval.expiring` is audited this long before an expiry
    legacy_env: bool = True  # allow legacy single-model mode from ROUTEGUARD_MODEL
    outbox_lease_s: float = field(default_factory=default_outbox_lease_s)
    outbox_poll_s: float = field(default_factory=default_outbox_poll_s)
    replica_id: str | None = None  # `--replica-id` (default: host-pid-random), the heartbeat row's id
    fleet_poll_s: float = 0.5  # the governance generation poll, the backstop of LISTEN/NOTIFY
    heartbeat_s: float = 1.0  # how often this replica's row in `GET /v1/cluster` is refreshed
    clock: Callable[[], float] = time.time
    max_body_bytes: int = 1 << 20  # every request body (413 past it) ...
    max_upload_bytes: int = 5 << 20  # ... except policy uploads
    secrets_file: Path | None = None  # `--secrets`: NAME: [host, ...] bindings of environment secrets
    allow_egress: tuple[str, ...] = ()  # `--allow-egress`: link-local/metadata hosts let through anyway
    checkpoint_every_s: float = 300.0  # `--checkpoint-every`: the signed audit head is written this often (0: off)
    checkpoint_file: Path | None = None  # default: `<sqlite db>.checkpoint.json`, else none
    checkpoint_notifier: str | None = None  # `--checkpoint-notify`: also send each checkpoint to this notifier
    retain_s: float = 30 * 86_400.0  # the outcome ledger keeps this long (`--retain`)
    review_every_s: float | None = None  # `--review-every`: reviews that run themselves (off by default)
    review_evals: Path | None = None  # `--review-evals`: evaluations for them (else the outcome ledger)
    reviews_dir: Path = Path("routeguard-reviews")  # where their reports are kept (served by /v1/reviews)
    artifact_dir: Path | None = None  # relative learned-primary artifacts (default: --config's directory, else cwd)

    @property
    def artifact_root(self) -> Path:
        if self.artifact_dir is not None:
            return self.artifact_dir
        return self.config_path.parent if self.config_path is not None else Path.cwd()
