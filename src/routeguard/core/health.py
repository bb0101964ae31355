"""The live health tracker: outcomes and external signals in, per (policy, model) health out.

Figures (sliding windows, :mod:`routeguard.core.health_window`) are per model and shared by every
policy; each policy judges them with its own :class:`HealthConfig`, and states, cooldowns and
probes are per (policy, model): each pair is an immutable :class:`~routeguard.core.breaker.Breaker`
moved only by :func:`~routeguard.core.breaker.step`. A probe is a request admitted to a PROBING pair
(within its budget), or to a DEGRADED pair whose window lacks the evidence to judge it. External
signals are kept per source; the worst unexpired one wins.

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
from dataclasses import dataclass, replace

from routeguard.core import defaults as D
from routeguard.core.breaker import (
    Breaker,
    CheckEnded,
    Look,
    Override,
    ProbeEnded,
    ProbeTaken,
    Signal,
    probe_admitted,
    step,
)
from routeguard.core.health_durable import dump_health, load_breakers, load_signals
from routeguard.core.health_machine import (
    TRANSITIONS,
    ExternalSignal,
    Figures,
    HealthTransition,
    IllegalHealthTransition,
    SignalStatus,
)
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
    "effective_signal",
]

_DEFAULT_CONFIG = HealthConfig()
_P, _D, _U = HealthState.PROBING, HealthState.DEGRADED, HealthState.UNHEALTHY


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One model in the health snapshot: its figures, its signals and its state under each policy."""

    model: str
    figures: WindowFigures | None  # over the default 60 s window; None without outcomes
    signal: ExternalSignal | None  # the effective (worst unexpired) signal
    policies: Mapping[str, ModelHealth]
    signals: Mapping[str, ExternalSignal] | None = None  # by source
    breakers: Mapping[str, Breaker] | None = None  # by policy


def effective_signal(signals: Mapping[str, ExternalSignal] | None, now: float, stale_after_s: float
                     ) -> ExternalSignal | None:
    """The worst unexpired signal of any source; when all expired, the one that expired last (stale)."""
    if not signals:
        return None
    if len(signals) == 1:
        return next(iter(signals.values()))
    live = [s for s in signals.values() if now < s.expires_at(stale_after_s)]
    if live:
        return max(live, key=lambda s: (s.severity, s.at))
    return max(signals.values(), key=lambda s: s.expires_at(stale_after_s))


