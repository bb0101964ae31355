"""One bundle mixing every endpoint type — OpenAI-compatible, Anthropic, Azure OpenAI, LiteLLM — on loopback
fakes, for the end-to-end proxy tests (and the docs' example). Agents:

- `assistant`: primary `claude` (anthropic), fallback `gpt` (openai); retry 2 attempts, 10 ms backoff.
- `quota`: primary `claude-quota` (anthropic, `limits.tpm: 40`), fallback `gpt`.
- `quota-openai`: primary `gpt-quota` (openai, `limits.tpm: 10`), fallback `gpt`.
- `azure-agent`: primary `azure-gpt` (azure), fallback `gpt`.
- `azure-filtered`: primary `azure-gpt`, fallback `gpt` on `content_filter` only.
- `litellm-agent`: primary `via-litellm` (litellm `openai/…` onto the OpenAI fake), fallback `gpt`.
- `embed-agent`: primary `embedder` (openai, capability `embeddings`), fallback `embedder-azure` (azure).
- `responder`: primary `gpt-resp` (openai, native Responses API), fallback `claude`.
- `mixed-agent`: profile `mixed` (ceiling allows embeddings), primary `gpt` which has no `embeddings`.
Health never ejects a model here (thresholds out of reach), so tests sharing one service stay independent.
"""

from __future__ import annotations

from typing import Any

from support.service import today_plus

__all__ = ["ANTHROPIC_MODEL", "mixed_bundle"]

ANTHROPIC_MODEL = "claude-sonnet-4-5"
_HEALTH = {"min_samples": 1000, "consecutive_failures": 1000, "min_dwell": "0s"}


def _model(endpoint: dict[str, Any], caps: list[str], **extra: Any) -> dict[str, Any]:
    return {"provider": endpoint["type"], "endpoint": endpoint, "capabilities": caps, "clearance": "internal",
            "cost": {"input_per_1m": 3.0, "output_per_1m": 15.0}, "trusted": True, **extra}


def mixed_bundle(openai_url: str, anthropic_url: str, apis_url: str) -> dict[str, Any]:
    """``openai_url``: the OpenAI fake's ``/v1``; ``anthropic_url``: the Messages fake; ``apis_url``: the
    embeddings / Responses / Azure fake's root."""
    chat = ["text", "tool_use"]
    models = {
        "claude": _model({"type": "anthropic", "base_url": anthropic_url, "model": ANTHROPIC_MODEL,
                          "api_key_env": "RG_TEST_ANTHROPIC_KEY"}, chat),
        "claude-quota": _model({"type": "anthropic", "base_url": anthropic_url, "model": "claude-quota"}, chat,
                               limits={"tpm": 40}),
        "gpt": _model({"type": "openai", "base_url": openai_url, "model": "gpt-up"}, chat),
        "gpt-quota": _model({"type": "openai", "base_url": openai_url, "model": "gpt-quota-up"}, chat,
                            limits={"tpm": 10}),
        "azure-gpt": _model({"type": "azure", "base_url": apis_url, "deployment": "gpt-4o-eu",
                             "api_version": "2024-10-21", "api_key_env": "RG_TEST_AZURE_KEY"}, chat),
        "via-litellm": _model({"type": "litellm", "model": "openai/litellm-up", "base_url": openai_url,
                               "api_key_env": "RG_TEST_LITELLM_KEY", "params": {"max_retries": 0}}, chat),
        "gpt-resp": _model({"type": "openai", "base_url": apis_url + "/v1", "model": "gpt-resp-up"}, chat),
        "embedder": _model({"type": "openai", "base_url": apis_url + "/v1", "model": "embed-up"}, ["embeddings"]),
        "embedder-azure": _model({"type": "azure", "base_url": apis_url, "deployment": "embed-eu"},
                                 ["embeddings"]),
    }
    expires = today_plus(365).isoformat()
    assist = [m for m in models if m not in ("embedder", "embedder-azure")]
    approvals = [{"model": m, "profile": "assist", "by": "governance", "evidence": f"EVAL-{m}", "expires": expires}
                 for m in assist]
    approvals += [{"model": m, "profile": "retrieval", "by": "governance", "evidence": f"EVAL-{m}",
                   "expires": expires} for m in ("embedder", "embedder-azure")]
    approvals.append({"model": "gpt", "profile": "mixed", "by": "governance", "evidence": "EVAL-gpt",
                      "expires": expires})

    def policy(primary: str, fallback: str, **extra: Any) -> dict[str, Any]:
        return {"profile": "assist", "primary": primary, "fallbacks": [fallback], "timeout": "10s",
                "retry": {"attempts": 1}, "health": _HEALTH, "terminal": {"action": "suspend"}, **extra}

    return {
        "data_classes": ["public", "internal", "confidential"],
        "models": models,
        "profiles": {"assist": {"requires": ["text"], "capabilities": ["text", "tool_use"], "data_class": "internal"},
                     "retrieval": {"requires": ["embeddings"], "capabilities": ["embeddings", "text"],
                                   "data_class": "internal"},
                     "mixed": {"requires": ["text"], "capabilities": ["text", "tool_use", "embeddings"],
                               "data_class": "internal"}},
        "approvals": approvals,
        "policies": {
            "assistant": policy("claude", "gpt", retry={"attempts": 2, "backoff": "10ms"}),
            "quota": policy("claude-quota", "gpt"),
            "quota-openai": policy("gpt-quota", "gpt"),
            "azure-agent": policy("azure-gpt", "gpt"),
            "azure-filtered": {**policy("azure-gpt", "gpt"), "fallbacks": [{"model": "gpt", "on": ["content_filter"]}]},
            "litellm-agent": policy("via-litellm", "gpt"),
            "responder": policy("gpt-resp", "claude"),
            "embed-agent": {**policy("embedder", "embedder-azure"), "profile": "retrieval"},
            "mixed-agent": {"profile": "mixed", "primary": "gpt", "health": _HEALTH},
        },
    }
