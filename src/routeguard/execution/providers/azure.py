"""Azure OpenAI deployments (``endpoint.type: azure``): the OpenAI wire format at Azure's URLs.

``{base_url}/openai/deployments/{deployment}/{chat/completions|embeddings|responses}?api-version={api_version}``
with the key (from ``api_key_env``) in the ``api-key`` header. ``base_url`` is the resource
(``https://NAME.openai.azure.com``). Azure's content filter answers a filtered prompt with HTTP 400 and
``code: content_filter`` (inner code ``ResponsibleAIPolicyViolation``), classified ``content_filter`` by the
§4 classifier; a completion whose every choice was cut by the filter before any text or tool call
(``finish_reason: content_filter``) is the same failure, raised as ``content_filter`` — the caller has
nothing to use. A filtered ending after output is the answer as Azure gave it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.execution.providers.openai_http import ChatDecoder, OpenAIHTTPProvider
from routeguard.execution.providers.transport import Transport

__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIProvider"]

DEFAULT_API_VERSION = "2024-10-21"


class _FilterDecoder(ChatDecoder):
    """Chat SSE, where a content-filter finish before any output is a content_filter failure."""

    def __init__(self) -> None:
        super().__init__()
        self._output = False

    def feed(self, event: str, data: list[str]) -> list[dict[str, Any]]:
        chunks = super().feed(event, data)
        for chunk in chunks:
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content") or delta.get("tool_calls"):
                    self._output = True
                elif choice.get("finish_reason") == "content_filter" and not self._output:
                    raise _filtered(choice)
        return chunks


def _filtered(choice: Mapping[str, Any]) -> ProviderError:
    message = "the answer was filtered by Azure's content filter"
    body = {"error": {"message": message, "type": None, "param": None, "code": "content_filter",
                      "content_filter_results": choice.get("content_filter_results")}}
    return ProviderError.of(ErrorClass.CONTENT_FILTER, message, status=400, body=body)


class AzureOpenAIProvider(OpenAIHTTPProvider):
    def __init__(
        self,
        name: str,
        base_url: str,
        deployment: str,
        *,
        api_version: str | None = None,
        api_key_env: str | None = None,
        model: str | None = None,
        client: Transport | Any = None,
    ) -> None:
        root = base_url.rstrip("/")
        super().__init__(name, f"{root}/openai/deployments/{quote(deployment, safe='')}", model or deployment,
                         api_key_env, client=client)
        self.deployment = deployment
        self.api_version = api_version or DEFAULT_API_VERSION
        self.url = self.endpoint_url("chat/completions")

    def endpoint_url(self, path: str) -> str:
        return f"{self.base_url}/{path}?api-version={quote(self.api_version, safe='')}"

    def auth_headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"api-key": key} if key else {}

    def chat_answer(self, data: Any, status: int) -> dict[str, Any]:
        completion = super().chat_answer(data, status)
        choices = completion["choices"]
        if choices and all(_cut_by_filter(c) for c in choices):
            err = _filtered(choices[0])
            err.model = self.name
            raise err
        return completion

    def chat_decoder(self, request: Mapping[str, Any]) -> _FilterDecoder:
        return _FilterDecoder()


def _cut_by_filter(choice: Any) -> bool:
    if not isinstance(choice, Mapping) or choice.get("finish_reason") != "content_filter":
        return False
    message = choice.get("message") or {}
    return not message.get("content") and not message.get("tool_calls")
