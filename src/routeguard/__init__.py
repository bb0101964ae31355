"""routeguard: governed model routing for AI agents.

``from routeguard import Router`` loads no web or database library; names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Decision",
    "PartialOutputError",
    "ProviderError",
    "QueuedForHuman",
    "RouteContext",
    "Router",
    "RoutingError",
    "Suspended",
    "TerminalAction",
]

_LAZY = {
    "Router": "routeguard.runtime",
    "Decision": "routeguard.core.decision",
    "RouteContext": "routeguard.core.context",
    "RoutingError": "routeguard.core.context",
    "PartialOutputError": "routeguard.core.exceptions",
    "QueuedForHuman": "routeguard.core.exceptions",
    "Suspended": "routeguard.core.exceptions",
    "TerminalAction": "routeguard.core.exceptions",
    "ProviderError": "routeguard.core.errors",
}

if TYPE_CHECKING:
    from routeguard.core.context import RouteContext, RoutingError
    from routeguard.core.decision import Decision
    from routeguard.core.errors import ProviderError
    from routeguard.core.exceptions import PartialOutputError, QueuedForHuman, Suspended, TerminalAction
    from routeguard.runtime import Router


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'routeguard' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
