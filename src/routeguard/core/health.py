"""The live health tracker: outcomes and external signals in, per (policy, model) health out.

Figures (sliding windows, :mod:`routeguard.core.health_window`) are per model and shared by every
policy; each policy judges them with its own :class:`HealthConfig`, and states, cooldowns and
probes are per (policy, model) (rules: :mod:`routeguard.core.health_machine`). A probe is a request
admitted to a PROBING pair, or to a DEGRADED pair whose window lacks the evidence to judge it.

Pure: no clock, no I/O, no randomness. Every call takes ``now`` (seconds); a ``now`` earlier than
one already seen is treated as that latest time. States are judged lazily, when
:meth:`HealthTracker.model_health` or :meth:`HealthTracker.states` looks at a pair; a transition is
stamped with the ``now`` of that look. Call ``states(now)`` as a tick to judge every pair.
Pass a policy the same :class:`HealthConfig` in ``model_health`` as in ``configure``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from routeguard.core import defaults as D
from routeguard.core.health_machine import (
    TRANSITIONS,
    ExternalSignal,
    Figures,
    HealthTransition,
    IllegalHealthTransition,
    PairState,
    SignalStatus,
)
from routeguard.core.health_rules import degraded_proof, due_transition, proven
from routeguard.core.health_view import HEALTHY, HealthState, ModelHealth
from routeguard.core.health_window import (
    QUOTA_WINDOW_S,
    ModelWindow,
    OutcomeKind,
    WindowFigures,
    classify_outcome,
)
from routeguard.core.model import HealthConfig

__all__ = [
    "TRANSITIONS",
    "ExternalSignal",
    "HealthTracker",
    "HealthTransition",
    "IllegalHealthTransition",
    "ModelStatus",
    "SignalStatus",
    "WindowFigures",
]

_DEFAULT_CONFIG = HealthConfig()
_PROBED = (HealthState.PROBING, HealthState.DEGRADED)  # states whose pairs may admit probes


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One model in the health snapshot: its figures and its state under each policy."""

    model: str
    figures: WindowFigures | None  # over the default 60 s window; None without outcomes
    signal: ExternalSignal | None
    policies: Mapping[str, ModelHealth]


