"""Benchmark: bench/failover.py's four measurements on routeguard and on LiteLLM's Router, in one run.

LiteLLM answers from ``mock_response`` (no network); its primary fails with
``mock_response="litellm.InternalServerError"`` (a retryable 500). Calls that reach a deployment are
counted by wrapping ``litellm.main.mock_completion``. Settings are matched where the two differ:

(a) ``Router.acompletion`` over a direct ``litellm.acompletion`` (routeguard: ``router.complete`` over
    ``provider.complete``);
(b) primary fails, one fallback serves, no retries (``num_retries=0`` / ``retry.attempts: 1``);
(c) completions/s at concurrency 1, 16 and 128;
(d) a dead single primary, one attempt per request, LiteLLM defaults otherwise (allowed_fails 3,
    cooldown 5 s) and routeguard's default health settings. LiteLLM runs in real time (it reads the
    clock itself), routeguard in virtual time (10 requests/s for 10 minutes).

LiteLLM is a bench-only extra (``pip install -e '.[bench]'`` or ``.venv/bin/pip install litellm``).
Without it, this script says so and runs the routeguard half.

    .venv/bin/python bench/vs_litellm.py [--quick] [--json]
"""

# ruff: noqa: E402 - the path fix below must run before the imports
from __future__ import annotations

import sys
from pathlib import Path

# This directory is sys.path[0] for a script: bench/http.py would shadow the standard library's http.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from types import ModuleType
from typing import TYPE_CHECKING, Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of the cost map at import

from rich.console import Console


