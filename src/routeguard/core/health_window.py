"""Sliding windows of one model's call outcomes, in 1-second buckets.

Pure: no clock, no I/O; ``now`` (seconds) is always an argument and must not go backwards
(the tracker clamps it). Not thread-safe.

How it stays fast:

* Outcomes land in a ring of 1-second buckets (``sec % ring_size``), kept for the largest
  window any policy asks for (at least 60 s for the rpm/tpm quotas).
* For every window length in use there is one running aggregate (:class:`WindowCounts`).
  A new outcome is added to its bucket and to each aggregate; when a second leaves a window,
  that bucket is subtracted. ``record`` and a figures read are O(number of window lengths).
* An outcome at time ``t`` counts in a window of ``window_s`` while
  ``floor(now) - floor(t) < ceil(window_s)``: the window is whole seconds, the current one included.
* Latency quantiles come from a log-scale histogram: 8 bins per octave from 1 ms to ~17 min,
  each bin holding a count and the sum of its latencies. A quantile is the mean latency of the
  bin that holds the nearest-rank sample: exact when the samples of that bin are equal, and always
  within one bin width (±9 %) of the true sample. It is found by scanning down from the slowest
  non-empty bin (a few steps for p95) and cached until the aggregate changes.
* Latency samples are successful calls only; failures are judged by error and timeout rate, so
  fast errors do not hide slowness and timeouts do not hold a recovered model's p95 up.

Error classes (CONTRACT §4) split in two. Provider-side failures — ``timeout``, ``connection``,
``rate_limit``, ``overloaded``, ``server_error`` (the retryable classes) and a failure without a
class — count against a model. Client errors — ``bad_request``, ``context_window``,
``content_filter``, ``auth``, ``not_found`` — say nothing about the model's health: they count as
requests (quotas) but are left out of the error rate, its denominator and ``min_samples``, and
neither extend nor break a run of consecutive failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from routeguard.core import defaults as D

__all__ = [
    "CLIENT_ERROR_CLASSES",
    "PROVIDER_FAILURE_CLASSES",
    "QUOTA_WINDOW_S",
    "ModelWindow",
    "OutcomeKind",
    "WindowCounts",
    "WindowFigures",
    "classify_outcome",
    "window_span_secs",
]

PROVIDER_FAILURE_CLASSES: frozenset[str] = D.RETRYABLE_CLASSES
CLIENT_ERROR_CLASSES: frozenset[str] = frozenset(D.ERROR_CLASSES) - PROVIDER_FAILURE_CLASSES
QUOTA_WINDOW_S = 60.0  # requests_last_min / tokens_last_min

_MIN_LATENCY_S = 0.001
_BINS_PER_OCTAVE = 8
_BIN_COUNT = 8 * 20  # 1 ms .. ~1048 s; slower samples share the last bin


class OutcomeKind(Enum):
    OK = "ok"
    PROVIDER_FAILURE = "provider_failure"
    CLIENT_ERROR = "client_error"


def classify_outcome(ok: bool, error_class: str | None) -> OutcomeKind:
    """What an outcome says about the model; an unknown error class is refused (ValueError)."""
    if ok:
        return OutcomeKind.OK
    if error_class is None or error_class in PROVIDER_FAILURE_CLASSES:
        return OutcomeKind.PROVIDER_FAILURE
    if error_class in CLIENT_ERROR_CLASSES:
        return OutcomeKind.CLIENT_ERROR
    raise ValueError(f"unknown error class {error_class!r}; expected one of {', '.join(D.ERROR_CLASSES)}")


def window_span_secs(window_s: float) -> int:
    """How many 1-second buckets a window of ``window_s`` covers (the current second included)."""
    return max(1, math.ceil(window_s))


def _latency_bin(latency_s: float) -> int:
    if latency_s <= _MIN_LATENCY_S:
        return 0
    index = int(math.log2(latency_s / _MIN_LATENCY_S) * _BINS_PER_OCTAVE)
    return index if index < _BIN_COUNT else _BIN_COUNT - 1


class _Bucket:
    """The outcomes of one second."""

    __slots__ = ("failures", "judged", "lat_counts", "lat_sums", "q_n", "q_sum", "requests", "sec", "timeouts",
                 "tokens")

    def __init__(self, sec: int) -> None:
        self.sec = sec
        self.q_n = 0  # scored outcomes (quality 0..1)
        self.q_sum = 0.0
        self.requests = 0
        self.judged = 0
        self.failures = 0
        self.timeouts = 0
        self.tokens = 0
        self.lat_counts: dict[int, int] = {}
        self.lat_sums: dict[int, float] = {}


class WindowCounts:
    """Running totals over the last ``span_secs`` seconds. Read-only for callers."""

    __slots__ = (
        "_lat_counts",
        "_lat_sums",
        "_quantiles",
        "_top",
        "failures",
        "judged",
        "latency_samples",
        "quality_n",
        "quality_sum",
        "requests",
        "span_secs",
        "start_sec",
        "timeouts",
        "tokens",
    )

    def __init__(self, span_secs: int, start_sec: int) -> None:
        self.span_secs = span_secs
        self.start_sec = start_sec  # oldest second counted
        self._clear()

    def _clear(self) -> None:
        self.requests = 0  # every outcome, client errors included
        self.judged = 0  # ok + provider failures: the error-rate denominator
        self.failures = 0  # provider-side failures
        self.timeouts = 0
        self.tokens = 0
        self.latency_samples = 0
        self.quality_n = 0  # scored outcomes in the window
        self.quality_sum = 0.0
        self._lat_counts = [0] * _BIN_COUNT
        self._lat_sums = [0.0] * _BIN_COUNT
        self._top = -1  # no latency bin above this one holds a sample
        self._quantiles: dict[float, float | None] = {}

    @property
    def quality_mean(self) -> float | None:
        return self.quality_sum / self.quality_n if self.quality_n else None

    @property
    def error_rate(self) -> float:
        return self.failures / self.judged if self.judged else 0.0

    @property
    def timeout_rate(self) -> float:
        return self.timeouts / self.judged if self.judged else 0.0

    def latency_quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile of successful-call latency, None without samples."""
        if q in self._quantiles:
            return self._quantiles[q]
        value: float | None = None
        if self.latency_samples:
            counts = self._lat_counts
            while counts[self._top] == 0:
                self._top -= 1
            # Scan down from the slowest bin: high quantiles are found in a few steps.
            at_or_above = self.latency_samples - max(1, math.ceil(q * self.latency_samples)) + 1
            index, seen = self._top, counts[self._top]
            while seen < at_or_above:
                index -= 1
                seen += counts[index]
            value = self._lat_sums[index] / counts[index]
        self._quantiles[q] = value
        return value

    def _count(
        self,
        kind: OutcomeKind,
        timeout: bool,
        lat_index: int,
        latency_s: float | None,
        tokens: int,
        quality: float | None = None,
    ) -> None:
        self.requests += 1
        self.tokens += tokens
        if quality is not None:
            self.quality_n += 1
            self.quality_sum += quality
        if kind is OutcomeKind.CLIENT_ERROR:
            return
        self.judged += 1
        if kind is OutcomeKind.PROVIDER_FAILURE:
            self.failures += 1
            if timeout:
                self.timeouts += 1
        elif lat_index >= 0 and latency_s is not None:
            self._lat_counts[lat_index] += 1
            self._lat_sums[lat_index] += latency_s
            self.latency_samples += 1
            if lat_index > self._top:
                self._top = lat_index
            self._quantiles = {}

    def _apply(self, bucket: _Bucket, sign: int) -> None:
        self.requests += sign * bucket.requests
        self.judged += sign * bucket.judged
        self.failures += sign * bucket.failures
        self.timeouts += sign * bucket.timeouts
        self.tokens += sign * bucket.tokens
        if bucket.q_n:
            self.quality_n += sign * bucket.q_n
            self.quality_sum = self.quality_sum + sign * bucket.q_sum if self.quality_n else 0.0
        if bucket.lat_counts:
            counts, sums = self._lat_counts, self._lat_sums
            for index, count in bucket.lat_counts.items():
                counts[index] += sign * count
                self.latency_samples += sign * count
                # A bin that empties is reset to 0.0 so float error cannot build up.
                sums[index] = sums[index] + sign * bucket.lat_sums[index] if counts[index] else 0.0
                if index > self._top:
                    self._top = index
            self._quantiles = {}

    def _advance(self, latest_sec: int, ring: list[_Bucket | None]) -> None:
        new_start = latest_sec - self.span_secs + 1
        if new_start <= self.start_sec:
            return
        if new_start - self.start_sec >= self.span_secs:
            self._clear()
        else:
            size = len(ring)
            for sec in range(self.start_sec, new_start):
                bucket = ring[sec % size]
                if bucket is not None and bucket.sec == sec:
                    self._apply(bucket, -1)
        self.start_sec = new_start


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """A model's figures over one window, for the health snapshot (GET /v1/health)."""

    window_s: float
    requests: int
    judged: int
    failures: int
    timeouts: int
    error_rate: float
    timeout_rate: float
    p50_latency_s: float | None
    p95_latency_s: float | None
    consecutive_failures: int
    requests_last_min: int
    tokens_last_min: int
    quality_samples: int = 0
    quality_mean: float | None = None


