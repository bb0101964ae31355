"""Any provider LiteLLM speaks (``endpoint.type: litellm``; the optional extra ``routeguard[litellm]``).

The call is delegated to ``litellm.acompletion`` / ``litellm.aembedding`` with LiteLLM's own retries and
fallbacks switched off (``num_retries=0``): routeguard's executor decides about retries and fallbacks, after
the failure was classified into CONTRACT §4. ``endpoint.model`` is LiteLLM's model string
(``bedrock/…``, ``vertex_ai/…``, ``openai/…``), ``base_url`` its ``api_base``, ``api_key_env`` names the key
variable (else LiteLLM reads its provider's usual environment variables), and ``params`` adds keyword
arguments (``aws_region_name``, ``vertex_project`` …).

litellm is imported when the first litellm-typed provider is built (the first request to such a model),
never by ``import routeguard`` or by bundles without one. Before the import ``LITELLM_LOCAL_MODEL_COST_MAP``
defaults to ``True``: otherwise importing litellm fetches its price list from GitHub, an egress a governed
router must not make on its own (set the variable to ``False`` to allow it).

Classification: LiteLLM raises its own exception types, which carry an HTTP ``status_code`` that does not
always say what happened (``ContextWindowExceededError`` and ``ContentPolicyViolationError`` are 400s,
``APIConnectionError`` a 500), so the types are looked up first (along the MRO); what is left goes to the
§4 classifier (status, provider code in the body, ``Retry-After`` of the response).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from routeguard.core.errors import Classified, ErrorClass, ProviderError, classify
from routeguard.execution.providers.base import stream_broken, stream_timeout
from routeguard.execution.providers.openai_shapes import has_finish_reason

__all__ = ["LiteLLMProvider", "classify_litellm"]

E = ErrorClass
_TYPES: Mapping[str, ErrorClass] = {
    "ContextWindowExceededError": E.CONTEXT_WINDOW,
    "ContentPolicyViolationError": E.CONTENT_FILTER,
    "APIConnectionError": E.CONNECTION,
    "Timeout": E.TIMEOUT,
    "RateLimitError": E.RATE_LIMIT,
    "ServiceUnavailableError": E.OVERLOADED,
    "InternalServerError": E.SERVER_ERROR,
    "BadGatewayError": E.SERVER_ERROR,
    "AuthenticationError": E.AUTH,
    "PermissionDeniedError": E.AUTH,
    "NotFoundError": E.NOT_FOUND,
    "UnprocessableEntityError": E.BAD_REQUEST,
    "UnsupportedParamsError": E.BAD_REQUEST,
    "BadRequestError": E.BAD_REQUEST,
}
_ERROR_STATUS = {E.CONTEXT_WINDOW: 400, E.CONTENT_FILTER: 400, E.BAD_REQUEST: 400, E.AUTH: 401,
                 E.NOT_FOUND: 404, E.RATE_LIMIT: 429}


def _transport_cause(exc: BaseException) -> ErrorClass | None:
    """``connection`` / ``timeout`` when a status-less transport error (httpx, the SDK's connection error,
    OSError) caused ``exc``: LiteLLM reports a refused connection as an ``InternalServerError`` (500)."""
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if getattr(cause, "status_code", None) is None:
            found = classify(exception=cause).error_class
            if found in (E.CONNECTION, E.TIMEOUT):
                return found
        cause = cause.__cause__ or cause.__context__
    return None


def classify_litellm(exc: BaseException) -> Classified:
    """The §4 class of an exception raised by litellm (by type first, then its cause, status and body)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    base = classify(exception=exc, headers=headers if isinstance(headers, Mapping) else None)
    found: ErrorClass | None = None
    for klass in type(exc).__mro__:
        found = _TYPES.get(klass.__name__)
        if found is not None or klass.__module__.startswith("openai"):
            break  # past litellm's own classes: the SDK's names are the classifier's business
    found = found or base.error_class
    if found is E.SERVER_ERROR:
        found = _transport_cause(exc) or found
    if found is base.error_class:
        return base
    return Classified.of(found, base.message, retry_after_s=base.retry_after_s, provider_code=base.provider_code)


def _plain(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        data = dump(exclude_none=False)
        if isinstance(data, dict):
            return data
    raise ProviderError.of(E.SERVER_ERROR, f"litellm returned {type(obj).__name__}")


class LiteLLMProvider:
    def __init__(self, name: str, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 params: Mapping[str, Any] | None = None) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm  # the optional extra: loaded only when such a model is used

        self._litellm: Any = litellm
        self.name = name
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.params = dict(params or {})

    def __repr__(self) -> str:
        return f"LiteLLMProvider(name={self.name!r}, model={self.model!r})"

    async def aclose(self) -> None:
        return None

    def _arguments(self, request: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        args = {k: v for k, v in request.items() if k not in ("model", "stream")}
        args.update(self.params)
        args.update(model=self.model, timeout=timeout_s, num_retries=0)
        if self.base_url:
            args["api_base"] = self.base_url
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            args["api_key"] = key
        return args

    def _error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        classified = classify_litellm(exc)
        status = getattr(exc, "status_code", None)
        if not isinstance(status, int) or not 400 <= status <= 599:
            status = _ERROR_STATUS.get(classified.error_class)
        body = {"error": {"message": classified.message, "type": type(exc).__name__, "param": None,
                          "code": classified.error_class.value}}
        return ProviderError(classified, status=status, body=body, model=self.name)

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._litellm.acompletion(**self._arguments(request, timeout_s))
        except Exception as exc:  # the adapter boundary: litellm raises its own tree and more
            raise self._error(exc) from exc
        return _plain(response)

    async def embed(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._litellm.aembedding(**self._arguments(request, timeout_s))
        except Exception as exc:
            raise self._error(exc) from exc
        return _plain(response)

    async def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                source = await self._litellm.acompletion(stream=True, **self._arguments(request, timeout_s))
        except Exception as exc:
            raise self._error(exc) from exc
        iterator = aiter(source)
        received, finished = 0, False
        deadline = loop.time() + timeout_s
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = _plain(await anext(iterator))
            except StopAsyncIteration:
                break
            except TimeoutError:
                if finished:
                    return
                raise stream_timeout(timeout_s, model=self.name, chunks_received=received) from None
            except Exception as exc:
                if finished:
                    return
                raise stream_broken("", model=self.name, chunks_received=received, cause=self._error(exc)) from exc
            received += 1
            finished = finished or has_finish_reason(chunk)
            deadline = loop.time() + timeout_s
            yield chunk
        if not finished:
            raise stream_broken("stream ended without a finish reason", model=self.name,
                                chunks_received=received, error_class=E.SERVER_ERROR)
