"""TATAR rewards on one GRPO batch: 128 prompts x 8 completions (half IQA, half IAA).

Times every reward term (format, Gaussian with the IAA anchor and word gates, Thurstone, the
released pairwise rank, think-length cost) as TRL calls them on one batch, and the same formulas
written as a straightforward per-completion Python loop. Memoised parses are cleared before
every timed batch, so each batch pays for its parsing. Goal: >= 50x the loop, < 5 ms per batch.
`per_term_ms_median` times each term called alone on a fresh batch (each pays the scan of the
completions, which the terms of one step otherwise share).

Run: .venv/bin/python bench/tatar_rewards.py   (writes bench/results/tatar_rewards.json)
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tatar import rewards
from tatar.parsing import parse_answer, think_words

PROMPTS, G = 128, 8
RESULTS = Path(__file__).resolve().parent / "results" / "tatar_rewards.json"

# Every term on, with the knobs of both presets (IAA anchor + floor as released, Thurstone as
# in the paper, the released pairwise rank, a think cost for both tasks).
ALL_TERMS = rewards.RewardSettings.preset(
    "paper",
    iaa_anchor=True,
    iaa_min_words=125,
    pairwise_rank_weight=1.0,
    think_cost_iqa=0.2,
    think_cost_iaa=0.05,
)

IQA_WORDS = [
    "sharp",
    "noise",
    "blur",
    "exposure",
    "compression",
    "artifacts",
    "colour",
    "cast",
    "detail",
    "edges",
    "highlights",
]
IAA_WORDS = [
    "composition",
    "lighting",
    "colour",
    "harmony",
    "subject",
    "balance",
    "style",
    "emotion",
    "framing",
    "depth",
    "texture",
    "contrast",
    "mood",
    "symmetry",
    "palette",
    "narrative",
]


def make_batch(seed: int = 0) -> dict:
    """Completions like a policy's: IQA mostly short or think-free, IAA ~100-150 words."""
    rng = random.Random(seed)
    completions, task, solution, group = [], [], [], []
    for p in range(PROMPTS):
        t = "iqa" if p < PROMPTS // 2 else "iaa"
        gt = round(rng.uniform(5, 95), 2)
        for _ in range(G):
            score = min(100.0, max(0.0, gt + rng.gauss(0, 12)))
            if t == "iqa":
                n_words = rng.choice([0, 0, 20, 35, 50, 80])
                vocab = IQA_WORDS
            else:
                n_words = rng.randint(80, 160)
                vocab = IAA_WORDS
            think = " ".join(rng.choice(vocab) for _ in range(n_words))
            answer = (
                f"<answer>{score:.2f}</answer>"
                if rng.random() > 0.05
                else "<answer>about 50</answer>"
            )
            text = f"<think>\n{think}\n</think>\n{answer}" if n_words else answer
            completions.append([{"role": "assistant", "content": text}])
            task.append(t)
            solution.append(gt)
            group.append(p)
    return {"completions": completions, "task": task, "solution": solution, "group": group}


# ---------------------------------------------------------------------------------------------
# The same formulas as a straightforward per-completion Python loop (the baseline).


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _bce(p: float, q: float, eps: float) -> float:
    q = min(1.0 - eps, max(eps, q))
    return -(p * math.log(q) + (1.0 - p) * math.log(1.0 - q))


