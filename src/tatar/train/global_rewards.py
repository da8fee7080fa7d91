"""Reward functions over the whole generation batch of every process, and per-task metrics.

TRL calls each reward function on one process's share of a generation batch. The ranking
rewards (Thurstone, the released pairwise rank) compare images with each other, so they must
see every image of the batch: `globalize` gathers the completions and their columns from all
processes (`accelerate.utils.gather_object`), computes the reward on the global batch and returns
this process's slice. With one process it is the plain function. The released code saw one
image per call, so its Thurstone reward could only return zeros.

`TaskMetrics` wraps all reward functions of a trainer so that, once per step, the per-task
figures are computed over the global batch and handed to TRL's ``log_metric`` (they reach the
log history, the JSONL run log, TensorBoard...): each reward function's mean and the weighted
total per task, completion words and tokens, the share of completions with ``<think>``, think
words and parse failures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from tatar.parsing import has_think, scan_completions
from tatar.rewards import completion_text

RewardFn = Callable[..., list[float]]
# Reward terms whose value for one completion depends on other images of the batch.
BATCH_LEVEL = frozenset({"iaa_thurstone", "iaa_pairwise_rank"})
# The dataset columns the rewards read (TRL also passes the others, images included: those are
# not worth sending between processes).
REWARD_COLUMNS = ("task", "solution", "group")


def _state():
    from accelerate import PartialState

    return PartialState()


def gather_batch(payload: dict[str, list]) -> tuple[dict[str, list], slice]:
    """Every process's `payload` (lists of equal length), concatenated in rank order, and the
    slice of the result that is this process's own rows."""
    lengths = {len(v) for v in payload.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    state = _state()
    if state.num_processes == 1:
        return payload, slice(0, n)
    from accelerate.utils import gather_object

    parts = gather_object([payload])  # one payload per rank, in rank order
    offset = sum(len(next(iter(p.values()), [])) for p in parts[: state.process_index])
    merged = {k: [v for p in parts for v in p[k]] for k in payload}
    return merged, slice(offset, offset + n)


def globalize(fn: RewardFn, columns: Sequence[str] = REWARD_COLUMNS) -> RewardFn:
    """`fn` computed on the completions of all processes; returns this process's values.

    The dataset `columns` travel with the completions. Group ids must be unique per prompt
    across processes (the dataset row index is).
    """

    def reward(completions, **kwargs) -> list[float]:
        columns_here = {k: list(kwargs[k]) for k in columns if kwargs.get(k) is not None}
        payload = {"completions": [completion_text(c) for c in completions], **columns_here}
        merged, own = gather_batch(payload)
        values = fn(**merged)
        out = list(values)[own]
        log_metric = kwargs.get("log_metric")
        if log_metric is not None and "group" in merged and "task" in merged:
            pairs = zip(merged["group"], merged["task"], strict=True)
            iaa_groups = {g for g, t in pairs if _norm_task(t) == "iaa"}
            log_metric(f"batch/{fn.__name__}/iaa_groups", float(len(iaa_groups)))
        return out

    reward.__name__ = fn.__name__
    reward.__qualname__ = fn.__name__
    reward.__doc__ = f"{fn.__doc__ or fn.__name__} (over the generation batch of all processes)"
    reward.inner = fn
    return reward


def _norm_task(t: str) -> str:
    return {"iqa_score": "iqa", "iaa_score": "iaa"}.get(str(t).lower(), str(t).lower())


def task_summary(
    tasks: Sequence[str],
    texts: Sequence[str],
    token_lengths: Sequence[int] | None,
    values: dict[str, Sequence[float]],
    weights: Sequence[float],
) -> dict[str, float]:
    """Per-task figures of one global batch (keys ``task/<task>/...``)."""
    scan = scan_completions(texts)
    think = np.array([has_think(t) for t in texts], dtype=bool)
    tasks = np.array([_norm_task(t) for t in tasks])
    names = list(values)
    matrix = np.array([np.asarray(values[n], dtype=float) for n in names]).reshape(
        len(names), len(texts)
    )
    total = np.nansum(matrix * np.asarray(weights, dtype=float)[:, None], axis=0)
    out: dict[str, float] = {}
    for task in ("iqa", "iaa"):
        sel = tasks == task
        if not sel.any():
            continue
        p = f"task/{task}"
        out[f"{p}/count"] = float(sel.sum())
        out[f"{p}/reward"] = float(total[sel].mean())
        for name, row in zip(names, matrix, strict=True):
            v = row[sel]
            v = v[np.isfinite(v)]
            if len(v):
                out[f"{p}/rewards/{name}"] = float(v.mean())
        out[f"{p}/completion_words"] = float(scan.words[sel].mean())
        if token_lengths is not None:
            out[f"{p}/completion_tokens"] = float(
                np.asarray(token_lengths, dtype=float)[sel].mean()
            )
        out[f"{p}/think_share"] = float(think[sel].mean())
        out[f"{p}/think_words"] = float(scan.think_words[sel].mean())
        out[f"{p}/parse_failure"] = float((~np.isfinite(scan.answer[sel])).mean())
    return out


class TaskMetrics:
    """Wraps a trainer's reward functions; after the last one of a step, logs per-task figures.

    Every process computes the same global figures and logs them through TRL's ``log_metric``,
    whose cross-process average then equals them.
    """

    def __init__(self, funcs: Sequence[RewardFn], weights: Sequence[float]):
        if len(funcs) != len(weights):
            raise ValueError(f"{len(funcs)} reward functions but {len(weights)} weights")
        self.names = [f.__name__ for f in funcs]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"reward function names must be distinct: {self.names}")
        self.weights = list(weights)
        self.funcs = [self._wrap(f, i) for i, f in enumerate(funcs)]
        self._values: dict[str, list[float]] = {}
        self.last: dict[str, float] = {}

    def _wrap(self, fn: RewardFn, position: int) -> RewardFn:
        last = position == len(self.names) - 1

        def reward(completions, **kwargs) -> list[float]:
            out = fn(completions=completions, **kwargs)
            self._values[fn.__name__] = [math.nan if v is None else float(v) for v in out]
            if last:
                self._flush(completions, kwargs)
            return out

        reward.__name__ = fn.__name__
        reward.__qualname__ = fn.__name__
        reward.__doc__ = fn.__doc__
        return reward

    def _flush(self, completions, kwargs) -> None:
        texts = [completion_text(c) for c in completions]
        ids = kwargs.get("completion_ids")
        payload = {
            "task": list(kwargs.get("task") or ["?"] * len(texts)),
            "text": texts,
            "tokens": [len(x) for x in ids] if ids is not None else [0] * len(texts),
            **{f"r:{n}": self._values.get(n, [math.nan] * len(texts)) for n in self.names},
        }
        merged, _ = gather_batch(payload)
        self.last = task_summary(
            merged["task"],
            merged["text"],
            merged["tokens"] if ids is not None else None,
            {n: merged[f"r:{n}"] for n in self.names},
            self.weights,
        )
        self._values = {}
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for key, value in self.last.items():
                log_metric(key, value)
