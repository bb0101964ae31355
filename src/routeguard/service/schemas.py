"""Request and response bodies (pydantic v2), so /openapi.json documents every endpoint.

Request models are strict (no "yes" for a boolean, no "5" for a number); unknown keys are ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class OutcomeIn(_In):
    trace_id: str | None = None
    model: str
    ok: bool
    error: str | None = None
    latency_ms: float | None = None
    partial_output: bool = False
    tokens: dict[str, int] | None = None
    quality: float | None = None


class OutcomesAccepted(_Out):
    accepted: int
    count: int


# ---------------------------------------------------------------- health and routes
class HealthSignalIn(_In):
    status: Literal["up", "degraded", "down"]
    source: str = "external"
    ttl: str | float | None = Field(None, description="a duration ('30s', '5m') or seconds", examples=["60s"])


class HealthSignalOut(_Out):
    model: str
    status: str
    source: str
    ttl_s: float | None
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
    label: str | None = None
    dry_run: bool = False


class UploadOut(_Out):
    version: int | None
    status: str
    hash: str
    findings: list[dict[str, Any]]


class ApproveIn(_In):
    comment: str | None = None


class ScopeIn(_In):
    all: bool | None = None
    tenants: list[str] | None = None
    percent: int | None = Field(None, ge=1, le=100)


class PublishIn(_In):
    scope: ScopeIn | None = Field(None, description="{all: true} (default), {tenants: [..]} or {percent: p}")
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
    tenant: str | None = Field(None, description="end this tenant's staged publication")
    reason: str | None = None


class RollbackOut(_Out):
    publications: list[dict[str, Any]]
    stable_version: int | None


# ---------------------------------------------------------------- safe mode, audit, queue
class SafeModeIn(_In):
    enabled: bool
    tenant: str | None = None
    reason: str = ""


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
