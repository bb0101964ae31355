"""An outage and a recovery driven by reported outcomes, on a manual clock (README example)."""

from routeguard import Router


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


clock = ManualClock()
router = Router.from_file("examples/clinical-triage.yaml", clock=clock)
router.subscribe(lambda e: print(f"  event {e.event}: {e.to_dict().get('from_model', '')} -> "
                                 f"{e.to_dict().get('to_model', e.to_dict().get('to_state', ''))}  "
                                 f"({e.to_dict().get('reason', e.to_dict().get('detail', ''))})"))
ctx = {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted"}

print("1. healthy:", router.decide(ctx).model)
print("2. triage-v3 starts failing")
for _ in range(6):
    clock.now += 1
    router.report({"model": "triage-v3", "ok": False, "error": "overloaded", "latency_ms": 30})
print("   now serving:", router.decide(ctx).model)

print("3. 31 s later the cooldown is over: probes go to triage-v3, and they succeed")
clock.now += 31
for _ in range(3):
    decision = router.decide(ctx)
    print(f"   request -> {decision.model} (probe={decision.probe})")
    router.report({"trace_id": decision.trace_id, "model": decision.model, "ok": True, "latency_ms": 200})
    clock.now += 1
clock.now += 10  # the minimum dwell in a state (10 s) has passed
print("4. recovered:", router.decide(ctx).model)