class HealthTracker:
    """Health of every model under every policy. Implements :class:`HealthView`.

    Not thread-safe: the runtime holds one lock around every call.
    """

    __slots__ = ("_configs", "_now", "_pair_configs", "_pairs", "_retain_s", "_signals", "_transitions", "_views",
                 "_windows")

    def __init__(
        self, policies: Mapping[str, HealthConfig] | None = None, *, max_buffered_transitions: int = 10_000
    ) -> None:
        self._configs: dict[str, HealthConfig] = {}
        self._retain_s = QUOTA_WINDOW_S
        self._windows: dict[str, ModelWindow] = {}
        self._signals: dict[str, dict[str, ExternalSignal]] = {}  # model -> source -> signal
        self._pairs: dict[str, dict[str, Breaker]] = {}  # model -> policy -> breaker
        self._pair_configs: dict[tuple[str, str], HealthConfig] = {}  # the thresholds a pair was last judged with
        self._views: dict[tuple[str, str], tuple[tuple[object, ...], ModelHealth]] = {}
        self._transitions: deque[HealthTransition] = deque(maxlen=max_buffered_transitions)
        self._now = -math.inf
        self.configure(policies or {})

    def configure(self, policies: Mapping[str, HealthConfig]) -> None:
        """Replace the policies' thresholds (on republish); figures, states and cooldowns are kept."""
        self._configs = dict(policies)
        self._retain_s = max([QUOTA_WINDOW_S, *(c.window_s for c in self._configs.values())])
        for window in self._windows.values():
            window.retain(self._retain_s)

    # ----------------------------------------------------------------- inputs
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
        quality: float | None = None,
    ) -> None:
        """Count one call outcome. ``error_class`` is a CONTRACT §4 class (ValueError otherwise).

        Every outcome of a model is evidence for each pair probing it, traced or not (``probe`` and
        ``policy`` are accepted for compatibility and not needed): a success counts toward closing, a
        provider failure re-ejects, a client error gives its permit back. ``quality`` (0..1) feeds the
        quality figure. NaN or out-of-range figures are refused before anything is counted.
        """
        del probe, policy
        kind = classify_outcome(ok, error_class)
        if latency_s is not None and not math.isfinite(latency_s):
            raise ValueError("latency must be a finite number")
        if quality is not None and not (math.isfinite(quality) and 0.0 <= quality <= 1.0):
            raise ValueError("quality must be between 0 and 1")
        now = self._clamp(now)
        window = self._windows.get(model)
        if window is None:
            window = self._windows[model] = ModelWindow(now, self._retain_s)
        if latency_s is not None and latency_s < 0:
            latency_s = 0.0
        timeout = kind is OutcomeKind.PROVIDER_FAILURE and error_class == "timeout"
        window.add(now, kind, timeout=timeout, latency_s=latency_s, tokens=max(0, tokens), quality=quality)
        pairs = self._pairs.get(model)
        if pairs:
            succeeded = None if kind is OutcomeKind.CLIENT_ERROR else kind is OutcomeKind.OK
            ended = ProbeEnded(succeeded, error_class or "failure")
            for name, breaker in list(pairs.items()):
                if breaker.state is _P or breaker.in_flight:
                    self._step(name, model, ended, now)
                    if breaker.state is _P:
                        self._look(name, model, now)

    def signal(
        self,
        model: str,
        status: SignalStatus | str,
        now: float,
        ttl_s: float | None = None,
        source: str = "external",
        *,
        override: bool = False,
    ) -> None:
        """An external health signal (up / degraded / down) from ``source``; it replaces that source's last one.

        It expires after ``ttl_s``, else after the judging policy's ``stale_after_s``; an expired signal
        makes the model stale until a new one comes. ``override`` with ``up`` ends every cooldown of the
        model now (the pairs go to probing), unless another source still says ``down``.
        """
        if ttl_s is not None and not (0 <= ttl_s <= D.HEALTH_SIGNAL_MAX_TTL_S):
            raise ValueError(f"ttl_s must be between 0 and {D.HEALTH_SIGNAL_MAX_TTL_S:g}")
        status = SignalStatus(status)
        now = self._clamp(now)
        self._signals.setdefault(model, {})[source] = ExternalSignal(status, now, ttl_s, source)
        if override and status is SignalStatus.UP:
            for name, breaker in list(self._pairs.get(model, {}).items()):
                if breaker.state is _U:
                    self._step(name, model, Override(source), now)

    def withdraw(self, model: str, source: str) -> bool:
        """Remove one source's signal; False when it had none."""
        signals = self._signals.get(model)
        if not signals or source not in signals:
            return False
        del signals[source]
        if not signals:
            del self._signals[model]
        for key in [k for k in self._views if k[0] == model]:
            del self._views[key]
        return True

    def check_result(self, model: str, ok: bool, now: float, error: str = "failure", interval_s: float = 15.0
                     ) -> None:
        """An active health check of ``model`` ended: a success ends a cooldown and counts as a probe."""
        now = self._clamp(now)
        check = CheckEnded(ok, error, interval_s)
        for name in list(self._pairs.get(model, {})):
            self._step(name, model, check, now)
            self._look(name, model, now)

    def begin_probe(self, policy: str, model: str, now: float) -> bool:
        """Take a permit of a pair that admits probes; False when none is free.

        An outcome of the model gives it back; a permit whose outcome never comes re-ejects a probing
        pair after the policy's timeout (and frees a degraded pair's slot then).
        """
        now = self._clamp(now)
        breaker = self._pairs.get(model, {}).get(policy)
        if breaker is None:
            return False
        config = self._pair_configs.get((model, policy)) or self._configs.get(policy, _DEFAULT_CONFIG)
        if breaker.state is _D and breaker.in_flight:
            fresh = tuple(t for t in breaker.in_flight if now - t < config.probe_timeout_s)
            if fresh != breaker.in_flight:
                self._pairs[model][policy] = breaker = replace(breaker, in_flight=fresh)
        if not probe_admitted(breaker, config, now):
            return False
        self._step(policy, model, ProbeTaken(), now)
        return True

    # ----------------------------------------------------------------- reading
    def model_health(self, policy: str, config: HealthConfig, model: str, now: float) -> ModelHealth:
        """The state of ``model`` judged with ``policy``'s ``config`` at ``now`` (may take a transition)."""
        if now < self._now:
            now = self._now
        else:
            self._now = now
        window = self._windows.get(model)
        pairs = self._pairs.get(model)
        breaker = pairs.get(policy) if pairs is not None else None
        if breaker is None:
            if window is None and model not in self._signals:
                return HEALTHY
            breaker = self._pairs.setdefault(model, {}).setdefault(policy, Breaker())
        pair = (model, policy)
        if self._pair_configs.get(pair) is not config:
            self._pair_configs[pair] = config
        breaker, p95 = self._look(policy, model, now, config, window)
        requests = tokens = 0
        if window is not None:
            quota = window.counts(QUOTA_WINDOW_S, now)
            requests, tokens = quota.requests, quota.tokens
        state = breaker.state
        cooldown_left: float | None = None
        admitted = False
        left: int | None = None
        if state is _U:
            if not breaker.signal_ejected:
                cooldown_left = max(0.0, breaker.cooldown_until - now)
        elif state is _P:
            admitted = probe_admitted(breaker, config, now)
            left = max(0, config.probes - breaker.permits)
        elif state is _D:
            admitted = probe_admitted(breaker, config, now)
        key = (breaker, p95, admitted, requests, tokens, cooldown_left)
        cached = self._views.get(pair)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = ModelHealth(state, breaker.since, breaker.detail, p95, admitted, requests, tokens, cooldown_left,
                           breaker.trouble_since, breaker.quality, left)
        self._views[pair] = (key, view)
        return view

    def peek_state(self, policy: str, model: str) -> HealthState:
        """The pair's state as last judged (no judging, no transition): cheap, possibly a tick behind."""
        pairs = self._pairs.get(model)
        breaker = pairs.get(policy) if pairs is not None else None
        return breaker.state if breaker is not None else HealthState.HEALTHY

    def breaker(self, policy: str, model: str) -> Breaker | None:
        pairs = self._pairs.get(model)
        return pairs.get(policy) if pairs is not None else None

    def total_judged(self, model: str) -> int:
        """Judged outcomes of ``model`` since it was first seen (never ages: canary evidence counts from it)."""
        window = self._windows.get(model)
        return window.total_judged if window is not None else 0

    def states(self, now: float) -> dict[str, ModelStatus]:
        """Every known model: figures, signals, and its state under each policy (judging every pair)."""
        now = self._clamp(now)
        snapshot: dict[str, ModelStatus] = {}
        for model in sorted(self._windows.keys() | self._signals.keys() | self._pairs.keys()):
            by_policy: dict[str, ModelHealth] = {}
            for policy, config in self._configs.items():
                by_policy[policy] = self.model_health(policy, config, model, now)
            for policy in list(self._pairs.get(model, {})):
                config_used = self._pair_configs.get((model, policy))
                if policy not in by_policy and config_used is not None:
                    by_policy[policy] = self.model_health(policy, config_used, model, now)
            window = self._windows.get(model)
            figures = window.figures(D.HEALTH_WINDOW_S, now) if window is not None else None
            signals = self._signals.get(model)
            snapshot[model] = ModelStatus(
                model, figures, effective_signal(signals, now, D.HEALTH_STALE_AFTER_S), by_policy,
                dict(signals or {}), dict(self._pairs.get(model, {})),
            )
        return snapshot

    def drain_transitions(self) -> list[HealthTransition]:
        """The transitions taken since the last drain, oldest first (the oldest are dropped past the cap)."""
        drained = list(self._transitions)
        self._transitions.clear()
        return drained

    # ----------------------------------------------------------------- durable state (survives restarts)
    def export_state(self) -> dict[str, object]:
        """Signals and ejections as plain data, for the store (:mod:`routeguard.core.health_durable`)."""
        return dump_health(self._signals, self._pairs)

    def import_state(self, data: Mapping[str, object], now: float) -> None:
        """Restore :meth:`export_state` after a restart."""
        now = self._clamp(now)
        for model, signal in load_signals(data):
            self._signals.setdefault(model, {})[signal.source] = signal
        for model, policy, breaker in load_breakers(data, now):
            self._pairs.setdefault(model, {})[policy] = breaker

    # ----------------------------------------------------------------- internals
    def _clamp(self, now: float) -> float:
        if now < self._now:
            return self._now
        self._now = now
        return now

    def _config(self, policy: str, model: str) -> HealthConfig:
        return self._pair_configs.get((model, policy)) or self._configs.get(policy, _DEFAULT_CONFIG)

    def _step(self, policy: str, model: str, signal: Signal, now: float) -> Breaker:
        pairs = self._pairs.setdefault(model, {})
        breaker = pairs.get(policy) or Breaker()
        new, moved = step(breaker, signal, now, self._config(policy, model))
        if new is not breaker:
            pairs[policy] = new
        if moved is not None:
            self._transitions.append(HealthTransition(policy, model, moved[0], moved[1], now, moved[2]))
        return new

    def _look(
        self,
        policy: str,
        model: str,
        now: float,
        config: HealthConfig | None = None,
        window: ModelWindow | None = None,
    ) -> tuple[Breaker, float | None]:
        """Judge one pair now: its breaker after the look, and the p95 latency it was judged on."""
        config = config or self._config(policy, model)
        breaker = self._pairs[model][policy]
        if window is None:
            window = self._windows.get(model)
        signals = self._signals.get(model)
        signal = effective_signal(signals, now, config.stale_after_s) if signals else None
        figures = self._figures(breaker, config, window, now)
        totals = (window.total_judged, window.total_failures, window.total_timeouts) if window else (0, 0, 0)
        new, moved = step(breaker, Look(figures, signal, totals), now, config)
        if moved is not None:
            self._transitions.append(HealthTransition(policy, model, moved[0], moved[1], now, moved[2]))
        if new is not breaker:
            self._pairs[model][policy] = new
        return new, figures.p95_latency_s

    @staticmethod
    def _figures(breaker: Breaker, config: HealthConfig, window: ModelWindow | None, now: float) -> Figures:
        window_s = config.window_s
        if window is None:
            return Figures(window_s, 0, 0, 0, 0, None, 0)
        counts = window.counts(window_s, now)
        baseline = breaker.baseline
        if baseline is not None and now - baseline.at < window_s:
            judged = window.total_judged - baseline.judged
            failures = window.total_failures - baseline.failures
            timeouts = window.total_timeouts - baseline.timeouts
        else:
            judged, failures, timeouts = counts.judged, counts.failures, counts.timeouts
        streak = window.consecutive_failures if now - window.last_failure_at < window_s else 0
        p95 = counts.latency_quantile(0.95)
        return Figures(window_s, judged, failures, timeouts, streak, p95, counts.latency_samples,
                       counts.quality_n, counts.quality_mean)

