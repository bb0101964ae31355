"""What a caller of ``complete``/``stream`` can be told besides a provider error (CONTRACT §8)."""

from __future__ import annotations

__all__ = ["PartialOutputError", "QueuedForHuman", "Suspended", "TerminalAction"]


class TerminalAction(Exception):
    """The policy's terminal action applied: no approved model was left for this request."""

    action = "terminal"

    def __init__(self, policy: str, reason: str, trace_id: str = "") -> None:
        super().__init__(f"{self.action} for policy {policy}: {reason}")
        self.policy = policy
        self.reason = reason
        self.trace_id = trace_id


class Suspended(TerminalAction):
    """Terminal action ``suspend``: the request is refused until an approved model is available."""

    action = "suspend"


class QueuedForHuman(TerminalAction):
    """Terminal action ``human_queue``: the request was handed to a human queue."""

    action = "human_queue"

    def __init__(self, policy: str, reason: str, trace_id: str, queue: str, entry_id: str) -> None:
        super().__init__(policy, reason, trace_id)
        self.queue = queue
        self.entry_id = entry_id


class PartialOutputError(Exception):
    """The model failed after output reached the caller; routeguard never falls back after that."""

    def __init__(self, model: str, error_class: str, message: str, chunks_delivered: int) -> None:
        super().__init__(f"{model} failed with {error_class} after {chunks_delivered} chunk(s): {message}")
        self.model = model
        self.error_class = error_class
        self.chunks_delivered = chunks_delivered
