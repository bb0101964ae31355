"""GET /v1/models: the agents the proxy serves, OpenAI style."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeguard.service.api.deps import ERRORS, ROUTER, get_state
from routeguard.service.schemas import ModelList

router = APIRouter(tags=["proxy"])


@router.get(
    "/v1/models", response_model=ModelList, responses=ERRORS, summary="The agents served (OpenAI list)"
)
def models(request: Request, _p: Any = ROUTER) -> dict[str, Any]:
    state = get_state(request)
    agents: dict[str, dict[str, Any]] = {}
    for table in state.live.tables.values():
        for name, compiled in table.policies.items():
            card = agents.setdefault(
                compiled.policy.agent,
                {
                    "id": compiled.policy.agent,
                    "object": "model",
                    "created": 0,
                    "owned_by": "routeguard",
                    "policies": [],
                    "policy_version": table.version,
                },
            )
            if name not in card["policies"]:
                card["policies"].append(name)
    return {"object": "list", "data": [agents[a] for a in sorted(agents)]}
