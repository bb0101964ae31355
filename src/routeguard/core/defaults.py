"""Every default of CONTRACT §1, in one place."""

from __future__ import annotations

DATA_CLASSES: tuple[str, ...] = ("public", "internal", "confidential", "restricted")

ERROR_CLASSES: tuple[str, ...] = (
    "timeout",
    "connection",
    "rate_limit",
    "overloaded",
    "server_error",
    "context_window",
    "content_filter",
    "auth",
    "bad_request",
    "not_found",
)
RETRYABLE_CLASSES: frozenset[str] = frozenset(
    {"timeout", "connection", "rate_limit", "overloaded", "server_error"}
)

TRIGGERS: frozenset[str] = frozenset({"unavailable", "degraded", "retryable", *ERROR_CLASSES})
FALLBACK_ON: frozenset[str] = frozenset({"unavailable", "retryable"})

TIMEOUT_S = 60.0
RETRY_ATTEMPTS = 2
RETRY_BACKOFF_S = 0.2
RETRY_BACKOFF_MAX_S = 5.0

HEALTH_WINDOW_S = 60.0
HEALTH_MIN_SAMPLES = 10
HEALTH_ERROR_RATE = 0.5
HEALTH_DEGRADED_ERROR_RATE = 0.2
HEALTH_TIMEOUT_RATE = 0.5
HEALTH_COOLDOWN_S = 30.0
HEALTH_COOLDOWN_MAX_S = 300.0
HEALTH_PROBES = 3
HEALTH_MIN_DWELL_S = 10.0
HEALTH_STALE_AFTER_S = 300.0
# Envoy-style consecutive-failure detector; opens even below min_samples.
HEALTH_CONSECUTIVE_FAILURES = 5
HEALTH_MAX_PROBES_IN_FLIGHT = 1
HEALTH_QUALITY_MIN_SAMPLES = 20
HEALTH_SIGNAL_MAX_TTL_S = 24 * 3600.0
HEALTH_CHECK_INTERVAL_S = 15.0
HEALTH_CHECK_TIMEOUT_S = 5.0
HEALTH_CHECK_MAX_TOKENS = 16
HEALTH_CHECK_PROMPT = "ping"
# A state is left only when its figure falls below this share of the threshold that entered it.
HEALTH_HYSTERESIS = 0.5

CANARY_STEP_S = 30.0

SAFE_MODE_FALLBACK_FAILURE_RATE = 0.05
SAFE_MODE_WINDOW_S = 60.0
SAFE_MODE_MIN_SAMPLES = 10

MODALITIES: frozenset[str] = frozenset({"text"})
APPROVAL_EXPIRING_WARN_DAYS = 7

# Pull sources (CONTRACT §1 `sources`): a provider registry polled for health, a cost service queried per model.
SOURCE_HEALTH_INTERVAL_S = 10.0
SOURCE_HEALTH_TIMEOUT_S = 1.0
SOURCE_COST_TTL_S = 300.0
SOURCE_COST_TIMEOUT_S = 0.5
