"""Model backends behind one interface (:class:`Provider`).

``OpenAIHTTPProvider`` is imported lazily so that importing this package does not load httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routeguard.core.errors import ProviderError, StreamBroken
from routeguard.execution.providers.base import Provider
from routeguard.execution.providers.callable import CallableProvider
from routeguard.execution.providers.fake import FakeProvider, Step
from routeguard.execution.providers.openai_shapes import (
    completion_to_chunks,
    has_finish_reason,
    make_chunk,
    make_completion,
    make_tool_call,
)

if TYPE_CHECKING:
    from routeguard.execution.providers.openai_http import OpenAIHTTPProvider, make_client

__all__ = [
    "CallableProvider",
    "FakeProvider",
    "OpenAIHTTPProvider",
    "Provider",
    "ProviderError",
    "Step",
    "StreamBroken",
    "completion_to_chunks",
    "has_finish_reason",
    "make_chunk",
    "make_client",
    "make_completion",
    "make_tool_call",
]


def __getattr__(name: str) -> Any:
    if name in ("OpenAIHTTPProvider", "make_client"):
        from routeguard.execution.providers import openai_http

        return getattr(openai_http, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
