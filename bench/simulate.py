"""Benchmark: one hour of virtual time, 50 requests/s over 10 policies (~180,000 requests), with faults.

Everything runs through the real Router, Executor, engine, health tracker and route state in virtual
time. Prints the wall time, the CPU time and the simulated requests per second of wall time
(target: the hour in at most 30 s on a 2-core machine), and the load average, since other work on
the machine stretches the wall time.

    .venv/bin/python bench/simulate.py [--duration 1h] [--rps 50] [--policies 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from routeguard.core.durations import parse_duration
from routeguard.sim.report import build_report
from routeguard.sim.scenario import parse_scenario
from routeguard.sim.simulator import Simulation


def bench_bundle(policies: int) -> dict[str, Any]:
    """``policies`` policies, each with its own primary and fallback, and a shared last-resort model."""
    models: dict[str, Any] = {}
    approvals: list[dict[str, Any]] = []
    pols: dict[str, Any] = {}

    def model(name: str) -> None:
        models[name] = {
            "provider": "bench",
            "endpoint": {"type": "fake"},
            "capabilities": ["text"],
            "clearance": "confidential",
            "regions": ["eu"],
            "trusted": True,
            "cost": {"input_per_1m": 1.0, "output_per_1m": 2.0},
        }
        approvals.append({"model": name, "profile": "work", "by": "bench", "expires": "2099-12-31"})

    model("shared-backup")
    for i in range(policies):
        model(f"p{i}-primary")
        model(f"p{i}-fallback")
        pols[f"agent-{i}"] = {
            "profile": "work",
            "primary": f"p{i}-primary",
            "fallbacks": [
                {"model": f"p{i}-fallback", "on": ["unavailable", "degraded", "retryable"]},
                "shared-backup",
            ],
            "terminal": {"action": "suspend"},
            "timeout": "10s",
            "health": {"p95_latency": "3s", "cooldown": "30s"},
        }
    return {
        "models": models,
        "profiles": {"work": {"requires": ["text"], "data_class": "confidential"}},
        "approvals": approvals,
        "policies": pols,
        "safe_mode": {"auto": {"fallback_failure_rate": 0.05, "window": "60s"}},
    }


def bench_scenario(duration_s: float, rps: float, policies: int) -> dict[str, Any]:
    per = rps / policies
    traffic = [
        {
            "agent": f"agent-{i}",
            "tenant": f"t{i % 3}",
            "rps": per,
            "data_class": "internal",
            "tokens": {"input": 500, "output": 200},
            "stream": i % 4 == 0,
        }
        for i in range(policies)
    ]
    faults: list[dict[str, Any]] = []
    for i in range(policies):
        start = 300 + i * 240
        kind = ["outage", "brownout", "latency", "rate_limit", "stream_break"][i % 5]
        fault: dict[str, Any] = {"model": f"p{i}-primary", "kind": kind, "at": start, "until": start + 600}
        if kind == "latency":
            fault.update(p50=2500, p95=6000)
        faults.append(fault)
    return {"duration": duration_s, "seed": 1, "traffic": traffic, "faults": faults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="1h")
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--policies", type=int, default=10)
    parser.add_argument("--no-invariants", action="store_true", help="skip the §2 oracle on every decision")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    duration = parse_duration(args.duration)
    scenario = parse_scenario(bench_scenario(duration, args.rps, args.policies), name="bench")
    began, cpu = time.perf_counter(), time.process_time()
    sim = Simulation(bench_bundle(args.policies), scenario, check_invariants=not args.no_invariants)
    run = sim.run()
    report = build_report(run)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    figures = {
        "virtual_s": duration,
        "policies": args.policies,
        "rps": args.rps,
        "requests": report["requests"],
        "wall_s": round(wall, 2),
        "simulate_wall_s": round(run.wall_s, 2),
        "cpu_s": round(cpu, 2),
        "requests_per_wall_s": round(report["requests"] / wall),
        "speedup": round(duration / wall),
        "routing_changes": len(report["routing_changes"]),
        "unapproved_served": report["unapproved_served"],
        "invariant_violations": report["invariants"]["violations"],
        "decision_p50_us": report["decision_latency_us"]["p50"],
        "decision_p99_us": report["decision_latency_us"]["p99"],
        "target_met": wall <= 30.0,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        sys.stdout.write(json.dumps(figures) + "\n")
        return
    table = Table(title="routeguard simulate: 1 h at 50 rps over 10 policies")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)


if __name__ == "__main__":
    main()
