"""The paired view of evaluations a learned primary is trained on: one row per task, both arms' outcomes.

Which policy serves each class (CONTRACT §1 resolution), which approved model can be its weak arm, which
classes must stay on the strong arm because of their data class, and the held-back replay split by prompt hash.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from routeguard.core.checks import current_approval
from routeguard.core.model import Bundle, Policy
from routeguard.core.resolve import PolicyIndex, RequestKey
from routeguard.review.load import Record

__all__ = ["PolicyData", "Task", "gather_tasks", "heldback_mask", "policy_data"]

CHARS_PER_TOKEN = 4.0


@dataclass(slots=True)
class Task:
    task_id: str
    task_class: str
    text: str | None = None
    data_class: str | None = None
    arms: dict[str, Record] = field(default_factory=dict)  # model -> its outcome on this task


@dataclass(slots=True)
class PolicyData:
    """Everything about one policy that a learned primary could change."""

    policy: str
    strong: str
    weak: str | None
    classes: list[str]
    held: dict[str, str]  # class -> why it stays on the strong arm
    tasks: list[Task]  # paired tasks (both arms evaluated)
    notes: list[str] = field(default_factory=list)
    typical_output: dict[str, float] = field(default_factory=dict)  # output_tokens(), computed once

    def tokens(self, t: Task) -> tuple[float, float]:
        """(input, output) tokens of a task: as evaluated, else prompt characters / 4 and the class median."""
        rec = t.arms[self.strong]
        tin = rec.input_tokens or max(1.0, len(t.text or "") / CHARS_PER_TOKEN)
        tout = rec.output_tokens if rec.output_tokens is not None else self.typical_output.get(
            t.task_class, self.typical_output.get("*", 0.0)
        )
        return float(tin), float(tout)

    def output_tokens(self) -> dict[str, float]:
        """Median output tokens per class (and ``*`` over all), from the evaluations."""
        by: dict[str, list[float]] = defaultdict(list)
        for t in self.tasks:
            out = t.arms[self.strong].output_tokens
            if out is not None:
                by[t.task_class].append(out)
                by["*"].append(out)
        return {k: float(statistics.median(v)) for k, v in by.items()}


def gather_tasks(records: Sequence[Record], rank: Mapping[str, int]) -> dict[str, Task]:
    tasks: dict[str, Task] = {}
    for r in records:
        t = tasks.get(r.task_id)
        if t is None:
            t = tasks[r.task_id] = Task(r.task_id, r.task_class or "")
        t.arms[r.model] = r
        if r.text and not t.text:
            t.text = r.text
        if r.data_class and rank.get(r.data_class, -1) > rank.get(t.data_class or "", -1):
            t.data_class = r.data_class
    return tasks


def _weak_for(bundle: Bundle, policy: Policy, tasks: list[Task], now: float) -> tuple[str | None, str]:
    strong_name = policy.primary[0].model
    strong = bundle.models.get(strong_name)
    profile = bundle.profiles.get(policy.profile)
    if strong is None or profile is None:
        return None, "the policy's primary or profile is not in the bundle"
    rank = {c: i for i, c in enumerate(bundle.data_classes)}
    costs: dict[str, list[float]] = defaultdict(list)
    for t in tasks:
        for name, rec in t.arms.items():
            if strong_name in t.arms and rec.cost_usd is not None:
                costs[name].append(rec.cost_usd)
    ranked = []
    for name, values in costs.items():
        m = bundle.models.get(name)
        if name == strong_name or m is None or not values:
            continue
        approval, valid = current_approval(bundle, name, profile.name, now)
        if approval is None or not valid or not m.capabilities <= strong.capabilities:
            continue
        if rank.get(m.clearance, -1) < rank.get(profile.data_class, 0):
            continue
        if profile.regions is not None and (m.regions is None or not m.regions <= profile.regions):
            continue
        ranked.append((statistics.fmean(values), name))
    base = statistics.fmean(costs[strong_name]) if costs.get(strong_name) else float("inf")
    cheaper = sorted(r for r in ranked if r[0] < base)
    if not cheaper:
        return None, "no approved model within the strong arm's capabilities is cheaper on these tasks"
    return cheaper[0][1], ""


def policy_data(
    bundle: Bundle, tasks: Mapping[str, Task], agent: str | None, now: float
) -> tuple[list[PolicyData], list[str]]:
    """One :class:`PolicyData` per policy serving some evaluated class; notes for the classes nothing serves."""
    index = PolicyIndex(bundle.policies)
    by_policy: dict[str, list[Task]] = defaultdict(list)
    notes: list[str] = []
    for t in tasks.values():
        policy = index.resolve(RequestKey(agent=agent, task_type=t.task_class))
        if policy is None:
            notes.append(f"task class {t.task_class}: no policy serves it")
            continue
        by_policy[policy.name].append(t)
    rank = {c: i for i, c in enumerate(bundle.data_classes)}
    out = []
    for name, group in sorted(by_policy.items()):
        policy = bundle.policies[name]
        classes = sorted({t.task_class for t in group})
        if policy.learned is not None or len(policy.primary) != 1:
            notes.append(f"policy {name}: already has a learned primary or weighted arms; left as it is")
            continue
        strong = policy.primary[0].model
        weak, why = _weak_for(bundle, policy, group, now)
        data = PolicyData(name, strong, weak, classes, {}, [])
        if weak is None:
            data.notes.append(why)
            out.append(data)
            continue
        data.tasks = [t for t in group if strong in t.arms and weak in t.arms]
        data.typical_output = data.output_tokens()
        clearance = bundle.models[weak].clearance
        for t in data.tasks:
            if t.data_class and rank.get(t.data_class, -1) > rank.get(clearance, -1):
                data.held.setdefault(
                    t.task_class,
                    f"data class {t.data_class}: {weak} is cleared only for {clearance}, so the class stays on "
                    f"{strong}",
                )
        out.append(data)
    return out, notes


def heldback_mask(tasks: Sequence[Task], share: float, seed: int) -> np.ndarray:
    """True for tasks held back from training and calibration, chosen by a seeded hash of the prompt."""
    out = np.zeros(len(tasks), dtype=bool)
    for i, t in enumerate(tasks):
        key = f"{seed}:{t.text if t.text else t.task_id}".encode()
        out[i] = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < share
    return out
