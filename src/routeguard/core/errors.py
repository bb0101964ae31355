"""Error classes of CONTRACT §4 and the pure classifier that assigns them.

``classify`` looks at structured signals only — the HTTP status, the exception *type* (by the class
names in its MRO, so this module needs no httpx or SDK import), the provider's error code/type in a
JSON body, and ``Retry-After`` headers. It never reads message text to decide a class: an Anthropic
``invalid_request_error`` saying "prompt is too long" is ``bad_request``, not ``context_window``.

Precedence: a ``ProviderError`` keeps its classification; an exception without an HTTP status is
classified by type; otherwise a *specific* provider code (``context_length_exceeded``,
``overloaded_error``, ``RESOURCE_EXHAUSTED`` …) wins over the status, the status wins over a
*generic* provider type (``invalid_request_error``, ``api_error`` …), and what is left is
``server_error``.

Decisions worth knowing:
- ``insufficient_quota`` (OpenAI, HTTP 429) is class ``rate_limit`` but ``retryable=False``: retrying the
  same account will not help, failing over to another provider will.
- ``request_too_large`` / HTTP 413 is ``context_window`` (the input is too big for this endpoint).
- ``billing_error`` is ``auth`` (an account problem, not the request's).
- HTTP 408 and 504 are ``timeout``; 503 and 529 ``overloaded``; other 5xx ``server_error``; other 4xx
  ``bad_request``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "RETRYABLE",
    "Classified",
    "ErrorClass",
    "ProviderError",
    "StreamBroken",
    "classify",
    "parse_retry_after",
]


class ErrorClass(StrEnum):
    """The error classes of CONTRACT §4 (a ``str``: ``ErrorClass.TIMEOUT == "timeout"``)."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    CONTEXT_WINDOW = "context_window"
    CONTENT_FILTER = "content_filter"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"


E = ErrorClass

RETRYABLE: frozenset[ErrorClass] = frozenset(
    {E.TIMEOUT, E.CONNECTION, E.RATE_LIMIT, E.OVERLOADED, E.SERVER_ERROR}
)


@dataclass(frozen=True, slots=True)
class Classified:
    error_class: ErrorClass
    retryable: bool
    retry_after_s: float | None = None
    provider_code: str | None = None
    message: str = ""

    @classmethod
    def of(
        cls,
        error_class: ErrorClass | str,
        message: str = "",
        *,
        retry_after_s: float | None = None,
        provider_code: str | None = None,
        retryable: bool | None = None,
    ) -> Classified:
        """A classification built by hand (fakes, local failures); ``retryable`` defaults per §4."""
        ec = ErrorClass(error_class)
        return cls(ec, ec in RETRYABLE if retryable is None else retryable, retry_after_s, provider_code,
                   message)


def _table(groups: dict[ErrorClass, str]) -> dict[str, ErrorClass]:
    return {name: error_class for error_class, names in groups.items() for name in names.split()}


# Provider codes/types that say more than the status does (they win over it): OpenAI, Azure OpenAI
# (incl. innererror and its string code "429"), Anthropic, Google (``error.status``).
_SPECIFIC = _table({
    E.CONTEXT_WINDOW: "context_length_exceeded model_max_prompt_tokens_exceeded request_too_large",
    E.CONTENT_FILTER: "content_filter content_policy_violation ResponsibleAIPolicyViolation",
    E.RATE_LIMIT: "rate_limit_exceeded rate_limit_error insufficient_quota RESOURCE_EXHAUSTED 429",
    E.OVERLOADED: "overloaded_error UNAVAILABLE",
    E.AUTH: "invalid_api_key authentication_error permission_error billing_error UNAUTHENTICATED "
            "PERMISSION_DENIED",
    E.NOT_FOUND: "model_not_found not_found_error DeploymentNotFound NOT_FOUND",
    E.TIMEOUT: "timeout_error DEADLINE_EXCEEDED",
})

# Generic provider types: used only when the status says nothing (streams, status 200, no status).
_GENERIC = _table({
    E.BAD_REQUEST: "invalid_request_error BadRequestError INVALID_ARGUMENT FAILED_PRECONDITION OUT_OF_RANGE",
    E.SERVER_ERROR: "api_error server_error internal_error INTERNAL UNKNOWN",
})

