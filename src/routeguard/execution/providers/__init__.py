"""Model backends behind one interface (:class:`Provider`), HTTP ones over one :class:`Transport`.

The HTTP providers (``OpenAIHTTPProvider``, ``AzureOpenAIProvider``, ``AnthropicProvider``), the transport
factory and ``LiteLLMProvider`` are imported lazily so that importing this package loads neither httpx nor
litellm.
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
    from routeguard.execution.providers.anthropic import AnthropicProvider
    from routeguard.execution.providers.azure import AzureOpenAIProvider
    from routeguard.execution.providers.litellm_provider import LiteLLMProvider
    from routeguard.execution.providers.openai_http import OpenAIHTTPProvider, make_client
    from routeguard.execution.providers.transport import Transport, make_transport

_LAZY = {
    "AnthropicProvider": "anthropic",
    "AzureOpenAIProvider": "azure",
    "LiteLLMProvider": "litellm_provider",
    "OpenAIHTTPProvider": "openai_http",
    "make_client": "openai_http",
    "Transport": "transport",
    "make_transport": "transport",
}

__all__ = [
    "AnthropicProvider",
    "AzureOpenAIProvider",
    "CallableProvider",
    "FakeProvider",
    "LiteLLMProvider",
    "OpenAIHTTPProvider",
    "Provider",
    "ProviderError",
    "Step",
    "StreamBroken",
    "Transport",
    "completion_to_chunks",
    "has_finish_reason",
    "make_chunk",
    "make_client",
    "make_completion",
    "make_tool_call",
    "make_transport",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
