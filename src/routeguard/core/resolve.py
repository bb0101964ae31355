"""Which policy a request resolves to (CONTRACT §1): most specific match first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from routeguard.core.model import Match, Policy

__all__ = ["PolicyIndex", "RequestKey"]


@dataclass(frozen=True, slots=True)
class RequestKey:
    """The fields of a request that take part in policy resolution."""

    agent: str | None = None
    task_type: str | None = None
    tenant: str | None = None
    tags: frozenset[str] = frozenset()
    business_line: str | None = None


def _conditions_hold(match: Match, key: RequestKey) -> bool:
    if match.task_types is not None and key.task_type not in match.task_types:
        return False
    if match.tenants is not None and key.tenant not in match.tenants:
        return False
    if match.business_lines is not None and key.business_line not in match.business_lines:
        return False
    return not (match.tags is not None and not (match.tags & key.tags))


def _rank(policy: Policy, key: RequestKey) -> tuple[int, ...] | None:
    """A sortable specificity for ``policy`` against ``key``; None when it does not match."""
    m = policy.match
    if not _conditions_hold(m, key):
        return None
    dims = (m.task_types is not None, m.tenants is not None, m.business_lines is not None, m.tags is not None)
    if key.agent is not None:
        if policy.agent != key.agent:
            return None
        # agent + task type first, then the agent alone; tenants, business lines and tags refine within a tier
        return (1 if dims[0] else 0, int(dims[1]) + int(dims[2]) + int(dims[3]))
    if not any(dims):
        return None  # a policy with no match conditions serves only its agent
    # no agent: task type, then tenant, then business line (like tenant, one level below it), then tags
    return (int(dims[0]), int(dims[1]), int(dims[2]), int(dims[3]))


class PolicyIndex:
    """Resolution of requests to policies, indexed by agent for the fast path."""

    __slots__ = ("_by_agent", "_by_task", "_keyed", "_unagented")

    def __init__(self, policies: Mapping[str, Policy]) -> None:
        by_agent: dict[str, list[Policy]] = {}
        for policy in policies.values():
            by_agent.setdefault(policy.agent, []).append(policy)
        self._by_agent = {a: tuple(ps) for a, ps in by_agent.items()}
        self._keyed = dict(policies)
        self._unagented = tuple(p for p in policies.values() if not p.match.is_empty)
        # fast path: agents whose policies match on task type only resolve by (agent, task type) lookup
        self._by_task: dict[tuple[str, str | None], list[Policy]] = {}
        for agent, group in self._by_agent.items():
            if any(
                p.match.tenants is not None or p.match.tags is not None or p.match.business_lines is not None
                for p in group
            ):
                continue
            task_types: set[str | None] = {None}
            for p in group:
                task_types.update(p.match.task_types or ())
            for task_type in task_types:
                self._by_task[(agent, task_type)] = self._best_slow(RequestKey(agent, task_type))

    def knows_agent(self, agent: str) -> bool:
        return agent in self._by_agent or agent in self._keyed

    def fast(self, agent: str, task_type: str | None) -> Policy | None:
        """The policy for an agent whose policies match on task type only (no tenant or tag conditions)."""
        found = self._by_task.get((agent, task_type))
        if found is None:
            found = self._by_task.get((agent, None))
        if found is not None and len(found) == 1:
            return found[0]
        return None

    def best(self, key: RequestKey) -> list[Policy]:
        """Every policy tied for most specific (more than one means ambiguous); [] when none matches."""
        if key.agent is not None:
            found = self._by_task.get((key.agent, key.task_type))
            if found is None and (key.agent, None) in self._by_task:
                found = self._by_task[(key.agent, None)]  # a task type no policy of the agent names
            if found is not None:
                return found
        return self._best_slow(key)

    def _best_slow(self, key: RequestKey) -> list[Policy]:
        pool: Iterable[Policy]
        pool = self._by_agent.get(key.agent, ()) if key.agent is not None else self._unagented
        best_rank: tuple[int, ...] | None = None
        best: list[Policy] = []
        for policy in pool:
            rank = _rank(policy, key)
            if rank is None:
                continue
            if best_rank is None or rank > best_rank:
                best_rank, best = rank, [policy]
            elif rank == best_rank:
                best.append(policy)
        if not best and key.agent is not None and key.agent in self._keyed:
            # the policy keyed by the agent id serves the agent's requests that match nothing narrower
            return [self._keyed[key.agent]]
        return best

    def resolve(self, key: RequestKey) -> Policy | None:
        """The single most specific policy; ties break by name so the answer is deterministic."""
        best = self.best(key)
        if not best:
            return None
        if len(best) == 1:
            return best[0]
        return min(best, key=lambda p: p.name)