_NOT_RETRYABLE_CODES = frozenset({"insufficient_quota"})

# Exception class names, looked up along the MRO (most specific class first): httpx, the builtins
# (asyncio.TimeoutError is TimeoutError), the openai/anthropic SDKs, requests.
_EXC_NAMES = _table({
    E.TIMEOUT: "TimeoutException ReadTimeout ConnectTimeout WriteTimeout PoolTimeout TimeoutError "
               "APITimeoutError Timeout",
    E.CONNECTION: "ConnectError ReadError WriteError CloseError RemoteProtocolError LocalProtocolError "
                  "ProxyError UnsupportedProtocol InvalidURL NetworkError TransportError "
                  "APIConnectionError ConnectionError IncompleteRead gaierror OSError",
    E.RATE_LIMIT: "RateLimitError",
    E.OVERLOADED: "OverloadedError",
    E.SERVER_ERROR: "InternalServerError",
    E.AUTH: "AuthenticationError PermissionDeniedError",
    E.NOT_FOUND: "NotFoundError",
    E.BAD_REQUEST: "BadRequestError UnprocessableEntityError",
    E.CONTENT_FILTER: "ContentFilterFinishReasonError",
})

_STATUS: dict[int, ErrorClass] = {
    429: E.RATE_LIMIT, 503: E.OVERLOADED, 529: E.OVERLOADED, 408: E.TIMEOUT, 504: E.TIMEOUT,
    401: E.AUTH, 403: E.AUTH, 404: E.NOT_FOUND, 413: E.CONTEXT_WINDOW,
}

_MESSAGE_MAX = 300


def _from_status(status: int | None) -> ErrorClass | None:
    if status is None:
        return None
    known = _STATUS.get(status)
    if known is not None:
        return known
    if 500 <= status <= 599:
        return E.SERVER_ERROR
    if 400 <= status <= 499:
        return E.BAD_REQUEST
    return None


def _from_exception(exc: BaseException) -> ErrorClass | None:
    for klass in type(exc).__mro__:
        found = _EXC_NAMES.get(klass.__name__)
        if found is not None:
            return found
    return None


def _parse_body(body: object) -> object:
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str):
        text = body.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return body
    return body


def _error_object(parsed: object) -> dict[str, Any] | None:
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        parsed = parsed[0]  # Gemini REST sometimes wraps the error in a list
    if not isinstance(parsed, dict):
        return None
    err = parsed.get("error")
    if isinstance(err, dict):
        return err
    if parsed.get("object") == "error" or "type" in parsed or "code" in parsed:
        return parsed  # vLLM / Mistral style: the error at top level
    return None


def _codes(err: dict[str, Any]) -> list[str]:
    """Candidate provider codes, most specific first."""
    out: list[str] = []
    inner = err.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    for value in (err.get("code"), inner_code, err.get("type"), err.get("status")):
        if isinstance(value, str) and value and value not in out:
            out.append(value)
    return out


def _retry_delay_from_body(err: dict[str, Any]) -> float | None:
    details = err.get("details")
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            delay = item.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                return _non_negative(delay[:-1])
    return None


