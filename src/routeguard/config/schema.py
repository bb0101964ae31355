"""JSON Schema of the bundle (CONTRACT §1), for editors and CI linters."""

from __future__ import annotations

from typing import Any

from routeguard.core import defaults as D

__all__ = ["bundle_schema"]

_DURATION: dict[str, Any] = {
    "description": "a duration: '250ms', '30s', '5m', '2h'; a bare number means seconds",
    "anyOf": [{"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"}, {"type": "number", "minimum": 0}],
}
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string", "minLength": 1}}
_RATE: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}


def _obj(props: dict[str, Any], required: list[str] | None = None, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    if description:
        out["description"] = description
    return out


def bundle_schema() -> dict[str, Any]:
    model = _obj(
        {
            "provider": {"type": "string"},
            "description": {"type": "string"},
            "endpoint": _obj(
                {
                    "type": {"enum": ["openai", "azure", "anthropic", "litellm", "callable", "fake"],
                             "default": "openai"},
                    "base_url": {"type": "string"},
                    "model": {"type": "string"},
                    "api_key_env": {"type": "string", "description": "name of the env var holding the API key"},
                    "deployment": {"type": "string", "description": "azure: the deployment name"},
                    "api_version": {"type": "string", "description": "azure: the api-version query parameter"},
                    "max_tokens": {"type": "integer", "minimum": 1,
                                   "description": "anthropic: max_tokens when a request names none"},
                    "anthropic_version": {"type": "string", "description": "anthropic: the anthropic-version header"},
                    "params": {"type": "object", "description": "litellm: extra keyword arguments for the call",
                               "additionalProperties": {"type": ["string", "number", "boolean"]}},
                }
            ),
            "capabilities": _STRINGS,
            "modalities": {**_STRINGS, "default": sorted(D.MODALITIES)},
            "context_window": {"type": "integer", "minimum": 1},
            "clearance": {"type": "string", "description": "most sensitive data class it may receive"},
            "regions": _STRINGS,
            "cost": _obj(
                {"input_per_1m": {"type": "number", "minimum": 0}, "output_per_1m": {"type": "number", "minimum": 0}}
            ),
            "languages": _STRINGS,
            "limits": _obj({"rpm": {"type": "integer", "minimum": 1}, "tpm": {"type": "integer", "minimum": 1}}),
            "trusted": {"type": "boolean", "default": False},
            "health_check": _obj(
                {
                    "interval": _DURATION,
                    "timeout": _DURATION,
                    "max_tokens": {"type": "integer", "minimum": 1},
                    "prompt": {"type": "string"},
                    "always": {"type": "boolean", "default": False},
                }
            ),
            "deployments": {
                "type": "array",
                "description": "more endpoints of the same model (regions, replicas, keys); its endpoint is 'main'",
                "items": _obj({"name": {"type": "string"}, "endpoint": {"type": "object"}, "regions": _STRINGS,
                               "weight": {"type": "integer", "minimum": 0, "default": 1}}, ["endpoint"]),
            },
        },
        ["capabilities", "clearance"],
    )
    profile = _obj(
        {
            "requires": _STRINGS,
            "capabilities": {**_STRINGS, "description": "ceiling: no routed model may have a capability outside it"},
            "data_class": {"type": "string"},
            "regions": _STRINGS,
            "description": {"type": "string"},
        },
        ["data_class"],
    )
    approval = _obj(
        {
            "model": {"type": "string"},
            "profile": {"type": "string"},
            "by": {"type": "string"},
            "evidence": {"type": "string"},
            "expires": {"type": "string", "format": "date"},
        },
        ["model", "profile"],
    )
    notifier = _obj(
        {
            "type": {"enum": ["webhook", "slack", "email", "log", "file"]},
            "url": {"type": "string"},
            "host": {"type": "string"},
            "port": {"type": "integer"},
            "from": {"type": "string"},
            "to": _STRINGS,
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "path": {"type": "string", "description": "file notifiers: the JSON-lines file to append to"},
        },
        ["type"],
    )
    fallback = {
        "anyOf": [
            {"type": "string"},
            _obj(
                {
                    "model": {"type": "string"},
                    "on": {"type": "array", "items": {"enum": sorted(D.TRIGGERS)}, "default": sorted(D.FALLBACK_ON)},
                    "after": _DURATION,
                },
                ["model"],
            ),
        ]
    }
    health = _obj(
        {
            "window": _DURATION,
            "min_samples": {"type": "integer", "minimum": 1},
            "error_rate": _RATE,
            "degraded_error_rate": _RATE,
            "timeout_rate": _RATE,
            "p95_latency": _DURATION,
            "cooldown": _DURATION,
            "cooldown_max": _DURATION,
            "probes": {"type": "integer", "minimum": 1},
            "min_dwell": _DURATION,
            "stale_after": _DURATION,
            "consecutive_failures": {"type": "integer", "minimum": 1},
            "max_probes_in_flight": {"type": "integer", "minimum": 1},
            "probes_in_flight": {"type": "integer", "minimum": 1},
            "quality": _obj({"min": _RATE, "min_samples": {"type": "integer", "minimum": 1}}),
        }
    )
    policy = _obj(
        {
            "profile": {"type": "string"},
            "description": {"type": "string"},
            "match": _obj(
                {
                    "agent": {"type": "string"},
                    "task_types": _STRINGS,
                    "tenants": _STRINGS,
                    "tags": _STRINGS,
                    "business_lines": _STRINGS,
                }
            ),
            "primary": {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": _obj(
                            {"model": {"type": "string"}, "weight": {"type": "integer", "minimum": 0}}, ["model"]
                        ),
                    },
                    _obj(
                        {
                            "learned": _obj(
                                {
                                    "strong": {"type": "string"},
                                    "weak": {"type": "string"},
                                    "artifact": {"type": "string", "description": "plain JSON data file"},
                                    "sha256": {"type": "string", "pattern": "^(sha256:)?[0-9a-fA-F]{64}$"},
                                    "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                                },
                                ["strong", "weak", "artifact", "sha256", "threshold"],
                            )
                        },
                        ["learned"],
                    ),
                ]
            },
            "fallbacks": {"type": "array", "items": fallback},
            "terminal": {
                "anyOf": [
                    {"enum": ["suspend", "human_queue", "read_only", "static_response"]},
                    _obj(
                        {
                            "action": {"enum": ["suspend", "human_queue", "read_only", "static_response"]},
                            "queue": {"type": "string"},
                            "response": {"type": "string"},
                            "message": {"type": "string"},
                        },
                        ["action"],
                    ),
                ]
            },
            "timeout": _DURATION,
            "retry": _obj(
                {
                    "attempts": {"type": "integer", "minimum": 1},
                    "backoff": _DURATION,
                    "backoff_max": _DURATION,
                    "on": {"type": "array", "items": {"enum": list(D.ERROR_CLASSES)}},
                }
            ),
            "health": health,
            "budget": _obj({"max_usd_per_request": {"type": "number", "minimum": 0}}),
            "canary": _obj(
                {"percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}, "step": _DURATION}, ["percent"]
            ),
            "overrides": _STRINGS,
            "notify": _STRINGS,
        },
        ["profile", "primary"],
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "routeguard configuration bundle",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "data_classes": {
                **_STRINGS,
                "default": list(D.DATA_CLASSES),
                "description": "ordered, least sensitive first",
            },
            "models": {"type": "object", "additionalProperties": model},
            "profiles": {"type": "object", "additionalProperties": profile},
            "approvals": {"type": "array", "items": approval},
            "notifiers": {"type": "object", "additionalProperties": notifier},
            "policies": {"type": "object", "additionalProperties": policy},
            "sources": _obj(
                {
                    "health": _obj(
                        {
                            "url": {"type": "string", "description": "polled per provider: contains {provider}"},
                            "interval": {**_DURATION, "default": "10s"},
                            "timeout": {**_DURATION, "default": "1s"},
                        },
                        ["url"],
                        "a provider registry answering {status: up|degraded|down, score?, ttl?}",
                    ),
                    "cost": _obj(
                        {
                            "url": {"type": "string", "description": "asked per model: contains {model}"},
                            "ttl": {**_DURATION, "default": "5m"},
                            "timeout": {**_DURATION, "default": "500ms"},
                        },
                        ["url"],
                        "a cost service answering {input_per_1m, output_per_1m}",
                    ),
                },
                description="optional: pull health and cost instead of waiting for pushes (PowerX)",
            ),
            "safe_mode": _obj(
                {
                    "auto": _obj(
                        {
                            "fallback_failure_rate": _RATE,
                            "window": _DURATION,
                            "min_samples": {"type": "integer", "minimum": 1},
                        }
                    )
                }
            ),
        },
        "required": ["models", "profiles", "policies"],
    }
