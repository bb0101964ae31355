"""The typed, immutable configuration bundle (CONTRACT §1).

Every default lives in :mod:`routeguard.core.defaults`; these classes only hold values.
Parsing from plain data is in :mod:`routeguard.core.parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from routeguard.core import defaults as D

__all__ = [
    "Approval",
    "Arm",
    "Bundle",
    "Canary",
    "Cost",
    "Deployment",
    "Endpoint",
    "Fallback",
    "HealthCheck",
    "HealthConfig",
    "Learned",
    "Limits",
    "Match",
    "Model",
    "Notifier",
    "Policy",
    "Profile",
    "RetryConfig",
    "SafeModeAuto",
    "SourceConfig",
    "Sources",
    "Terminal",
    "TerminalAction",
]


class TerminalAction(StrEnum):
    SUSPEND = "suspend"
    HUMAN_QUEUE = "human_queue"
    READ_ONLY = "read_only"
    STATIC_RESPONSE = "static_response"


@dataclass(frozen=True, slots=True)
class Endpoint:
    type: str = "openai"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    # azure: the deployment name and the api-version query parameter
    deployment: str | None = None
    api_version: str | None = None
    # anthropic: max_tokens when the request names none (the Messages API requires one); version header
    max_tokens: int | None = None
    anthropic_version: str | None = None
    # litellm: extra keyword arguments for litellm.acompletion (aws_region_name, vertex_project, ...)
    params: tuple[tuple[str, str | int | float | bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Deployment:
    """One more endpoint of the same model (a region, a replica, another key): CONTRACT §1 ``deployments``."""

    name: str
    endpoint: Endpoint
    regions: frozenset[str] | None = None  # None: the model's regions
    weight: int = 1  # share of the spread; 0 drains it


@dataclass(frozen=True, slots=True)
class Cost:
    input_per_1m: float = 0.0
    output_per_1m: float = 0.0

    def estimate_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_1m + output_tokens * self.output_per_1m) / 1_000_000


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A model's active health check: a small chat request every ``interval_s`` while it is out."""

    interval_s: float = D.HEALTH_CHECK_INTERVAL_S
    timeout_s: float = D.HEALTH_CHECK_TIMEOUT_S
    max_tokens: int = D.HEALTH_CHECK_MAX_TOKENS
    prompt: str = D.HEALTH_CHECK_PROMPT
    always: bool = False  # check while healthy too


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    provider: str
    endpoint: Endpoint
    capabilities: frozenset[str]
    clearance: str
    cost: Cost = Cost()
    modalities: frozenset[str] = D.MODALITIES
    context_window: int | None = None
    regions: frozenset[str] | None = None
    languages: frozenset[str] | None = None
    limits: Limits | None = None
    trusted: bool = False
    health_check: HealthCheck | None = None
    deployments: tuple[Deployment, ...] = ()  # beyond ``endpoint`` (which is deployment "main")


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    requires: frozenset[str] = frozenset()
    capabilities: frozenset[str] | None = None  # the ceiling; None = no ceiling
    data_class: str = "public"
    regions: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    model: str
    profile: str
    by: str = ""
    evidence: str = ""
    expires: str | None = None  # ISO date (YYYY-MM-DD) inclusive; None = no expiry

    @property
    def ref(self) -> str:
        return self.evidence or f"{self.model}@{self.profile}"


@dataclass(frozen=True, slots=True)
class Notifier:
    name: str
    type: str  # webhook | slack | email | log | file
    url: str | None = None
    host: str | None = None
    port: int | None = None
    sender: str | None = None
    to: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None  # `file` notifiers: the JSON-lines file to append to


@dataclass(frozen=True, slots=True)
class Arm:
    model: str
    weight: int = 100


@dataclass(frozen=True, slots=True)
class Learned:
    """A learned primary (CONTRACT §7): per prompt, ``weak`` when the edge's score >= ``threshold``, else ``strong``.

    The artifact (a plain data file) is checked and loaded outside the core; the core only sees the score.
    """

    strong: str
    weak: str
    artifact: str
    sha256: str
    threshold: float


@dataclass(frozen=True, slots=True)
class Fallback:
    model: str
    on: frozenset[str] = D.FALLBACK_ON
    after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Terminal:
    action: TerminalAction = TerminalAction.SUSPEND
    queue: str | None = None
    response: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RetryConfig:
    attempts: int = D.RETRY_ATTEMPTS
    backoff_s: float = D.RETRY_BACKOFF_S
    backoff_max_s: float = D.RETRY_BACKOFF_MAX_S
    on: frozenset[str] = D.RETRYABLE_CLASSES