def _non_negative(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), names any case.

    An HTTP date needs ``now`` (epoch seconds); without it the date is ignored. A date in the past is 0.
    """
    if not headers:
        return None
    lower = {str(k).lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        value = _non_negative(str(ms))
        if value is not None:
            return value / 1000.0
    raw = lower.get("retry-after")
    if raw is None:
        return None
    value = _non_negative(str(raw))
    if value is not None:
        return value
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _message(err: dict[str, Any] | None, parsed: object, status: int | None,
             exception: BaseException | None) -> str:
    if err is not None and isinstance(err.get("message"), str) and err["message"]:
        return str(err["message"])[:_MESSAGE_MAX]
    if exception is not None:
        text = str(exception)
        name = type(exception).__name__
        return f"{name}: {text[:_MESSAGE_MAX]}" if text else name
    prefix = f"HTTP {status}" if status is not None else "upstream error"
    if isinstance(parsed, str) and parsed.strip():
        snippet = " ".join(parsed[: _MESSAGE_MAX * 2].split())[:_MESSAGE_MAX]
        return f"{prefix}: {snippet}"
    return prefix


def classify(
    status: int | None = None,
    body: object = None,
    exception: BaseException | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
) -> Classified:
    """Classify one failed call. ``body`` may be parsed JSON, JSON text/bytes or any raw text."""
    if isinstance(exception, ProviderError):
        return exception.classified
    if exception is not None and status is None:
        sdk_status = getattr(exception, "status_code", None)  # openai/anthropic APIStatusError
        if isinstance(sdk_status, int):
            status = sdk_status
            if body is None:
                body = getattr(exception, "body", None)
    parsed = _parse_body(body)
    err = _error_object(parsed)
    codes = _codes(err) if err is not None else []
    if status is None and err is not None:
        code = err.get("code")
        if isinstance(code, int) and 100 <= code <= 599:
            status = code  # Google: {"error": {"code": 503, "status": "UNAVAILABLE"}}

    specific = next(((c, _SPECIFIC[c]) for c in codes if c in _SPECIFIC), None)
    generic = next(((c, _GENERIC[c]) for c in codes if c in _GENERIC), None)
    provider_code: str | None = codes[0] if codes else None
    error_class: ErrorClass | None = None
    if exception is not None and status is None:
        error_class = _from_exception(exception)
    if error_class is None and specific is not None:
        provider_code, error_class = specific
    if error_class is None:
        error_class = _from_status(status)
    if error_class is None and generic is not None:
        provider_code, error_class = generic
    if error_class is None:
        error_class = E.SERVER_ERROR

    retryable = error_class in RETRYABLE and not (set(codes) & _NOT_RETRYABLE_CODES)
    retry_after = parse_retry_after(headers, now)
    if retry_after is None and err is not None:
        retry_after = _retry_delay_from_body(err)
    return Classified(error_class, retryable, retry_after, provider_code,
                      _message(err, parsed, status, exception))


class ProviderError(Exception):
    """A failed call to a model. ``body`` is the parsed JSON error body, or raw text."""

    def __init__(self, classified: Classified, *, status: int | None = None, body: object = None,
                 model: str | None = None) -> None:
        super().__init__(classified.message)
        self.classified = classified
        self.status = status
        self.body = body
        self.model = model

    @property
    def error_class(self) -> ErrorClass:
        return self.classified.error_class

    @property
    def retryable(self) -> bool:
        return self.classified.retryable

    @classmethod
    def of(cls, error_class: ErrorClass | str, message: str = "", *, retry_after_s: float | None = None,
           status: int | None = None, body: object = None, model: str | None = None) -> ProviderError:
        """An error built by hand (fakes, local failures)."""
        return cls(Classified.of(error_class, message or str(error_class), retry_after_s=retry_after_s),
                   status=status, body=body, model=model)

    @classmethod
    def from_http(cls, status: int, body: object, headers: Mapping[str, str] | None = None, *,
                  model: str | None = None, now: float | None = None) -> ProviderError:
        """The error for an HTTP error response (``body``: raw text, bytes or parsed JSON)."""
        parsed = _parse_body(body)
        return cls(classify(status=status, body=parsed, headers=headers, now=now),
                   status=status, body=parsed, model=model)

    def __str__(self) -> str:
        where = f" from {self.model}" if self.model else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.classified.error_class.value}{where}{status}: {self.classified.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.classified!r}, status={self.status!r}, model={self.model!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.classified, dict(self.__dict__)))


class StreamBroken(ProviderError):
    """A stream that broke mid-way, or ended without a finish reason and without ``[DONE]``.

    ``chunks_received`` is how many chunks were delivered before the break; the caller decides what
    to do with partial output.
    """

    def __init__(self, classified: Classified, *, status: int | None = None, body: object = None,
                 model: str | None = None, chunks_received: int = 0) -> None:
        super().__init__(classified, status=status, body=body, model=model)
        self.chunks_received = chunks_received


def _rebuild(kind: type[ProviderError], classified: Classified, state: dict[str, Any]) -> ProviderError:
    err = kind.__new__(kind)
    Exception.__init__(err, classified.message)
    err.__dict__.update(state)
    return err