def _load_failover() -> ModuleType:
    """bench/failover.py, the shared harness, loaded by path (this directory is not on sys.path)."""
    spec = importlib.util.spec_from_file_location("failover", _HERE / "failover.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["failover"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import failover as fo
else:
    fo = _load_failover()

MESSAGES = fo.REQUEST["messages"]
KEY = "sk-bench-not-used"
# Model names LiteLLM knows (an unknown one makes its per-call cost lookup slower), one per role so
# the calls reaching each deployment can be counted apart.
UPSTREAM = {"primary": "gpt-4o-mini", "backup": "gpt-4o", "dead": "gpt-4.1-mini"}


def load_litellm() -> tuple[ModuleType | None, str]:
    try:
        import litellm
    except ImportError as exc:
        return None, f"LiteLLM is not installed ({exc}); install it with `.venv/bin/pip install litellm`."
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from importlib.metadata import version

    return litellm, version("litellm")


class CallCounter:
    """Counts the calls that reach each deployment (LiteLLM's mock layer, by model name)."""

    def __init__(self, litellm: ModuleType) -> None:
        import litellm.main as main

        self.counts: dict[str, int] = {}
        self._main = main
        self._original: Callable[..., Any] = main.mock_completion

        def counting(*args: Any, **kwargs: Any) -> Any:
            model = str(kwargs.get("model") or (args[0] if args else ""))
            self.counts[model] = self.counts.get(model, 0) + 1
            return self._original(*args, **kwargs)

        main.mock_completion = counting

    def get(self, role: str) -> int:
        return sum(n for m, n in self.counts.items() if m.split("/")[-1] == UPSTREAM[role])


def deployment(group: str, model: str, mock: str) -> dict[str, Any]:
    params = {"model": f"openai/{UPSTREAM[model]}", "api_key": KEY, "mock_response": mock}
    return {"model_name": group, "litellm_params": params}


async def litellm_overhead(litellm: ModuleType, res: fo.Results, n: int) -> None:
    router = litellm.Router(model_list=[deployment("agent", "primary", "ok")])

    async def direct() -> Any:
        return await litellm.acompletion(model=f"openai/{UPSTREAM['primary']}", messages=MESSAGES,
                                         api_key=KEY, mock_response="ok")

    async def routed() -> Any:
        return await router.acompletion(model="agent", messages=MESSAGES)

    d, r = await fo.interleaved(direct, routed, n, warmup=min(100, n))
    fo.record_overhead(res, d, r)


async def litellm_fallback(litellm: ModuleType, res: fo.Results, counter: CallCounter, n: int) -> None:
    failing = litellm.Router(
        model_list=[deployment("agent", "primary", "litellm.InternalServerError"),
                    deployment("backup", "backup", "ok")],
        fallbacks=[{"agent": ["backup"]}], num_retries=0)
    plain = litellm.Router(model_list=[deployment("agent", "primary", "ok")])

    async def failing_over() -> Any:
        response = await failing.acompletion(model="agent", messages=MESSAGES)
        assert response.choices[0].message.content == "ok"
        return response

    async def routed() -> Any:
        return await plain.acompletion(model="agent", messages=MESSAGES)

    before = counter.get("backup")
    f, r = await fo.interleaved(failing_over, routed, n, warmup=min(50, n))
    res.fallback_p50_ms, res.fallback_p99_ms = f.ms(0.5), f.ms(0.99)
    res.fallback_added_p50_ms = res.fallback_p50_ms - r.ms(0.5)
    if counter.get("backup") - before < n:
        res.notes.append("(b) some requests were not served by the fallback")


async def litellm_throughput(litellm: ModuleType, res: fo.Results, total: int, rounds: int) -> None:
    for concurrency in fo.CONCURRENCY:
        router = litellm.Router(model_list=[deployment("agent", "primary", "ok")])

        async def call(r: Any = router) -> Any:
            return await r.acompletion(model="agent", messages=MESSAGES)

        await fo.measure_throughput_of(res, call, concurrency, total, rounds)


async def litellm_dead_primary(litellm: ModuleType, res: fo.Results, counter: CallCounter,
                               requests: int) -> None:
    dead = deployment("agent", "dead", "litellm.InternalServerError")
    router = litellm.Router(model_list=[dead], num_retries=0)
    res.dead_min_samples = 3  # LiteLLM's allowed_fails default
    before: int | None = None
    start = counter.get("dead")
    for _ in range(requests):
        seen = counter.get("dead")
        with contextlib.suppress(Exception):  # every request fails; we only count
            await router.acompletion(model="agent", messages=MESSAGES)
        if before is None and counter.get("dead") == seen:
            before = seen - start  # the first request that did not reach it: declared down
    reached = counter.get("dead") - start
    res.dead_requests = requests
    res.dead_reached_before_down = before
    res.dead_reached_after = reached - (before or 0)
    res.dead_probe_windows = None
    res.notes.append(f"(d) {requests} requests back to back in real time, num_retries=0")


async def run_litellm(litellm: ModuleType, quick: bool) -> fo.Results:
    res = fo.Results("LiteLLM")
    counter = CallCounter(litellm)
    await litellm_overhead(litellm, res, 200 if quick else 1000)
    await litellm_fallback(litellm, res, counter, 100 if quick else 300)
    await litellm_throughput(litellm, res, 256 if quick else 1024, 1)
    await litellm_dead_primary(litellm, res, counter, 100 if quick else 300)
    return res


async def run_routeguard(quick: bool) -> fo.Results:
    res = fo.Results("routeguard")
    n = 3_000 if quick else 20_000
    await fo.measure_overhead(res, n)
    await fo.measure_fallback(res, n // 2)
    await fo.measure_throughput(res, 5_000 if quick else 20_000)
    await fo.measure_dead_primary(res, minutes=2 if quick else fo.DEAD_MINUTES, retry_attempts=1)
    res.notes.append("(d) 10 requests/s in virtual time, retry.attempts 1, default health")
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    console = Console(width=max(160, Console().width))
    litellm, about = load_litellm()
    if litellm is None:
        console.print(f"[bold red]{about}[/] Running the routeguard half only.")
    rg = asyncio.run(run_routeguard(args.quick))
    ll = asyncio.run(run_litellm(litellm, args.quick)) if litellm is not None else None
    if args.json:
        out: dict[str, Any] = {"routeguard": asdict(rg), "litellm": asdict(ll) if ll else None,
                               "litellm_version": about if litellm is not None else None}
        if ll is not None:
            out["ratios"] = ratios(rg, ll)
        print(json.dumps(out, indent=2))
        return 0
    table = fo.table(rg, ll)
    if ll is not None:
        table.title = f"routeguard vs LiteLLM {about} — {table.title}"
    console.print(table)
    for line in fo.notes(rg, *([ll] if ll is not None else [])):
        console.print(line)
    return 0


def ratios(rg: fo.Results, ll: fo.Results) -> dict[str, float | None]:
    """routeguard / LiteLLM for each figure (below 1 is better for times, above 1 for throughput)."""

    def r(a: float, b: float) -> float | None:
        return a / b if b else None

    out = {
        "overhead_p50": r(rg.overhead_p50_ms, ll.overhead_p50_ms),
        "overhead_p99": r(rg.overhead_p99_ms, ll.overhead_p99_ms),
        "fallback_p50": r(rg.fallback_p50_ms, ll.fallback_p50_ms),
        "fallback_added_p50": r(rg.fallback_added_p50_ms, ll.fallback_added_p50_ms),
    }
    for c in fo.CONCURRENCY:
        out[f"throughput_{c}"] = r(rg.throughput.get(c, 0.0), ll.throughput.get(c, 0.0))
    rg_share = ((rg.dead_reached_before_down or 0) + rg.dead_reached_after) / max(rg.dead_requests, 1)
    ll_share = ((ll.dead_reached_before_down or 0) + ll.dead_reached_after) / max(ll.dead_requests, 1)
    out["dead_primary_share_reached"] = r(rg_share, ll_share)
    return out


if __name__ == "__main__":
    sys.exit(main())
