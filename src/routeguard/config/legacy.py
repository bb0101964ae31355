"""Legacy single-model mode: one model and one policy ``default`` from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["LEGACY_POLICY", "legacy_bundle", "legacy_configured"]

LEGACY_POLICY = "default"


def legacy_configured(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("ROUTEGUARD_MODEL"))


def legacy_bundle(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The bundle implied by ``ROUTEGUARD_PROVIDER``, ``ROUTEGUARD_MODEL`` and ``ROUTEGUARD_BASE_URL``.

    No fallbacks, terminal ``suspend``; the model is approved for a permissive ``default`` profile.
    """
    env = os.environ if env is None else env
    model = env.get("ROUTEGUARD_MODEL")
    if not model:
        raise ValueError("legacy mode needs ROUTEGUARD_MODEL (and usually ROUTEGUARD_BASE_URL)")
    provider = env.get("ROUTEGUARD_PROVIDER", "openai")
    base_url = env.get("ROUTEGUARD_BASE_URL", "https://api.openai.com/v1")
    key_env = env.get("ROUTEGUARD_API_KEY_ENV", "OPENAI_API_KEY" if provider == "openai" else "ROUTEGUARD_API_KEY")
    return {
        "data_classes": ["public", "internal", "confidential", "restricted"],
        "models": {
            model: {
                "provider": provider,
                "endpoint": {"type": "openai", "base_url": base_url, "model": model, "api_key_env": key_env},
                "capabilities": ["text"],
                "clearance": "restricted",
                "trusted": True,
            }
        },
        "profiles": {LEGACY_POLICY: {"requires": [], "data_class": "public"}},
        "approvals": [{"model": model, "profile": LEGACY_POLICY, "by": "environment", "evidence": "legacy-env"}],
        "policies": {LEGACY_POLICY: {"profile": LEGACY_POLICY, "primary": model, "terminal": {"action": "suspend"}}},
    }