class HealthTracker:
    """Health of every model under every policy. Implements :class:`HealthView`.

    Not thread-safe: the runtime holds one lock around every call.
    """

    __slots__ = ("_configs", "_now", "_pairs", "_retain_s", "_signals", "_transitions", "_windows")

    def __init__(
        self, policies: Mapping[str, HealthConfig] | None = None, *, max_buffered_transitions: int = 10_000
    ) -> None:
        self._configs: dict[str, HealthConfig] = {}
        self._retain_s = QUOTA_WINDOW_S
        self._windows: dict[str, ModelWindow] = {}
        self._signals: dict[str, ExternalSignal] = {}
        self._pairs: dict[str, dict[str, PairState]] = {}  # model -> policy -> state
        self._transitions: deque[HealthTransition] = deque(maxlen=max_buffered_transitions)
        self._now = -math.inf
        self.configure(policies or {})

    def configure(self, policies: Mapping[str, HealthConfig]) -> None:
        """Replace the policies' thresholds (on republish); figures, states and cooldowns are kept."""
        self._configs = dict(policies)
        self._retain_s = max([QUOTA_WINDOW_S, *(c.window_s for c in self._configs.values())])
        for window in self._windows.values():
            window.retain(self._retain_s)

    def record(
        self,
        model: str,
        *,
        ok: bool,
        now: float,
        error_class: str | None = None,
        latency_s: float | None = None,
        tokens: int = 0,
        probe: bool = False,
        policy: str | None = None,
    ) -> None:
        """Count one call outcome. ``error_class`` is a CONTRACT §4 class (ValueError otherwise).

        ``probe=True`` ends a probe of ``policy`` (or of every policy probing the model when None).
        """
        kind = classify_outcome(ok, error_class)
        now = self._clamp(now)
        window = self._windows.get(model)
        if window is None:
            window = self._windows[model] = ModelWindow(now, self._retain_s)
        if latency_s is not None and latency_s < 0:
            latency_s = 0.0
        timeout = kind is OutcomeKind.PROVIDER_FAILURE and error_class == "timeout"
        window.add(now, kind, timeout=timeout, latency_s=latency_s, tokens=max(0, tokens))
        if probe:
            self._end_probe(model, policy, kind, error_class or "failure")

    def signal(
        self,
        model: str,
        status: SignalStatus | str,
        now: float,
        ttl_s: float | None = None,
        source: str = "external",
    ) -> None:
        """An external health signal (up / degraded / down); the latest one replaces the previous.

        It expires after ``ttl_s``, else after the judging policy's ``stale_after_s``; an expired
        signal makes the model stale until a new one comes.
        """
        if ttl_s is not None and ttl_s < 0:
            raise ValueError("ttl_s must be >= 0")
        self._signals[model] = ExternalSignal(SignalStatus(status), self._clamp(now), ttl_s, source)

    def begin_probe(self, policy: str, model: str, now: float) -> bool:
        """Take a probe slot of a pair that admits probes; False when none is free.

        ``record(probe=True)`` frees it; a probe whose outcome never comes frees its slot after the
        policy's ``cooldown_s``.
        """
        now = self._clamp(now)
        pair = self._pairs.get(model, {}).get(policy)
        if pair is None or pair.state not in _PROBED:
            return False
        config = pair.config or self._configs.get(policy, _DEFAULT_CONFIG)
        pair.expire_probes(now, config.cooldown_s)
        if not pair.probe_admitted(config.max_probes_in_flight):
            return False
        pair.probes_in_flight.append(now)
        return True

    def model_health(self, policy: str, config: HealthConfig, model: str, now: float) -> ModelHealth:
        """The state of ``model`` judged with ``policy``'s ``config`` at ``now`` (may take a transition)."""
        now = self._clamp(now)
        window = self._windows.get(model)
        signal = self._signals.get(model)
        pairs = self._pairs.get(model)
        pair = pairs.get(policy) if pairs is not None else None
        if pair is None:
            if window is None and signal is None:
                return HEALTHY
            pair = self._pairs.setdefault(model, {}).setdefault(policy, PairState())
        p95: float | None = None
        requests = tokens = 0
        if window is not None:
            p95 = window.counts(config.window_s, now).latency_quantile(0.95)
            quota = window.counts(QUOTA_WINDOW_S, now)
            requests, tokens = quota.requests, quota.tokens
        pair.config = config
        if now - pair.since >= config.min_dwell_s:
            self._judge(policy, model, pair, config, window, signal, now)
        cooldown_left: float | None = None
        state = pair.state
        if state in _PROBED:
            pair.expire_probes(now, config.cooldown_s)
        elif state is HealthState.UNHEALTHY and not pair.signal_ejected:
            cooldown_left = max(0.0, pair.cooldown_until - now)
        admitted = pair.probe_admitted(config.max_probes_in_flight)
        key = (state, pair.since, p95, admitted, requests, tokens, cooldown_left)
        if pair.view is not None and pair.view_key == key:
            return pair.view
        view = ModelHealth(
            state, pair.since, pair.detail, p95, admitted, requests, tokens, cooldown_left, pair.trouble_since
        )
        pair.view, pair.view_key = view, key
        return view

    def peek_state(self, policy: str, model: str) -> HealthState:
        """The pair's state as last judged (no judging, no transition): cheap, possibly a tick behind."""
        pairs = self._pairs.get(model)
        pair = pairs.get(policy) if pairs is not None else None
        return pair.state if pair is not None else HealthState.HEALTHY

    def states(self, now: float) -> dict[str, ModelStatus]:
        """Every known model: figures, signal, and its state under each policy (judging every pair)."""
        now = self._clamp(now)
        snapshot: dict[str, ModelStatus] = {}
        for model in sorted(self._windows.keys() | self._signals.keys() | self._pairs.keys()):
            by_policy: dict[str, ModelHealth] = {}
            for policy, config in self._configs.items():
                by_policy[policy] = self.model_health(policy, config, model, now)
            for policy, pair in self._pairs.get(model, {}).items():
                if policy not in by_policy and pair.config is not None:
                    by_policy[policy] = self.model_health(policy, pair.config, model, now)
            window = self._windows.get(model)
            figures = window.figures(D.HEALTH_WINDOW_S, now) if window is not None else None
            snapshot[model] = ModelStatus(model, figures, self._signals.get(model), by_policy)
        return snapshot

    def drain_transitions(self) -> list[HealthTransition]:
        """The transitions taken since the last drain, oldest first (the oldest are dropped past the cap)."""
        drained = list(self._transitions)
        self._transitions.clear()
        return drained

    def _clamp(self, now: float) -> float:
        if now < self._now:
            return self._now
        self._now = now
        return now

    def _end_probe(self, model: str, policy: str | None, kind: OutcomeKind, error: str) -> None:
        pairs = self._pairs.get(model)
        if not pairs:
            return
        targets = pairs.values() if policy is None else [p for p in (pairs.get(policy),) if p is not None]
        succeeded = None if kind is OutcomeKind.CLIENT_ERROR else kind is OutcomeKind.OK
        for pair in targets:
            if pair.state in _PROBED:
                pair.probe_result(succeeded, error)

    def _judge(
        self,
        policy: str,
        model: str,
        pair: PairState,
        config: HealthConfig,
        window: ModelWindow | None,
        signal: ExternalSignal | None,
        now: float,
    ) -> None:
        """Take the transition that is due (the caller checked the dwell)."""
        if pair.state is HealthState.HEALTHY:
            pair.decay(now, config.cooldown_max_s)
        elif pair.state in _PROBED:
            pair.expire_probes(now, config.cooldown_s)
        figures = self._figures(pair, config, window, now)
        due = due_transition(pair, config, figures, signal, now)
        if due is not None:
            to_state, detail, by_signal = due
            from_state = pair.state
            pair.move(to_state, now, detail, config, by_signal=by_signal)
            if from_state is HealthState.PROBING and to_state is not HealthState.UNHEALTHY and window is not None:
                pair.close_baseline(now, window.total_judged, window.total_failures, window.total_timeouts)
            self._transitions.append(HealthTransition(policy, model, from_state, to_state, now, detail))
        if pair.state is HealthState.DEGRADED:  # the evidence its exit needs, and whether to probe for it
            pair.proof |= degraded_proof(config, figures)
            pair.unproven = not proven(config, figures, pair.proof)

    @staticmethod
    def _figures(pair: PairState, config: HealthConfig, window: ModelWindow | None, now: float) -> Figures:
        window_s = config.window_s
        if window is None:
            return Figures(window_s, 0, 0, 0, 0, None, 0)
        counts = window.counts(window_s, now)
        baseline = pair.baseline
        if baseline is not None and now - baseline.at < window_s:
            judged = window.total_judged - baseline.judged
            failures = window.total_failures - baseline.failures
            timeouts = window.total_timeouts - baseline.timeouts
        else:
            pair.baseline = None
            judged, failures, timeouts = counts.judged, counts.failures, counts.timeouts
        streak = window.consecutive_failures if now - window.last_failure_at < window_s else 0
        p95 = counts.latency_quantile(0.95)
        return Figures(window_s, judged, failures, timeouts, streak, p95, counts.latency_samples)