def loop_rewards(batch: dict, s: rewards.RewardSettings) -> dict[str, list[float]]:
    texts = [c[0]["content"] for c in batch["completions"]]
    tasks, gts, groups = batch["task"], batch["solution"], batch["group"]
    n = len(texts)
    preds = [parse_answer(t) for t in texts]
    out = {"format": [1.0 if p is not None else 0.0 for p in preds]}

    sigma0 = s.threshold / math.sqrt(-2.0 * math.log(s.target))
    gauss = []
    for text, t, p, gt in zip(texts, tasks, preds, gts, strict=True):
        if p is None:
            gauss.append(0.0)
            continue
        d = abs(min(100.0, max(0.0, p)) - min(100.0, max(0.0, gt)))
        alpha = s.iqa_alpha if t == "iqa" else s.iaa_alpha
        sig = sigma0 * (1 + alpha * d / 100)
        r = math.exp(-d * d / (2 * sig * sig))
        words = len(text.split())
        if t == "iqa" and words > s.iqa_max_words:
            r = 0.0
        if t == "iaa":
            r = 0.0 if words < s.iaa_min_words else min(1.0, s.iaa_scale * r)
        gauss.append(r)
    out["gaussian"] = gauss

    # Thurstone: group statistics, then every completion against every other group.
    stats: dict = {}
    for i in range(n):
        if tasks[i] == "iaa" and preds[i] is not None:
            stats.setdefault(groups[i], []).append(min(1.0, max(0.0, preds[i] / 100)))
    mu = {k: sum(v) / len(v) for k, v in stats.items()}
    var = {k: sum((x - mu[k]) ** 2 for x in v) / len(v) for k, v in stats.items()}
    ggt = {groups[i]: gts[i] / 100 for i in range(n)}
    eps = s.thurstone_eps
    thur = []
    for i in range(n):
        if tasks[i] != "iaa" or preds[i] is None or len(stats) < 2:
            thur.append(0.0)
            continue
        q, gi = min(1.0, max(0.0, preds[i] / 100)), groups[i]
        num = den = 0.0
        for j in stats:
            if j == gi:
                continue
            p_gt = _sigmoid((ggt[gi] - ggt[j]) / s.tau)
            p_pr = _sigmoid((q - mu[j]) / math.sqrt(var[gi] + var[j] + eps))
            w = math.exp(-abs(ggt[gi] - ggt[j]) / s.margin)
            num += w * _bce(p_gt, p_pr, eps)
            den += w
        r = max(0.0, min(1.0, 1 - num / den / -math.log(eps)))
        thur.append(0.0 if len(texts[i].split()) < s.iaa_min_words else r)
    out["thurstone"] = thur

    idx = [i for i in range(n) if tasks[i] == "iaa" and preds[i] is not None]
    rank = [0.0] * n
    for i in idx:
        qi, gi = min(1.0, max(0.0, preds[i] / 100)), gts[i] / 100
        num = den = 0.0
        for j in idx:
            if j == i:
                continue
            qj, gj = min(1.0, max(0.0, preds[j] / 100)), gts[j] / 100
            w = math.exp(-abs(gi - gj) / s.margin)
            num += w * _bce(_sigmoid((gi - gj) / s.tau), _sigmoid((qi - qj) / s.tau), s.rank_eps)
            den += w
        rank[i] = max(0.0, min(1.0, 1 - num / den / -math.log(s.rank_eps)))
    out["pairwise_rank"] = rank

    out["think_cost"] = [
        -(s.think_cost_iqa if t == "iqa" else s.think_cost_iaa)
        * min(1.0, think_words(x) / s.think_cost_norm_words)
        for x, t in zip(texts, tasks, strict=True)
    ]
    return out


def vector_rewards(batch: dict, funcs) -> dict[str, list[float]]:
    return {f.__name__: f(prompts=None, completion_ids=None, **batch) for f in funcs}


def _time(fn, repeats: int, clock=time.perf_counter) -> list[float]:
    times = []
    for _ in range(repeats):
        rewards.clear_caches()
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return times


def main() -> int:
    load_before = os.getloadavg()[0]
    batch = make_batch()
    funcs, _ = rewards.reward_functions(ALL_TERMS)
    names = [f.__name__ for f in funcs]

    # Same numbers both ways (float32 pairwise matrix: 1e-5).
    fast = vector_rewards(batch, funcs)
    slow = loop_rewards(batch, ALL_TERMS)
    max_diff = max(
        float(np.max(np.abs(np.asarray(fast[a]) - np.asarray(slow[b]))))
        for a, b in zip(
            names, ["format", "gaussian", "thurstone", "pairwise_rank", "think_cost"], strict=True
        )
    )
    assert max_diff < 1e-5, f"vectorised and loop rewards differ by {max_diff}"

    _time(lambda: vector_rewards(batch, funcs), 5)  # warm-up
    vec = _time(lambda: vector_rewards(batch, funcs), 200)
    # CPU time of this process: less sensitive to other jobs on the shared machine
    vec_cpu = _time(lambda: vector_rewards(batch, funcs), 200, clock=time.process_time)
    loop = _time(lambda: loop_rewards(batch, ALL_TERMS), 5)
    per_term = {}
    for f in funcs:
        per_term[f.__name__] = statistics.median(_time(lambda f=f: f(**batch), 100)) * 1e3
    paper_funcs, _ = rewards.reward_functions("paper")
    released_funcs, _ = rewards.reward_functions("released")
    paper = _time(lambda: vector_rewards(batch, paper_funcs), 100)
    released = _time(lambda: vector_rewards(batch, released_funcs), 100)

    vec_ms, loop_ms = statistics.median(vec) * 1e3, statistics.median(loop) * 1e3
    result = {
        "batch": f"{PROMPTS} prompts x {G} completions ({PROMPTS * G} completions, half IQA, half IAA)",
        "terms": names,
        "vectorised_ms_per_batch_median": round(vec_ms, 3),
        "vectorised_ms_per_batch_p90": round(float(np.percentile(vec, 90)) * 1e3, 3),
        "vectorised_cpu_ms_per_batch_median": round(statistics.median(vec_cpu) * 1e3, 3),
        "loop_ms_per_batch_median": round(loop_ms, 1),
        "speedup": round(loop_ms / vec_ms, 1),
        "per_term_ms_median": {k: round(v, 3) for k, v in per_term.items()},
        "preset_paper_ms_median": round(statistics.median(paper) * 1e3, 3),
        "preset_released_ms_median": round(statistics.median(released) * 1e3, 3),
        "max_abs_diff_vs_loop": max_diff,
        "goal": ">= 50x the loop and < 5 ms per batch",
        "goal_met": bool(loop_ms / vec_ms >= 50 and vec_ms < 5),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}",
        # the machine is shared: other jobs inflate the timings; this says how busy it was
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=RESULTS.parent, suffix=".tmp", delete=False) as fh:
        json.dump(result, fh, indent=2)
    os.replace(fh.name, RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