class ModelWindow:
    """All outcomes of one model, shared by every policy that judges it."""

    __slots__ = (
        "_latest_sec",
        "_ring",
        "_windows",
        "_windows_by_s",
        "consecutive_failures",
        "last_failure_at",
        "total_failures",
        "total_judged",
        "total_timeouts",
    )

    def __init__(self, now: float, retain_s: float = QUOTA_WINDOW_S) -> None:
        self._latest_sec = math.floor(now)
        self._ring: list[_Bucket | None] = [None] * (window_span_secs(max(retain_s, QUOTA_WINDOW_S)) + 1)
        self._windows: dict[int, WindowCounts] = {}  # by span in seconds
        self._windows_by_s: dict[float, WindowCounts] = {}  # the same, by the window_s asked for
        self.consecutive_failures = 0  # provider failures in a row, broken by a success
        self.last_failure_at = -math.inf
        # Never-aging totals: a policy that closed a breaker judges only what came after.
        self.total_judged = 0
        self.total_failures = 0
        self.total_timeouts = 0

    def retain(self, window_s: float) -> None:
        """Keep enough buckets for a window of ``window_s`` (grows, never shrinks)."""
        size = window_span_secs(window_s) + 1
        old = self._ring
        if size <= len(old):
            return
        ring: list[_Bucket | None] = [None] * size
        oldest_kept = self._latest_sec - len(old) + 1
        for bucket in old:
            if bucket is not None and bucket.sec >= oldest_kept:
                ring[bucket.sec % size] = bucket
        self._ring = ring

    def add(
        self,
        now: float,
        kind: OutcomeKind,
        *,
        timeout: bool,
        latency_s: float | None,
        tokens: int,
        quality: float | None = None,
    ) -> None:
        """Count one outcome at ``now`` (``quality``: its 0..1 score, when it was scored)."""
        sec = self._advance(now)
        ring = self._ring
        bucket = ring[sec % len(ring)]
        if bucket is None or bucket.sec != sec:
            bucket = ring[sec % len(ring)] = _Bucket(sec)
        bucket.requests += 1
        bucket.tokens += tokens
        if quality is not None:
            bucket.q_n += 1
            bucket.q_sum += quality
        lat_index = -1
        if kind is OutcomeKind.OK:
            bucket.judged += 1
            self.total_judged += 1
            self.consecutive_failures = 0
            if latency_s is not None:
                lat_index = _latency_bin(latency_s)
                bucket.lat_counts[lat_index] = bucket.lat_counts.get(lat_index, 0) + 1
                bucket.lat_sums[lat_index] = bucket.lat_sums.get(lat_index, 0.0) + latency_s
        elif kind is OutcomeKind.PROVIDER_FAILURE:
            bucket.judged += 1
            bucket.failures += 1
            self.total_judged += 1
            self.total_failures += 1
            self.consecutive_failures += 1
            self.last_failure_at = now
            if timeout:
                bucket.timeouts += 1
                self.total_timeouts += 1
        for counts in self._windows.values():
            counts._count(kind, timeout, lat_index, latency_s, tokens, quality)

    def counts(self, window_s: float, now: float) -> WindowCounts:
        """The running totals over the last ``window_s`` at ``now`` (a live object: read, don't keep)."""
        if now >= self._latest_sec + 1:
            self._advance(now)
        counts = self._windows_by_s.get(window_s)
        if counts is not None:
            return counts
        span = window_span_secs(window_s)
        counts = self._windows.get(span)
        if counts is None:
            self.retain(window_s)
            counts = WindowCounts(span, self._latest_sec - span + 1)
            size = len(self._ring)
            for sec in range(counts.start_sec, self._latest_sec + 1):
                bucket = self._ring[sec % size]
                if bucket is not None and bucket.sec == sec:
                    counts._apply(bucket, 1)
            self._windows[span] = counts
        self._windows_by_s[window_s] = counts
        return counts

    def streak(self, window_s: float, now: float) -> int:
        """Consecutive provider failures, if the latest of them is inside the window."""
        return self.consecutive_failures if now - self.last_failure_at < window_s else 0

    def figures(self, window_s: float, now: float) -> WindowFigures:
        counts = self.counts(window_s, now)
        quota = self.counts(QUOTA_WINDOW_S, now)
        return WindowFigures(
            window_s=window_s,
            requests=counts.requests,
            judged=counts.judged,
            failures=counts.failures,
            timeouts=counts.timeouts,
            error_rate=counts.error_rate,
            timeout_rate=counts.timeout_rate,
            p50_latency_s=counts.latency_quantile(0.5),
            p95_latency_s=counts.latency_quantile(0.95),
            consecutive_failures=self.streak(window_s, now),
            requests_last_min=quota.requests,
            tokens_last_min=quota.tokens,
            quality_samples=counts.quality_n,
            quality_mean=counts.quality_mean,
        )

    def _advance(self, now: float) -> int:
        sec = math.floor(now)
        if sec > self._latest_sec:
            self._latest_sec = sec
            ring = self._ring
            for counts in self._windows.values():
                counts._advance(sec, ring)
        return self._latest_sec
