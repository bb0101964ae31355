"""Request and response bodies (pydantic v2), so /openapi.json documents every endpoint.

Request models are strict (no "yes" for a boolean, no "5" for a number); unknown keys are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from routeguard.core.defaults import ERROR_CLASSES


class _In(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- errors
class ErrorDetail(_Out):
    code: str = Field(examples=["unknown_agent"])
    message: str
    findings: list[dict[str, Any]] | None = None


class ErrorBody(_Out):
    error: ErrorDetail


# ------------------------------------------------ route and outcomes (documented here; parsed by the core)
class RouteRequest(_In):
    trace_id: str | None = None
    agent: str | None = Field(None, examples=["triage-agent"])
    tenant: str | None = None
    task_type: str | None = None
    data_class: str | None = None
    region: str | None = None
    language: str | None = None
    modalities: list[str] | None = None
    capabilities: list[str] | None = None
    tags: list[str] | None = None
    estimated_tokens: dict[str, int] | None = Field(None, examples=[{"input": 1200, "output": 300}])
    sla_ms: float | None = None
    budget_usd: float | None = None
    metadata: dict[str, Any] | None = None
    prompt: str | None = Field(None, description="the task text, scored for a learned primary (CONTRACT §7)")


class DecisionOut(_Out):
    trace_id: str
    policy: str
    policy_version: int | None
    policy_hash: str
    status: Literal["primary", "fallback", "terminal"]
    model: str | None
    arm: str | None
    backups: list[str]
    degraded: bool
    safe_mode: bool
    terminal: dict[str, Any] | None
    cost_estimate_usd: float | None
    rejected: list[dict[str, str]]
    score: float | None = None  # a learned primary's per-prompt score
    deployment: str | None = None  # for a model with deployments: the one chosen (absent otherwise)


_Name = Annotated[str, Field(min_length=1, max_length=200)]  # names fit the store's columns
_Count = Annotated[int, Field(ge=0, le=2**53 - 1)]


class OutcomeIn(_In):
    model_config = ConfigDict(strict=True, extra="forbid")  # the core refuses unknown fields

    trace_id: str | None = Field(None, max_length=200)
    model: _Name
    ok: bool
    error: str | None = Field(None, json_schema_extra={"enum": [*ERROR_CLASSES, None]})
    latency_ms: float | None = Field(None, ge=0, le=2**53 - 1)
    partial_output: bool = False
    tokens: dict[str, _Count] | None = None
    quality: float | None = Field(None, ge=0, le=1)
    policy: str | None = None
    task_type: str | None = None
    deployment: str | None = Field(None, min_length=1, max_length=200,
                                   description="the model's deployment the call went to (feeds its own health)")


class OutcomesAccepted(_Out):
    accepted: int
    count: int


# ---------------------------------------------------------------- health and routes
class HealthSignalIn(_In):
    status: Literal["up", "degraded", "down"]
    source: str = Field("external", min_length=1, max_length=100)
    ttl: str | float | None = Field(
        None, description="a duration ('30s', '5m') or seconds; at most 24h", examples=["60s"]
    )
    override: bool = Field(False, description="with `up`: end the cooldown now (operator role)")


class HealthSignalOut(_Out):
    model: str
    status: str
    source: str
    ttl_s: float | None
    override: bool = False
    health: dict[str, Any]


class SignalWithdrawnOut(_Out):
    model: str
    source: str
    withdrawn: bool
    health: dict[str, Any]


class HealthOut(_Out):
    models: dict[str, Any]


class RoutesOut(_Out):
    routes: list[dict[str, Any]]


class ModelCard(_Out):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "routeguard"


class ModelList(_Out):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# ---------------------------------------------------------------- policies
class PolicyUpload(_In):
    config: Any = Field(
        description="the bundle: an object, or YAML/JSON text",
        json_schema_extra={"anyOf": [{"type": "object"}, {"type": "string"}]},
    )
    label: str | None = Field(None, max_length=200)
    dry_run: bool = False
    # PowerX's upload fields (CONTRACT §3): `version` is taken as the label, `scope` is publish's default,
    # `approver` the only principal who may approve the version
    version: str | int | None = Field(None, description="PowerX: taken as the label")
    scope: dict[str, Any] | None = Field(
        None, description="the intended rollout, used by publish when it names none (same shapes as publish)"
    )
    approver: str | None = Field(None, description="the principal who must approve this version (403 for others)")


class UploadOut(_Out):
    version: int | None
    status: str
    hash: str
    findings: list[dict[str, Any]]


class ApproveIn(_In):
    comment: str | None = None


class ScopeIn(_In):
    all: bool | None = None
    tenants: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(None, min_length=1)
    percent: int | None = Field(None, ge=1, le=100)
    business_lines: list[str] | None = None


class PublishIn(_In):
    scope: ScopeIn | None = Field(
        None,
        description="{all: true}, {tenants: [..]}, {business_lines: [..]} or {percent: p}; default: the "
        "upload's scope, else all",
    )
    comment: str | None = None


class PublishOut(_Out):
    version: int
    hash: str
    status: str
    scope: dict[str, Any]
    publication: dict[str, Any]
    stable_version: int | None


class VersionOut(_Out):
    version: int
    hash: str
    label: str | None
    author: str
    created_at: str
    status: str
    approvals: list[dict[str, Any]]
    scope: dict[str, Any] | None
    scopes: list[dict[str, Any]]


class VersionList(_Out):
    versions: list[VersionOut]
    stable_version: int | None
    publications: list[dict[str, Any]]


class RollbackIn(_In):
    version: int | None = Field(None, description="publish this version again where a later one serves")
    policy_version: int | None = Field(None, description="PowerX's name for `version`")
    tenant: str | None = Field(None, description="end this tenant's staged publication", max_length=200)
    reason: str | None = None


class RollbackOut(_Out):
    publications: list[dict[str, Any]]
    stable_version: int | None


# ---------------------------------------------------------------- safe mode, audit, queue
class SafeModeIn(_In):
    enabled: bool
    tenant: str | None = Field(None, max_length=200)
    reason: str = ""
    expected_duration: str | None = Field(
        None, description="how long it is expected to last (an operator's statement, e.g. '30m'); notified"
    )


class SafeModeOut(_Out):
    enabled: bool
    tenants: list[str]


class AuditPage(_Out):
    records: list[dict[str, Any]]
    next: int | None


class VerifyOut(_Out):
    ok: bool
    records: int
    first_broken: int | None
    reason: str | None = None


class QueueOut(_Out):
    entries: list[dict[str, Any]]


class QueueResolveIn(_In):
    resolution: str = Field(min_length=1, max_length=200, description="what was done, e.g. answered, escalated")
    note: str | None = Field(None, max_length=10_000)


class QueueEntryOut(_Out):
    id: int
    queue: str
    policy: str | None
    status: str
    claimed_by: str | None = None
    resolved_by: str | None = None
    resolution: dict[str, Any] | None = None
