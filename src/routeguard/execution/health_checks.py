"""Active health checks (CONTRACT §1): a small chat request to a model every ``interval`` while it is out.

A model with ``health_check`` is checked while it is unhealthy or probing under some policy (always, with
``always: true``). Success is a 2xx with a well-formed completion — a ``choices`` list holding a message or
text, whatever its content or finish reason, so reasoning models that spend their tokens thinking pass
(DESIGN pitfall 6). A success ends the cooldown and counts as a probe; a failure extends it.

The same checker runs in the service (real time, an asyncio task) and in the simulator (virtual time):
the caller asks :meth:`ActiveChecker.due` for the models to check now and awaits :meth:`check` for each.
In a fleet with ``--redis``, one replica checks each model per interval: the service takes a Redis lock
(``SET NX PX``) before each check it finds due (``ServiceState._claim_check``); the result reaches the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from routeguard.core.model import Model
from routeguard.execution.providers.base import Provider, ProviderError

if TYPE_CHECKING:
    from routeguard.runtime import Router

__all__ = ["ActiveChecker", "run_checks", "well_formed"]

log = logging.getLogger("routeguard.health")


def well_formed(completion: object) -> bool:
    """A completion with at least one choice that carries a message or a text (any content, any finish)."""
    if not isinstance(completion, dict):
        return False
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    first = choices[0]
    return isinstance(first, dict) and (isinstance(first.get("message"), dict) or "text" in first)


class ActiveChecker:
    def __init__(self, router: Router, provider_for: Callable[[Model], Provider]) -> None:
        self.router = router
        self._provider_for = provider_for
        self._next_at: dict[str, float] = {}
        self._running: set[str] = set()

    def _models(self) -> Iterable[Model]:
        return [m for m in self.router.catalogue().values() if m.health_check is not None]

    def due(self, now: float) -> list[Model]:
        """The models whose check is due now (and not already running)."""
        candidates = [m for m in self._models() if m.name not in self._running]
        if not candidates:
            return []
        out_now = self.router.models_out()
        due: list[Model] = []
        for model in candidates:
            check = model.health_check
            assert check is not None
            if not check.always and model.name not in out_now:
                self._next_at.pop(model.name, None)  # checked again at once when it next goes out
                continue
            if now >= self._next_at.get(model.name, float("-inf")):
                self._next_at[model.name] = now + check.interval_s
                due.append(model)
        return due

    async def check(self, model: Model) -> bool:
        """Send the check and feed its result to the router; whether it succeeded."""
        check = model.health_check
        assert check is not None
        self._running.add(model.name)
        request = {
            "model": model.endpoint.model or model.name,
            "messages": [{"role": "user", "content": check.prompt}],
            "max_tokens": check.max_tokens,
        }
        ok, error = False, "failure"
        try:
            completion = await self._provider_for(model).complete(request, timeout_s=check.timeout_s)
            ok = well_formed(completion)
            error = "ok" if ok else "server_error"
        except ProviderError as exc:
            error = exc.error_class.value
        except Exception:  # a check must never take the service down; an odd failure is a failed check
            error = "connection"
        finally:
            self._running.discard(model.name)
        self.router.check_result(model.name, ok, error=error, interval_s=check.interval_s)
        return ok


async def run_checks(
    router_of: Callable[[], Router],
    clock: Callable[[], float],
    claim: Callable[[Model], Awaitable[bool]],
    every_s: float = 0.5,
) -> None:
    """The service's loop (until cancelled): every ``every_s`` start the checks that are due, each as its own task
    so a slow one holds up no other. ``router_of`` is asked each time (a legacy router may be replaced);
    ``claim(model)`` says whether this replica checks it this interval (in a fleet, one replica does)."""
    checker: ActiveChecker | None = None
    running: set[asyncio.Task[bool]] = set()
    while True:
        try:
            router = router_of()
            if checker is None or checker.router is not router:
                checker = ActiveChecker(router, router.executor.providers.get)
            for model in await asyncio.to_thread(checker.due, clock()):
                if not await claim(model):
                    continue  # another replica checks it this interval; its result reaches us through the fleet
                task = asyncio.get_running_loop().create_task(checker.check(model))
                running.add(task)
                task.add_done_callback(running.discard)
        except Exception:
            log.exception("active health checks failed")
        await asyncio.sleep(every_s)
