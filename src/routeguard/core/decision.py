"""The decision the engine returns (CONTRACT §3 "decision")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from routeguard.core.model import Terminal

__all__ = ["Decision", "DecisionStatus", "Rejection"]


class DecisionStatus(StrEnum):
    PRIMARY = "primary"
    FALLBACK = "fallback"
    TERMINAL = "terminal"


@dataclass(frozen=True, slots=True)
class Rejection:
    model: str
    reason: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"model": self.model, "reason": self.reason, "detail": self.detail}


@dataclass(slots=True)
class Decision:
    """Treat as immutable (not frozen only because frozen dataclasses cost ~3 µs more per decision)."""

    trace_id: str
    policy: str
    policy_version: int | None
    policy_hash: str
    status: DecisionStatus
    model: str | None
    arm: str | None
    backups: tuple[str, ...]
    degraded: bool
    safe_mode: bool
    terminal: Terminal | None
    terminal_reason: str | None
    cost_estimate_usd: float | None
    rejected: tuple[Rejection, ...]
    probe: bool = False
    tenant: str | None = None
    score: float | None = None  # a learned primary's per-prompt score (CONTRACT §7), else None
    deployment: str | None = None  # for a model with deployments: the one chosen (CONTRACT §1 ``deployments``)

    @property
    def is_terminal(self) -> bool:
        return self.status is DecisionStatus.TERMINAL

    def to_dict(self) -> dict[str, Any]:
        terminal: dict[str, Any] | None = None
        if self.terminal is not None:
            terminal = {
                "action": self.terminal.action.value,
                "queue": self.terminal.queue,
                "reason": self.terminal_reason,
            }
            if self.terminal.response is not None:
                terminal["response"] = self.terminal.response
            if self.terminal.message is not None:
                terminal["message"] = self.terminal.message
        out: dict[str, Any] = {
            "trace_id": self.trace_id,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "policy_hash": self.policy_hash,
            "status": self.status.value,
            "model": self.model,
            "arm": self.arm,
            "backups": list(self.backups),
            "degraded": self.degraded,
            "safe_mode": self.safe_mode,
            "terminal": terminal,
            "cost_estimate_usd": self.cost_estimate_usd,
            "rejected": [r.to_dict() for r in self.rejected],
            "probe": self.probe,
            "score": self.score,
        }
        if self.deployment is not None:
            out["deployment"] = self.deployment
        return out
