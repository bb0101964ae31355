"""The error taxonomy: real provider error bodies and exceptions -> CONTRACT §4 classes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from routeguard.core import defaults
from routeguard.core.errors import (
    RETRYABLE,
    Classified,
    ErrorClass,
    ProviderError,
    StreamBroken,
    classify,
    parse_retry_after,
)

E = ErrorClass

OPENAI_429 = {"error": {
    "message": "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, "
               "Used 29876, Requested 512. Please try again in 1.02s. Visit "
               "https://platform.openai.com/account/rate-limits to learn more.",
    "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
OPENAI_QUOTA = {"error": {
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
OPENAI_CONTEXT = {"error": {
    "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
               "9437 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
OPENAI_POLICY = {"error": {
    "code": "content_policy_violation", "param": None, "type": "invalid_request_error",
    "message": "Your request was rejected as a result of our safety system."}}
OPENAI_NO_KEY = {"error": {
    "message": "You didn't provide an API key. You need to provide your API key in an Authorization header.",
    "type": "invalid_request_error", "param": None, "code": None}}
OPENAI_BAD_KEY = {"error": {"message": "Incorrect API key provided: sk-abc***xyz.",
                            "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
OPENAI_NO_MODEL = {"error": {"message": "The model `gpt-5-turbo` does not exist or you do not have access "
                             "to it.", "type": "invalid_request_error", "param": None,
                             "code": "model_not_found"}}
OPENAI_500 = {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                        "type": "server_error", "param": None, "code": None}}
OPENAI_503 = {"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error",
                        "param": None, "code": None}}
AZURE_FILTER = {"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
               "policy. Please modify your prompt and retry.",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
        "hate": {"filtered": False, "severity": "safe"}, "jailbreak": {"filtered": False, "detected": False},
        "self_harm": {"filtered": True, "severity": "medium"},
        "sexual": {"filtered": False, "severity": "safe"},
        "violence": {"filtered": False, "severity": "safe"}}}}}
AZURE_INNER_ONLY = {"error": {"message": "filtered", "code": None, "innererror": {
    "code": "ResponsibleAIPolicyViolation"}}}
AZURE_429 = {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under "
                       "Azure OpenAI API version 2024-02-01 have exceeded token rate limit of your current "
                       "pricing tier. Please retry after 7 seconds."}}
AZURE_NO_DEPLOYMENT = {"error": {"code": "DeploymentNotFound",
                                 "message": "The API deployment for this resource does not exist."}}


def anthropic(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


GEMINI_503 = {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                        "status": "UNAVAILABLE"}}
GEMINI_429 = {"error": {"code": 429, "message": "You exceeded your current quota, please check your plan "
                        "and billing details.", "status": "RESOURCE_EXHAUSTED", "details": [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
        {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}
GEMINI_400 = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT"}}
HTML_500 = ("<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
            "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n")
HTML_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
            "</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
VLLM_400 = {"object": "error", "message": "This model's maximum context length is 4096 tokens. However, you "
            "requested 5000 tokens.", "type": "BadRequestError", "param": None, "code": 400}
FASTAPI_422 = {"detail": [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required"}]}

# id, classify kwargs, class, retryable, retry_after_s, provider_code
HTTP_CASES: list[tuple[str, dict[str, Any], ErrorClass, bool, float | None, str | None]] = [
    ("openai-429-rate-limit", {"status": 429, "body": OPENAI_429,
     "headers": {"retry-after-ms": "1020", "x-ratelimit-remaining-tokens": "0"}},
     E.RATE_LIMIT, True, 1.02, "rate_limit_exceeded"),
    ("openai-429-insufficient-quota", {"status": 429, "body": OPENAI_QUOTA}, E.RATE_LIMIT, False, None,
     "insufficient_quota"),
    ("openai-400-context", {"status": 400, "body": OPENAI_CONTEXT}, E.CONTEXT_WINDOW, False, None,
     "context_length_exceeded"),
    ("openai-400-policy", {"status": 400, "body": OPENAI_POLICY}, E.CONTENT_FILTER, False, None,
     "content_policy_violation"),
    ("openai-401-no-key", {"status": 401, "body": OPENAI_NO_KEY}, E.AUTH, False, None,
     "invalid_request_error"),
    ("openai-401-bad-key", {"status": 401, "body": OPENAI_BAD_KEY}, E.AUTH, False, None, "invalid_api_key"),
    ("openai-404-model", {"status": 404, "body": OPENAI_NO_MODEL}, E.NOT_FOUND, False, None,
     "model_not_found"),
    ("openai-500", {"status": 500, "body": OPENAI_500}, E.SERVER_ERROR, True, None, "server_error"),
    ("openai-503", {"status": 503, "body": OPENAI_503}, E.OVERLOADED, True, None, "server_error"),
    ("openai-stream-error-no-status", {"body": OPENAI_500}, E.SERVER_ERROR, True, None, "server_error"),
    ("azure-400-content-filter", {"status": 400, "body": AZURE_FILTER}, E.CONTENT_FILTER, False, None,
     "content_filter"),
    ("azure-innererror-only", {"status": 400, "body": AZURE_INNER_ONLY}, E.CONTENT_FILTER, False, None,
     "ResponsibleAIPolicyViolation"),
    ("azure-429", {"status": 429, "body": AZURE_429, "headers": {"Retry-After": "7"}}, E.RATE_LIMIT, True,
     7.0, "429"),
    ("azure-404-deployment", {"status": 404, "body": AZURE_NO_DEPLOYMENT}, E.NOT_FOUND, False, None,
     "DeploymentNotFound"),
    ("anthropic-529-overloaded", {"status": 529, "body": anthropic("overloaded_error", "Overloaded")},
     E.OVERLOADED, True, None, "overloaded_error"),
    ("anthropic-429-retry-after", {"status": 429, "headers": {"retry-after": "30"},
     "body": anthropic("rate_limit_error", "Number of request tokens has exceeded your rate limit")},
     E.RATE_LIMIT, True, 30.0, "rate_limit_error"),
    ("anthropic-400-prompt-too-long", {"status": 400,
     "body": anthropic("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")},
     E.BAD_REQUEST, False, None, "invalid_request_error"),
    ("anthropic-413", {"status": 413, "body": anthropic("request_too_large", "Request exceeds the maximum "
     "allowed number of bytes.")}, E.CONTEXT_WINDOW, False, None, "request_too_large"),
    ("anthropic-401", {"status": 401, "body": anthropic("authentication_error", "invalid x-api-key")},
     E.AUTH, False, None, "authentication_error"),
    ("anthropic-403", {"status": 403, "body": anthropic("permission_error", "no access")}, E.AUTH, False,
     None, "permission_error"),
    ("anthropic-404", {"status": 404, "body": anthropic("not_found_error", "model: claude-9")}, E.NOT_FOUND,
     False, None, "not_found_error"),
    ("anthropic-500", {"status": 500, "body": anthropic("api_error", "Internal server error")},
     E.SERVER_ERROR, True, None, "api_error"),
    ("anthropic-stream-overloaded", {"body": anthropic("overloaded_error", "Overloaded")}, E.OVERLOADED, True,
     None, "overloaded_error"),
    ("gemini-503", {"status": 503, "body": GEMINI_503}, E.OVERLOADED, True, None, "UNAVAILABLE"),
    ("gemini-503-no-status", {"body": GEMINI_503}, E.OVERLOADED, True, None, "UNAVAILABLE"),
    ("gemini-429-retry-info", {"status": 429, "body": GEMINI_429}, E.RATE_LIMIT, True, 37.0,
     "RESOURCE_EXHAUSTED"),
    ("gemini-400", {"status": 400, "body": GEMINI_400}, E.BAD_REQUEST, False, None, "INVALID_ARGUMENT"),
    ("gemini-list-wrapped", {"status": 503, "body": [GEMINI_503]}, E.OVERLOADED, True, None, "UNAVAILABLE"),
    ("html-500", {"status": 500, "body": HTML_500}, E.SERVER_ERROR, True, None, None),
    ("gateway-502", {"status": 502, "body": HTML_502}, E.SERVER_ERROR, True, None, None),
    ("gateway-504", {"status": 504, "body": "upstream request timeout"}, E.TIMEOUT, True, None, None),
    ("http-408", {"status": 408}, E.TIMEOUT, True, None, None),
    ("vllm-400-context-by-message-only", {"status": 400, "body": VLLM_400}, E.BAD_REQUEST, False, None,
     "BadRequestError"),
    ("fastapi-422", {"status": 422, "body": FASTAPI_422}, E.BAD_REQUEST, False, None, None),
    ("json-text-body", {"status": 400, "body": '{"error": {"code": "context_length_exceeded"}}'},
     E.CONTEXT_WINDOW, False, None, "context_length_exceeded"),
    ("json-bytes-body", {"status": 429, "body": b'{"error": {"code": "rate_limit_exceeded"}}'},
     E.RATE_LIMIT, True, None, "rate_limit_exceeded"),
    ("teapot-418", {"status": 418}, E.BAD_REQUEST, False, None, None),
    ("message-text-alone-is-ignored", {"body": {"error": {"message": "rate limit exceeded: context length "
     "exceeded, server overloaded"}}}, E.SERVER_ERROR, True, None, None),
    ("nothing-known", {}, E.SERVER_ERROR, True, None, None),
]


@pytest.mark.parametrize(("kwargs", "error_class", "retryable", "retry_after", "code"),
                         [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES])
def test_classify_http(kwargs: dict[str, Any], error_class: ErrorClass, retryable: bool,
                       retry_after: float | None, code: str | None) -> None:
    got = classify(**kwargs)
    assert got.error_class is error_class
    assert got.retryable is retryable
    if retry_after is None:
        assert got.retry_after_s is None
    else:
        assert got.retry_after_s == pytest.approx(retry_after)
    assert got.provider_code == code
    assert got.message


class APITimeoutError(Exception):  # the name the openai/anthropic SDKs use
    pass


class FakeSDKStatusError(Exception):  # shaped like openai.APIStatusError
    def __init__(self, status_code: int, body: object) -> None:
        super().__init__("sdk error")
        self.status_code = status_code
        self.body = body


EXCEPTION_CASES: list[tuple[str, BaseException, ErrorClass]] = [
    ("httpx-read-timeout", httpx.ReadTimeout("timed out"), E.TIMEOUT),
    ("httpx-connect-timeout", httpx.ConnectTimeout("timed out"), E.TIMEOUT),
    ("httpx-pool-timeout", httpx.PoolTimeout("no connection"), E.TIMEOUT),
    ("httpx-connect-error", httpx.ConnectError("[Errno 111] Connection refused"), E.CONNECTION),
    ("httpx-remote-protocol", httpx.RemoteProtocolError("peer closed connection"), E.CONNECTION),
    ("httpx-read-error", httpx.ReadError("connection reset"), E.CONNECTION),
    ("asyncio-timeout", TimeoutError(), E.TIMEOUT),
    ("builtin-timeout", TimeoutError("slow"), E.TIMEOUT),
    ("connection-refused", ConnectionRefusedError(111, "Connection refused"), E.CONNECTION),
    ("connection-reset", ConnectionResetError(104, "Connection reset by peer"), E.CONNECTION),
    ("sdk-timeout-by-name", APITimeoutError("Request timed out."), E.TIMEOUT),
    ("sdk-status-429", FakeSDKStatusError(429, OPENAI_429), E.RATE_LIMIT),
    ("sdk-status-400-context", FakeSDKStatusError(400, OPENAI_CONTEXT), E.CONTEXT_WINDOW),
    ("unknown-exception", ValueError("boom: rate limit"), E.SERVER_ERROR),
]


@pytest.mark.parametrize(("exc", "error_class"), [c[1:] for c in EXCEPTION_CASES],
                         ids=[c[0] for c in EXCEPTION_CASES])
def test_classify_exception(exc: BaseException, error_class: ErrorClass) -> None:
    got = classify(exception=exc)
    assert got.error_class is error_class
    assert got.retryable is (error_class in RETRYABLE)


def test_provider_error_keeps_its_classification() -> None:
    err = ProviderError.of(E.CONTENT_FILTER, "blocked")
    assert classify(exception=err) is err.classified


@pytest.mark.parametrize(("headers", "now", "expected"), [
    ({"Retry-After": "120"}, None, 120.0),
    ({"RETRY-AFTER": "1.5"}, None, 1.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, None, 0.25),
    ({"retry-after-ms": "soon", "retry-after": "9"}, None, 9.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, None, None),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp(),
     30.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, datetime(2016, 1, 1, tzinfo=UTC).timestamp(), 0.0),
    ({"retry-after": "-3"}, None, None),
    ({"retry-after": "later"}, 0.0, None),
    ({"retry-after": "nan"}, None, None),
    ({}, None, None),
    (None, None, None),
], ids=lambda v: repr(v)[:40])
def test_parse_retry_after(headers: dict[str, str] | None, now: float | None, expected: float | None) -> None:
    got = parse_retry_after(headers, now)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_retry_after_date_through_classify() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    header = format_datetime(datetime(2026, 3, 1, 12, 0, 45, tzinfo=UTC), usegmt=True)
    got = classify(status=503, headers={"Retry-After": header}, now=now.timestamp())
    assert got.error_class is E.OVERLOADED
    assert got.retry_after_s == pytest.approx(45.0)


def test_error_classes_match_contract_defaults() -> None:
    assert [e.value for e in ErrorClass] == list(defaults.ERROR_CLASSES)
    assert {e.value for e in RETRYABLE} == defaults.RETRYABLE_CLASSES
    assert str(ErrorClass.TIMEOUT) == "timeout"
    assert ErrorClass("timeout") is ErrorClass.TIMEOUT
    assert isinstance(ErrorClass.TIMEOUT, str)


def test_classified_of_defaults_retryable_per_class() -> None:
    assert Classified.of("overloaded").retryable is True
    assert Classified.of(E.AUTH).retryable is False
    assert Classified.of(E.RATE_LIMIT, retryable=False).retryable is False


def test_provider_error_from_http_and_str() -> None:
    raw = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    err = ProviderError.from_http(529, raw, {"retry-after": "3"}, model="claude")
    assert err.error_class is E.OVERLOADED
    assert err.retryable
    assert err.status == 529
    assert err.body == anthropic("overloaded_error", "Overloaded")
    assert err.classified.retry_after_s == 3.0
    assert str(err) == "overloaded from claude (HTTP 529): Overloaded"


def test_errors_pickle_round_trip() -> None:
    err = StreamBroken(Classified.of(E.CONNECTION, "reset"), model="m", chunks_received=4)
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, StreamBroken)
    assert isinstance(back, ProviderError)
    assert back.classified == err.classified
    assert back.chunks_received == 4
    assert back.model == "m"
