"""Decision benchmark: how fast the pure core decides, compiles a bundle, and imports.

    .venv/bin/python bench/decision.py            # 100,000 decisions, Rich table with the targets
    .venv/bin/python bench/decision.py --json     # the same figures as JSON
    .venv/bin/python bench/decision.py --check    # exit 1 when a target is missed

The bundle has 100 models and 50 policies (1 primary + 3 fallbacks each), 10 profiles. Every decision
is timed on its own with ``time.perf_counter_ns`` (the timer's own cost, ~50-100 ns, is included), after
a warm-up, over varied contexts and random health pictures (GC stays on; long-lived data is frozen).
To add a health view (e.g. the live tracker), extend :func:`health_views`: each view gets its own row.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from routeguard.config.load import load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.context import RouteContext, SafeMode
from routeguard.core.engine import decide
from routeguard.core.health import HealthTracker
from routeguard.core.health_view import HealthState, HealthView, ModelHealth, StaticHealth
from routeguard.core.outcome import Outcome
from routeguard.core.parse import parse_bundle
from routeguard.core.table import RoutingTable, compile_bundle, content_hash
from routeguard.runtime import Router

N_MODELS = 100
N_POLICIES = 50
N_PROFILES = 10
NOW = 1_790_000_000.0  # 2026-09-21, before every approval's expiry
DATA_CLASSES = ["public", "internal", "confidential", "restricted"]
REGIONS = ["eu-west-1", "eu-west-2", "us-east-1"]
TENANTS = [f"tenant-{i}" for i in range(200)]

TARGETS = {  # metric -> (limit, unit)
    "decision p50": (10.0, "µs"),
    "decision p99": (50.0, "µs"),
    "load+check+compile": (20.0, "ms"),
    "import time": (100.0, "ms"),
    "import RSS": (40.0, "MiB"),
    "live decision p50": (10.0, "µs"),
    "live decision p99": (40.0, "µs"),
    "report": (5.0, "µs"),
    "router report": (10.0, "µs"),
}
ERROR_CLASSES = ("overloaded", "timeout", "server_error", "rate_limit", "connection")


# --------------------------------------------------------------------------------------------- the bundle


def build_bundle(seed: int = 1) -> dict[str, Any]:
    """100 models, 50 policies of 1 primary + 3 narrower-or-equal fallbacks, all approved: a clean bundle."""
    rng = random.Random(seed)
    models: dict[str, Any] = {}
    for i in range(N_MODELS):
        tier = i % 4  # 0: broadest ... 3: text only
        caps = ["text", "structured_output", "tool_use", "vision"][: 4 - tier]
        models[f"model-{i:03d}"] = {
            "provider": f"provider-{i % 7}",
            "endpoint": {"type": "openai", "base_url": f"http://127.0.0.1:{9000 + i}/v1", "model": f"m{i}"},
            "capabilities": caps,
            "modalities": ["text", "image"] if "vision" in caps else ["text"],
            "context_window": rng.choice([32_768, 128_000, 200_000]),
            "clearance": "restricted" if i % 3 else "confidential",
            "regions": ["eu-west-1", "eu-west-2"] if i % 2 else ["eu-west-2", "us-east-1"],
            "cost": {"input_per_1m": round(rng.uniform(0.1, 5), 2), "output_per_1m": round(rng.uniform(0.3, 15), 2)},
            "languages": ["en", "de", "fr"] if i % 5 else None,
            "limits": {"rpm": 10_000} if i % 10 == 0 else None,
            "trusted": i % 4 != 3,
        }
        models[f"model-{i:03d}"] = {k: v for k, v in models[f"model-{i:03d}"].items() if v is not None}
    profiles = {
        f"profile-{j}": {
            "requires": ["text"],
            "capabilities": ["text", "structured_output", "tool_use", "vision"],
            "data_class": DATA_CLASSES[j % 3],  # public .. confidential: every model is cleared
            "regions": REGIONS,
        }
        for j in range(N_PROFILES)
    }
    policies: dict[str, Any] = {}
    approvals = []
    for p in range(N_POLICIES):
        base = (p * 8) % N_MODELS - (p * 8) % 4  # a tier-0 model, then narrower ones
        chain = [f"model-{(base + k) % N_MODELS:03d}" for k in range(4)]
        profile = f"profile-{p % N_PROFILES}"
        policy: dict[str, Any] = {
            "profile": profile,
            "primary": chain[0],
            "fallbacks": [{"model": chain[1]}, {"model": chain[2], "on": ["unavailable", "degraded"]},
                          {"model": chain[3], "after": "30s"}],
            "terminal": {"action": ["suspend", "human_queue", "read_only"][p % 3]},
            "budget": {"max_usd_per_request": 0.5},
        }
        if p % 10 == 0:
            policy["primary"] = [{"model": chain[0], "weight": 90}, {"model": f"model-{(base + 4) % N_MODELS:03d}",
                                                                        "weight": 10}]
            chain.append(f"model-{(base + 4) % N_MODELS:03d}")
        policies[f"agent-{p:02d}"] = policy
        approvals += [{"model": m, "profile": profile, "by": "bench", "evidence": f"EV-{m}", "expires": "2099-12-31"}
                      for m in chain]
    return {"data_classes": DATA_CLASSES, "models": models, "profiles": profiles, "approvals": approvals,
            "policies": policies}


def build_contexts(n: int, seed: int = 2) -> list[RouteContext]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        data: dict[str, Any] = {"agent": f"agent-{rng.randrange(N_POLICIES):02d}"}
        if rng.random() < 0.7:
            data["tenant"] = rng.choice(TENANTS)
        if rng.random() < 0.5:
            data["data_class"] = rng.choice(DATA_CLASSES[:3])
        if rng.random() < 0.3:
            data["region"] = rng.choice(REGIONS)
        if rng.random() < 0.3:
            data["language"] = rng.choice(["en", "de"])
        if rng.random() < 0.2:
            data["capabilities"] = ["structured_output"]
        if rng.random() < 0.8:
            data["estimated_tokens"] = {"input": rng.randrange(100, 20_000), "output": rng.randrange(50, 2_000)}
        if rng.random() < 0.2:
            data["sla_ms"] = rng.choice([500, 2000, 10_000])
        out.append(RouteContext.from_dict(data, trace_id=f"trace-{i}"))
    return out


# ------------------------------------------------------------------------------------------- health views


def random_static_health(rng: random.Random, share_unhealthy: float = 0.15) -> StaticHealth:
    """One random health picture: most models healthy, some degraded, unhealthy, probing or stale."""
    states: dict[str, HealthState | ModelHealth] = {}
    for i in range(N_MODELS):
        roll = rng.random()
        name = f"model-{i:03d}"
        if roll < share_unhealthy:
            states[name] = ModelHealth(HealthState.UNHEALTHY, since=NOW - rng.choice([5, 60, 600]),
                                       detail="error_rate 0.62 > 0.50 over 60s")
        elif roll < share_unhealthy + 0.05:
            states[name] = ModelHealth(HealthState.DEGRADED, since=NOW - 120, p95_latency_s=1.5)
        elif roll < share_unhealthy + 0.07:
            states[name] = ModelHealth(HealthState.PROBING, since=NOW - 40, probe_admitted=rng.random() < 0.3)
        elif roll < share_unhealthy + 0.08:
            states[name] = HealthState.STALE
        elif roll < share_unhealthy + 0.2:
            states[name] = ModelHealth(HealthState.HEALTHY, p95_latency_s=rng.choice([0.2, 0.9, 3.0]),
                                       requests_last_min=rng.randrange(0, 12_000))
    return StaticHealth(states)


def live_tracker(table: RoutingTable, rng: random.Random, per_second: int = 4) -> HealthTracker:
    """A real tracker holding a minute of outcomes for every model (some failing, some slow)."""
    tracker = HealthTracker({name: cp.policy.health for name, cp in table.policies.items()})
    models = sorted(table.bundle.models)
    failing = {m: rng.choice([0.0, 0.0, 0.0, 0.1, 0.3, 0.9]) for m in models}
    start = NOW - 60
    for step in range(60 * per_second):
        at = start + step / per_second
        for m in models:
            ok = rng.random() >= failing[m]
            tracker.record(m, ok=ok, now=at, error_class=None if ok else rng.choice(ERROR_CLASSES),
                           latency_s=rng.lognormvariate(-1.5, 0.6), tokens=900)
    for name, cp in table.policies.items():  # judge every pair once, as a served router does
        for cand in cp.candidates:
            tracker.model_health(name, cp.policy.health, cand.name, NOW)
    return tracker


def live_tracker_view(table: RoutingTable, rng: random.Random) -> HealthView | None:
    return live_tracker(table, rng)


def bench_report(table: RoutingTable, n: int = 100_000, seed: int = 5) -> dict[str, float]:
    """Cost of feeding one outcome: the tracker's ``record`` and the whole ``Router.report``."""
    rng = random.Random(seed)
    tracker = live_tracker(table, rng)
    models = sorted(table.bundle.models)
    outcomes = [(rng.choice(models), rng.random() > 0.1, rng.choice(ERROR_CLASSES), rng.random()) for _ in range(n)]
    clock = time.perf_counter_ns
    samples = [0] * n
    for i, (m, ok, cls, lat) in enumerate(outcomes):
        at = NOW + i * 0.0006
        t0 = clock()
        tracker.record(m, ok=ok, now=at, error_class=None if ok else cls, latency_s=lat, tokens=900)
        samples[i] = clock() - t0
    samples.sort()
    virtual = [NOW]
    router = Router(table, clock=lambda: virtual[0])
    m_samples = [0] * (n // 4)
    for i, (m, ok, cls, lat) in enumerate(outcomes[: n // 4]):
        virtual[0] = NOW + i * 0.0024
        outcome = Outcome(model=m, ok=ok, error=None if ok else cls, latency_ms=lat * 1000)
        t0 = clock()
        router.report(outcome)
        m_samples[i] = clock() - t0
    m_samples.sort()
    return {
        "record_p50_us": samples[n // 2] / 1000,
        "record_mean_us": sum(samples) / n / 1000,
        "router_report_p50_us": m_samples[len(m_samples) // 2] / 1000,
        "router_report_mean_us": sum(m_samples) / len(m_samples) / 1000,
    }


def health_views(table: RoutingTable, seed: int = 3) -> dict[str, Sequence[HealthView]]:
    """Row label -> the health views decisions rotate through (one per decision, round robin)."""
    rng = random.Random(seed)
    views: dict[str, Sequence[HealthView]] = {
        "all healthy": [StaticHealth()],
        "random StaticHealth": [random_static_health(rng) for _ in range(32)],
    }
    live = live_tracker_view(table, rng)
    if live is not None:
        views["live tracker"] = [live]
    return views


# ------------------------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class DecisionStats:
    n: int
    p50_us: float
    p99_us: float
    p999_us: float
    mean_us: float
    max_us: float
    statuses: dict[str, int]


def bench_decide(table: RoutingTable, contexts: Sequence[RouteContext], healths: Sequence[HealthView],
                 *, safe_every: int = 20, warmup: int = 10_000) -> DecisionStats:
    """Time ``decide`` once per context (one health view per call, round robin; safe mode on every Nth)."""
    safe_on, safe_off = SafeMode(global_on=True), SafeMode()
    n_views = len(healths)
    clock = time.perf_counter_ns
    for i in range(min(warmup, len(contexts))):
        decide(contexts[i], table, healths[i % n_views], safe_off, NOW)
    samples = [0] * len(contexts)
    statuses: dict[str, int] = {}
    for i, ctx in enumerate(contexts):
        health = healths[i % n_views]
        safe = safe_on if i % safe_every == 0 else safe_off
        t0 = clock()
        d = decide(ctx, table, health, safe, NOW)
        samples[i] = clock() - t0
        key = d.status.value
        statuses[key] = statuses.get(key, 0) + 1
    samples.sort()
    n = len(samples)
    return DecisionStats(
        n=n,
        p50_us=samples[n // 2] / 1000,
        p99_us=samples[min(n - 1, int(n * 0.99))] / 1000,
        p999_us=samples[min(n - 1, int(n * 0.999))] / 1000,
        mean_us=sum(samples) / n / 1000,
        max_us=samples[-1] / 1000,
        statuses=statuses,
    )


def median_ms(fn: Callable[[], object], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def bench_compile(raw: dict[str, Any], runs: int = 7) -> dict[str, float]:
    """Median milliseconds to load (YAML text, and plain data) + check + compile the bundle."""
    text = yaml.safe_dump(raw, sort_keys=False)

    def from_yaml() -> RoutingTable:
        loaded = load_bundle(text)
        assert not check_bundle(loaded.bundle, NOW)
        return compile_bundle(loaded.bundle, content_hash=loaded.content_hash)

    def from_data() -> RoutingTable:
        bundle = parse_bundle(raw)
        assert not check_bundle(bundle, NOW)
        return compile_bundle(bundle, content_hash=content_hash(raw))

    def check_compile_only() -> RoutingTable:
        assert not check_bundle(bundle, NOW)
        return compile_bundle(bundle)

    bundle = parse_bundle(raw)
    return {"yaml": median_ms(from_yaml, runs), "data": median_ms(from_data, runs),
            "check+compile": median_ms(check_compile_only, runs)}


_IMPORT_PROBE = """
import resource, sys, time
t0 = time.perf_counter()
{stmt}
dt = time.perf_counter() - t0
heavy = sorted(m for m in ("fastapi", "sqlalchemy", "httpx", "pydantic", "yaml", "redis", "numpy") if m in sys.modules)
print(dt * 1000, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, ",".join(heavy))
"""


def bench_import(stmt: str, runs: int = 5) -> dict[str, Any]:
    """Median import time (ms) and peak RSS (MiB) of ``stmt`` in a fresh interpreter (Linux: maxrss in KiB)."""
    times, rss, heavy = [], [], ""
    # Through /bin/sh: Linux carries a process's peak RSS over exec, so a child exec'd straight from this
    # (large) process would report the bench's own RSS as its maxrss; sh forks a small process instead.
    command = ["/bin/sh", "-c", '"$0" -c "$1"; exit $?', sys.executable, _IMPORT_PROBE.format(stmt=stmt)]
    for _ in range(runs):
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        rss.append(float(out[1]))
        heavy = out[2] if len(out) > 2 else ""
    return {"ms": statistics.median(times), "rss_mib": statistics.median(rss), "heavy_modules": heavy}


# ---------------------------------------------------------------------------------------------- report


def run(n: int) -> dict[str, Any]:
    raw = build_bundle()
    bundle = parse_bundle(raw)
    findings = check_bundle(bundle, NOW)
    assert not findings, findings[:3]
    table = compile_bundle(bundle, content_hash=content_hash(raw), version=1)
    contexts = build_contexts(n)
    gc.collect()
    gc.freeze()  # the table and the contexts live for the whole run, as a served table does: keep GC off them
    decisions = {label: bench_decide(table, contexts, views) for label, views in health_views(table).items()}
    return {
        "bundle": {"models": len(bundle.models), "policies": len(bundle.policies),
                   "fallbacks_per_policy": 3, "decisions": n},
        "decisions": {label: vars(stats) for label, stats in decisions.items()},
        "compile_ms": bench_compile(raw),
        "report_us": bench_report(table),
        "import": {
            "python -c pass": bench_import("pass"),
            "import routeguard": bench_import("import routeguard"),
            "from routeguard.core.engine import decide": bench_import("from routeguard.core.engine import decide"),
        },
    }


def verdicts(result: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(metric, measured, target text, met) for every target."""
    out = []
    for label, stats in result["decisions"].items():
        for metric, key in (("decision p50", "p50_us"), ("decision p99", "p99_us")):
            limit, unit = TARGETS[f"live {metric}" if label == "live tracker" else metric]
            out.append((f"{metric} ({label})", stats[key], f"≤ {limit:g} {unit}", stats[key] <= limit))
    limit, unit = TARGETS["report"]
    rep = result["report_us"]
    record = rep["record_p50_us"]
    out.append(("report: tracker.record p50", record, f"≤ {limit:g} {unit}", record <= limit))
    limit, unit = TARGETS["router report"]
    router_p50 = rep["router_report_p50_us"]
    out.append(("report: Router.report p50 (+ routing)", router_p50, f"≤ {limit:g} {unit}", router_p50 <= limit))
    limit, unit = TARGETS["load+check+compile"]
    for source, ms in result["compile_ms"].items():
        out.append((f"load+check+compile ({source})", ms, f"≤ {limit:g} {unit}", ms <= limit))
    for stmt, fig in result["import"].items():
        if stmt == "python -c pass":
            continue
        limit, unit = TARGETS["import time"]
        out.append((f"{stmt}: time", fig["ms"], f"≤ {limit:g} {unit}", fig["ms"] <= limit))
        limit, unit = TARGETS["import RSS"]
        out.append((f"{stmt}: RSS", fig["rss_mib"], f"≤ {limit:g} {unit}", fig["rss_mib"] <= limit))
    return out


def render(result: dict[str, Any]) -> None:
    console = Console()
    b = result["bundle"]
    table = Table(title=f"routeguard decision bench — {b['models']} models, {b['policies']} policies "
                        f"(1 primary + {b['fallbacks_per_policy']} fallbacks), {b['decisions']:,} decisions")
    for col in ("metric", "measured", "target", ""):
        table.add_column(col)
    for metric, value, target, met in verdicts(result):
        unit = target.split()[-1]
        table.add_row(metric, f"{value:,.2f} {unit}", target, "[green]met[/]" if met else "[red]missed[/]")
    console.print(table)
    detail = Table(title="decision latency detail (µs)")
    for col in ("health", "p50", "p99", "p99.9", "mean", "max", "statuses"):
        detail.add_column(col)
    for label, s in result["decisions"].items():
        detail.add_row(label, *(f"{s[k]:.2f}" for k in ("p50_us", "p99_us", "p999_us", "mean_us", "max_us")),
                       ", ".join(f"{k} {v}" for k, v in sorted(s["statuses"].items())))
    console.print(detail)
    base = result["import"]["python -c pass"]
    console.print(f"bare interpreter: {base['ms']:.1f} ms, {base['rss_mib']:.1f} MiB RSS; heavy modules loaded by "
                  + "; ".join(f"`{k}`: {v['heavy_modules'] or 'none'}" for k, v in result["import"].items()
                              if k != "python -c pass"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--decisions", type=int, default=100_000, help="decisions to time (default 100,000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    result = run(args.decisions)
    result["verdicts"] = [{"metric": m, "measured": v, "target": t, "met": ok} for m, v, t, ok in verdicts(result)]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        render(result)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not args.json:
        Console().print(f"(bench process peak RSS {maxrss:.0f} MiB)")
    return 1 if args.check and not all(v["met"] for v in result["verdicts"]) else 0


if __name__ == "__main__":
    sys.exit(main())