@dataclass(frozen=True, slots=True)
class HealthConfig:
    window_s: float = D.HEALTH_WINDOW_S
    min_samples: int = D.HEALTH_MIN_SAMPLES
    error_rate: float = D.HEALTH_ERROR_RATE
    degraded_error_rate: float = D.HEALTH_DEGRADED_ERROR_RATE
    timeout_rate: float = D.HEALTH_TIMEOUT_RATE
    p95_latency_s: float | None = None
    cooldown_s: float = D.HEALTH_COOLDOWN_S
    cooldown_max_s: float = D.HEALTH_COOLDOWN_MAX_S
    probes: int = D.HEALTH_PROBES
    min_dwell_s: float = D.HEALTH_MIN_DWELL_S
    stale_after_s: float = D.HEALTH_STALE_AFTER_S
    consecutive_failures: int = D.HEALTH_CONSECUTIVE_FAILURES
    max_probes_in_flight: int = D.HEALTH_MAX_PROBES_IN_FLIGHT
    quality_min: float | None = None  # health.quality.min: mean score below it degrades (reason `quality`)
    quality_min_samples: int = D.HEALTH_QUALITY_MIN_SAMPLES
    probe_timeout_s: float = D.TIMEOUT_S  # the policy's `timeout`: a probe without an outcome by then failed

    def __post_init__(self) -> None:
        """Self-validating: a config that the breaker could not honour is refused when it is built."""
        problems = [
            name
            for name, ok in (
                ("window_s", self.window_s > 0),
                ("min_samples", self.min_samples >= 1),
                ("error_rate", 0.0 <= self.error_rate <= 1.0),
                ("degraded_error_rate", 0.0 <= self.degraded_error_rate <= self.error_rate),
                ("timeout_rate", 0.0 <= self.timeout_rate <= 1.0),
                ("cooldown_s", self.cooldown_s >= 0),
                ("cooldown_max_s", self.cooldown_max_s >= self.cooldown_s),
                ("probes", self.probes >= 1),
                ("max_probes_in_flight", self.max_probes_in_flight >= 1),
                ("min_dwell_s", self.min_dwell_s >= 0),
                ("consecutive_failures", self.consecutive_failures >= 1),
                ("quality_min", self.quality_min is None or 0.0 <= self.quality_min <= 1.0),
                ("quality_min_samples", self.quality_min_samples >= 1),
                ("probe_timeout_s", self.probe_timeout_s > 0),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"invalid health config: {', '.join(problems)}")


@dataclass(frozen=True, slots=True)
class Canary:
    percent: float
    step_s: float = D.CANARY_STEP_S


@dataclass(frozen=True, slots=True)
class Match:
    agent: str | None = None
    task_types: frozenset[str] | None = None
    tenants: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    business_lines: frozenset[str] | None = None

    @property
    def is_empty(self) -> bool:
        return (
            self.agent is None and not self.task_types and not self.tenants and not self.tags
            and not self.business_lines
        )


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    profile: str
    primary: tuple[Arm, ...]
    fallbacks: tuple[Fallback, ...] = ()
    match: Match = Match()
    terminal: Terminal = Terminal()
    timeout_s: float = D.TIMEOUT_S
    retry: RetryConfig = RetryConfig()
    health: HealthConfig = HealthConfig()
    budget_usd: float | None = None
    canary: Canary | None = None
    overrides: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    learned: Learned | None = None  # when set, primary is (strong, weak)

    @property
    def agent(self) -> str:
        """The agent this policy serves: ``match.agent``, else the policy key."""
        return self.match.agent if self.match.agent is not None else self.name

    @property
    def primary_models(self) -> tuple[str, ...]:
        return tuple(a.model for a in self.primary)


@dataclass(frozen=True, slots=True)
class SafeModeAuto:
    fallback_failure_rate: float = D.SAFE_MODE_FALLBACK_FAILURE_RATE
    window_s: float = D.SAFE_MODE_WINDOW_S
    min_samples: int = D.SAFE_MODE_MIN_SAMPLES


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A pull source (CONTRACT §1 `sources`): a URL template polled or queried with a timeout."""

    url: str
    interval_s: float = D.SOURCE_HEALTH_INTERVAL_S  # health: how often each provider is polled
    timeout_s: float = D.SOURCE_HEALTH_TIMEOUT_S
    ttl_s: float = D.SOURCE_COST_TTL_S  # cost: how long a quote is cached


@dataclass(frozen=True, slots=True)
class Sources:
    health: SourceConfig | None = None
    cost: SourceConfig | None = None


@dataclass(frozen=True, slots=True)
class Bundle:
    data_classes: tuple[str, ...]
    models: Mapping[str, Model]
    profiles: Mapping[str, Profile]
    approvals: tuple[Approval, ...]
    notifiers: Mapping[str, Notifier]
    policies: Mapping[str, Policy]
    safe_mode_auto: SafeModeAuto | None = None
    sources: Sources = Sources()

    def data_class_rank(self, name: str) -> int:
        """Position of ``name`` in the ordered data classes; -1 when unknown."""
        try:
            return self.data_classes.index(name)
        except ValueError:
            return -1
