"""The tracker's fleet inputs: what another replica saw, applied to this replica's :class:`HealthTracker`.

A fleet (CONTRACT §6) shares outcomes, signals and check results by replaying them into each replica's
tracker (ordinary :meth:`HealthTracker.record` / ``signal`` / ``check_result`` calls). Two inputs have no
ordinary twin, and live here:

* :meth:`FleetTracker.note_probe` — another replica took a probe permit: the pair counts it against its
  budget (and holds it in flight until an outcome of the model comes, or the probe timeout), whatever this
  replica's own admission would say, so the budget is the fleet's;
* :meth:`FleetTracker.adopt_ejection` — another replica ejected the pair: it is ejected here too, with
  the same cooldown end (an already ejected pair takes the later end), so every replica probes again
  at the same moment. A pair whose ejection is already over, or ejected by a ``down`` signal (signals
  travel on their own), is left alone.

Pure, like the tracker: no clock, no I/O; ``now`` is an argument.
"""

from __future__ import annotations

from dataclasses import replace

from routeguard.core.breaker import Breaker, ProbeTaken
from routeguard.core.health import HealthTracker, HealthTransition
from routeguard.core.health_machine import TRANSITIONS, Proof
from routeguard.core.health_view import HealthState

__all__ = ["FleetTracker"]

_U, _P = HealthState.UNHEALTHY, HealthState.PROBING


class FleetTracker(HealthTracker):
    """A :class:`HealthTracker` that also takes other replicas' probe permits and ejections."""

    __slots__ = ()

    def note_probe(self, policy: str, model: str, now: float) -> bool:
        """Another replica took a permit of a probing pair; False when the pair is not probing here."""
        now = self._clamp(now)
        breaker = self.breaker(policy, model)
        if breaker is None or breaker.state is not _P:
            return False
        self._step(policy, model, ProbeTaken(), now)
        return True

    def adopt_ejection(
        self, policy: str, model: str, now: float, *, cooldown_until: float, ejections: int, detail: str
    ) -> bool:
        """Another replica ejected the pair until ``cooldown_until``; True when this pair moved to unhealthy."""
        now = self._clamp(now)
        if cooldown_until <= now:
            return False
        pairs = self._pairs.setdefault(model, {})
        old = pairs.get(policy) or Breaker()
        if old.state is _U:
            if not old.signal_ejected and cooldown_until > old.cooldown_until:
                pairs[policy] = replace(old, cooldown_until=cooldown_until)
            return False
        if _U not in TRANSITIONS[old.state]:
            return False
        pairs[policy] = replace(
            old, state=_U, since=now, detail=detail, ejections=max(old.ejections + 1, ejections),
            cooldown_until=cooldown_until, signal_ejected=False, baseline=None, failure=None, grow=True,
            in_flight=(), permits=0, successes=0, quality=False, unproven=False, proof=Proof.NONE,
            trouble_since=old.trouble_since if old.trouble_since is not None else now,
        )
        self._transitions.append(HealthTransition(policy, model, old.state, _U, now, detail))
        return True
