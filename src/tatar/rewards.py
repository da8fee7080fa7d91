"""GRPO rewards for TATAR: plain functions with the signature TRL's GRPOTrainer calls.

Every reward callable takes ``completions`` plus the dataset columns as keyword lists aligned
with the completions (TRL 1.16 calls ``reward_fn(prompts=..., completions=...,
completion_ids=..., **columns)``; each prompt's generations are contiguous) and returns one float
per completion. A completion is a one-message list ``[{"role": "assistant", "content": str}]``,
a message dict, or a plain string.

Dataset columns the rewards read (all others, and TRL's own keyword arguments, are ignored):

``task``
    ``"iqa"`` or ``"iaa"`` per completion (the released names ``iqa_score``/``iaa_score`` too).
``solution``
    The ground truth already mapped to 0-100 with the dataset's declared scale.
``group`` (required by the Thurstone reward when the batch has IAA completions)
    An id of the prompt/image, so that the completions of one image form one group for the
    Thurstone reward. ``prompt_id`` is accepted in its place. Without either the reward is an
    error: guessing groups from runs of equal ``(task, solution)`` merges adjacent prompts that
    happen to share a score. The training stage always passes ``group``.

Scores are parsed with the strict parser of `tatar.parsing` (exactly one number in the first
``<answer>``); a completion that does not parse earns 0 from every term.

Terms (formulas on the 0-100 scale unless noted; ``d = |clip(pred) - clip(gt)|``):

format
    1 if the answer parses, else 0.
Gaussian score reward
    ``sigma0 = threshold / sqrt(-2 ln target)`` (threshold 8.75, target 0.5: sigma0 = 7.43),
    ``sigma = sigma0 * (1 + alpha * d / 100)``, ``r = exp(-d^2 / (2 sigma^2))``; IQA alpha 0.8
    and a word gate (an IQA completion over 65 words gets 0). Optional IAA anchor: alpha 2.0,
    ``r = min(1, 1.5 r)``, optional word floor (an IAA completion under 125 words gets 0).
Thurstone completion-level ranking (IAA), scores and ground truth on 0-1
    For completion k of image i and every other IAA group j:
    ``p_gt = sigmoid((g_i - g_j) / tau)``,
    ``p_pred = sigmoid((q_k - mu_j) / sqrt(var_i + var_j + eps))``,
    ``w = exp(-|g_i - g_j| / m)``,
    ``r = clip(1 - sum_j w BCE(p_gt, p_pred) / sum_j w / (-ln eps), 0, 1)`` with tau 0.08,
    m 0.12, eps 1e-6; BCE clamps p_pred to [eps, 1-eps]; mu and var are the mean and population
    variance of the parsed scores of each group. It needs at least two IAA groups with a parsed
    completion; otherwise every completion gets 0. IQA completions get 0.
Pairwise rank (the released ``rank`` reward, IAA)
    The same weighted BCE between every pair of parsed IAA completions of the batch, with
    ``p_pred = sigmoid((q_a - q_b) / tau)`` and eps 1e-4.
Think-length cost
    ``-cost[task] * min(1, think_words / norm_words)``; off unless a cost is set.

Presets (`reward_functions`): ``paper`` = format + IQA Gaussian (65-word gate) + IAA Thurstone;
``released`` = format + Gaussian for both tasks (IAA alpha 2.0, x1.5 capped at 1, 125-word floor)
+ the released pairwise rank reward (eps 1e-4). Weights are all 1; TRL sums the weighted terms.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from tatar.parsing import scan_completions
from tatar.prompts import check_task

__all__ = [
    "PRESETS",
    "RewardSettings",
    "clear_caches",
    "completion_text",
    "format_reward",
    "gaussian_rewards",
    "make_gaussian_reward",
    "make_pairwise_rank_reward",
    "make_think_cost",
    "make_thurstone_reward",
    "pairwise_rank_rewards",
    "reward_functions",
    "score_completions",
    "sigma0_from_threshold",
    "think_cost_values",
    "thurstone_rewards",
]

RewardFn = Callable[..., list[float]]

# ----------------------------------------------------------------------------------------------
# Batch helpers


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, a message dict or a list of messages (last one)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        content = completion.get("content", "")
    elif isinstance(completion, (list, tuple)) and completion:
        return completion_text(completion[-1])
    elif completion is None or (isinstance(completion, (list, tuple)) and not completion):
        return ""
    else:
        raise ValueError(f"cannot read a completion of type {type(completion).__name__}")
    if isinstance(content, str):
        return content
    # Multimodal content parts: keep the text parts in order.
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def _texts(completions: Sequence) -> list[str]:
    # Fast path for TRL's message lists (this runs in every reward call); anything else, or any
    # odd element, goes through completion_text.
    try:
        texts = [c[-1]["content"] for c in completions]
        if set(map(type, texts)) <= {str}:
            return texts
    except (TypeError, KeyError, IndexError):
        pass
    return [completion_text(c) for c in completions]


class _Batch:
    """Parsed answers and word counts of one call's completions, computed once.

    TRL calls every reward function of a step with the same completions; the last batch is
    reused when the completion texts are the very same string objects (strings are immutable,
    so identical objects mean identical content, even if the caller reuses its lists).
    """

    def __init__(self, texts: list[str]):
        self.texts = texts
        scan = scan_completions(texts)
        self.pred = scan.answer  # nan where the answer does not parse
        self.valid = np.isfinite(self.pred)
        self.words = scan.words
        self.think_words = scan.think_words
        # Shared by every reward function of the step: nobody may write into them.
        for arr in (self.pred, self.valid, self.words, self.think_words):
            arr.flags.writeable = False

    def matches(self, texts: list[str]) -> bool:
        return len(texts) == len(self.texts) and all(map(operator.is_, texts, self.texts))

    _last: _Batch | None = None

    @classmethod
    def of(cls, completions: Sequence) -> _Batch:
        texts = _texts(completions)
        last = cls._last
        if last is not None and last.matches(texts):
            return last
        cls._last = batch = cls(texts)
        return batch


class _Column:
    """The last array built from each column, reused while the same values come again.

    Elements are compared by identity; column values (task names, scores) are immutable.
    """

    _last: dict[str, tuple[tuple, np.ndarray]] = {}

    @classmethod
    def get(
        cls, name: str, values: Sequence, build: Callable[[Sequence], np.ndarray]
    ) -> np.ndarray:
        hit = cls._last.get(name)
        if (
            hit is not None
            and len(values) == len(hit[0])
            and all(map(operator.is_, values, hit[0]))
        ):
            return hit[1]
        arr = build(values)
        arr.flags.writeable = False  # shared between reward functions
        cls._last[name] = (tuple(values), arr)
        return arr


def clear_caches() -> None:
    """Forget the last batch and columns (benchmarks call this between timed batches)."""
    _Batch._last = None
    _Column._last.clear()


_TASK_CACHE: dict[Any, str] = {}


def _build_tasks(task: Sequence) -> np.ndarray:
    out = []
    for t in task:
        norm = _TASK_CACHE.get(t)
        if norm is None:
            norm = check_task(t)
            _TASK_CACHE[t] = norm
        out.append(norm)
    return np.array(out)


def _task_array(task: Sequence | None, n: int, fn_name: str) -> np.ndarray:
    if task is None:
        raise ValueError(f"reward {fn_name!r} needs the dataset column 'task' ('iqa' or 'iaa')")
    if len(task) != n:
        raise ValueError(f"reward {fn_name!r}: column 'task' has {len(task)} rows, {n} completions")
    return _Column.get("task", task, _build_tasks)


def _build_solutions(solution: Sequence) -> np.ndarray:
    return np.array([math.nan if s is None else float(s) for s in solution], dtype=float)


def _solution_array(solution: Sequence | None, n: int, fn_name: str) -> np.ndarray:
    if solution is None:
        raise ValueError(f"reward {fn_name!r} needs the dataset column 'solution' (0-100 score)")
    if len(solution) != n:
        raise ValueError(
            f"reward {fn_name!r}: column 'solution' has {len(solution)} rows, {n} completions"
        )
    return _Column.get("solution", solution, _build_solutions)


def _group_ids(keys) -> np.ndarray:
    """Dense integer ids for group keys: integer arrays directly, any hashables via a dict."""
    arr = np.asarray(keys)
    if arr.ndim == 1 and arr.dtype.kind in "iub":
        return np.unique(arr, return_inverse=True)[1].astype(np.int64)
    index: dict[Hashable, int] = {}
    return np.fromiter((index.setdefault(k, len(index)) for k in list(keys)), dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Pure array functions


def sigma0_from_threshold(threshold: float = 8.75, target: float = 0.5) -> float:
    """The Gaussian width for which an error of `threshold` earns `target`."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must lie in (0, 1), got {target}")
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    return threshold / math.sqrt(-2.0 * math.log(target))


def gaussian_rewards(
    pred, gt, *, threshold: float = 8.75, target: float = 0.5, alpha: float = 0.8
) -> np.ndarray:
    """Adaptive Gaussian score reward on 0-100 (nan predictions get 0).

    ``d = |clip(pred, 0, 100) - clip(gt, 0, 100)|``, ``sigma = sigma0 (1 + alpha d / 100)``,
    ``r = exp(-d^2 / (2 sigma^2))`` with ``sigma0 = sigma0_from_threshold(threshold, target)``.
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    d = np.abs(np.clip(pred, 0.0, 100.0) - np.clip(gt, 0.0, 100.0))
    sigma = sigma0_from_threshold(threshold, target) * (1.0 + alpha * d / 100.0)
    with np.errstate(invalid="ignore"):
        r = np.exp(-(d * d) / (2.0 * sigma * sigma))
    return np.where(np.isfinite(r), r, 0.0)


# Entries of one (completions x groups) block of the Thurstone reward: 2**20 float64 entries is
# 8 MiB per temporary.
THURSTONE_BLOCK = 1 << 20


def _logit_bounds(eps: float) -> tuple[float, float]:
    # Clamping p = sigmoid(x) to [eps, 1 - eps] is clamping x to [logit(eps), logit(1 - eps)].
    lo = math.log(eps) - math.log1p(-eps)
    return lo, -lo


def thurstone_rewards(
    pred,
    gt,
    group,
    valid=None,
    *,
    tau: float = 0.08,
    margin: float = 0.12,
    eps: float = 1e-6,
    max_block: int = THURSTONE_BLOCK,
) -> np.ndarray:
    """Thurstone completion-level ranking reward over ALL groups given (pure numpy).

    Parameters
    ----------
    pred, gt : array_like, shape (n,)
        Parsed scores (nan when unparsed) and ground truth of each completion, on 0-100.
        Predictions are clipped to [0, 100]; both are divided by 100 (the formula's 0-1 scale).
    group : array_like, shape (n,)
        Any hashable id per completion; completions of one image share it (and its `gt`).
    valid : array_like of bool, optional
        Completions that take part (default: those whose `pred` and `gt` are finite).
    tau, margin, eps : float
        Soft-preference temperature, hard-pair weight scale and stabiliser.
    max_block : int
        Most entries of one (completions x groups) block: completions are processed in row
        blocks, so the working memory is about ``6 * 8 * max_block`` bytes plus the
        (groups x groups) pair matrices, whatever the number of completions.

    Returns
    -------
    np.ndarray, shape (n,)
        Rewards in [0, 1]; 0 for invalid completions and for everything when fewer than two
        groups have a valid completion.

    Notes
    -----
    Vectorised as a (valid completions x groups) matrix; the BCE is evaluated as
    ``softplus(x) - p_gt * x`` with x clipped to the logits of [eps, 1 - eps], which equals
    ``-(p ln q + (1-p) ln(1-q))`` with q = sigmoid(x) clamped, without forming q.
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    n = pred.shape[0]
    out = np.zeros(n)
    if n == 0:
        return out
    if gt.shape != pred.shape or len(group) != n:
        raise ValueError(
            f"pred, gt and group must have the same length (got {n}, {gt.shape[0]}, {len(group)})"
        )
    ok = np.isfinite(pred) & np.isfinite(gt)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    gid = _group_ids(group)
    n_groups = int(gid.max()) + 1
    _, first = np.unique(gid, return_index=True)
    g = gt / 100.0
    g_group = g[first]
    mismatch = (g != g_group[gid]) & np.isfinite(g)
    if mismatch.any():
        bad = np.asarray(group, dtype=object)[np.flatnonzero(mismatch)[0]]
        raise ValueError(f"group {bad!r} holds completions with different ground truths")

    q = np.clip(pred, 0.0, 100.0) / 100.0
    count = np.bincount(gid, weights=ok.astype(float), minlength=n_groups)
    active = np.flatnonzero(count > 0)
    if len(active) < 2:
        return out
    safe = np.maximum(count, 1.0)
    mu = np.bincount(gid, weights=np.where(ok, q, 0.0), minlength=n_groups) / safe
    dev = np.where(ok, q - mu[gid], 0.0)
    var = np.bincount(gid, weights=dev * dev, minlength=n_groups) / safe

    # Everything that depends only on the pair of groups is an (active x active) matrix; each
    # valid completion then takes its group's row. Completions go in row blocks so that the
    # (completions x groups) temporaries stay bounded (2,048 IAA prompts x 8 completions would
    # otherwise need about 1 GiB at once).
    k = np.flatnonzero(ok)
    row = np.searchsorted(active, gid[k])
    ga = g_group[active]
    diff = ga[:, None] - ga[None, :]
    with np.errstate(over="ignore"):  # exp overflow -> inf -> p_gt 0, as it should be
        p_gt = 1.0 / (1.0 + np.exp(-diff / tau))
    w_pair = np.exp(-np.abs(diff) / margin)
    np.fill_diagonal(w_pair, 0.0)  # a completion is not compared with its own group
    w_sum = w_pair.sum(axis=1)
    va = var[active]
    den = np.sqrt(va[:, None] + va[None, :] + eps)
    mu_a = mu[active]
    lo, hi = _logit_bounds(eps)
    rows = max(1, int(max_block) // len(active))
    loss = np.empty(len(k))
    for r0 in range(0, len(k), rows):
        r = row[r0 : r0 + rows]
        x = q[k[r0 : r0 + rows], None] - mu_a[None, :]
        x /= den[r]
        np.clip(x, lo, hi, out=x)
        # softplus; exp cannot overflow on logits clipped for any eps > 1e-300
        bce = np.exp(x)
        np.log1p(bce, out=bce)
        x *= p_gt[r]
        bce -= x
        bce *= w_pair[r]
        loss[r0 : r0 + rows] = bce.sum(axis=1) / w_sum[r]
    out[k] = np.clip(1.0 - loss / -math.log(eps), 0.0, 1.0)
    return out


def pairwise_rank_rewards(
    pred,
    gt,
    valid=None,
    *,
    tau: float = 0.08,
    margin: float = 0.12,
    eps: float = 1e-4,
) -> np.ndarray:
    """The released pairwise ``rank`` reward over every pair of valid completions (pure numpy).

    ``p_gt = sigmoid((g_a - g_b)/tau)``, ``p_pred = sigmoid((q_a - q_b)/tau)`` on 0-1 scores,
    ``w = exp(-|g_a - g_b|/m)``, ``r_a = clip(1 - sum_b w BCE / sum_b w / (-ln eps), 0, 1)``
    over all other valid completions b (same image included, as released). Fewer than two valid
    completions give zeros. Computed in float32: an n x n matrix per call.
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    out = np.zeros(pred.shape[0])
    ok = np.isfinite(pred) & np.isfinite(gt)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return out
    f32 = np.float32
    # Scores pre-divided by tau: pair differences are then the sigmoid arguments directly.
    qs = (np.clip(pred[idx], 0.0, 100.0) / 100.0 / tau).astype(f32)
    gs = (gt[idx] / 100.0 / tau).astype(f32)
    lo, hi = (f32(v) for v in _logit_bounds(eps))
    # exp(x) on clipped logits cannot overflow float32 unless eps is absurdly small.
    stable = hi > 80
    n = len(idx)
    loss = np.empty(n)
    # Row blocks of ~64k entries keep the temporaries in cache; in-place ops avoid allocations.
    rows = max(1, 65536 // n)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        y = gs[None, :] - gs[r0:r1, None]  # -(g_a - g_b) / tau
        w = np.abs(y)
        w *= f32(-tau / margin)
        np.exp(w, out=w)  # exp(-|g_a - g_b| / m)
        w[np.arange(r1 - r0), np.arange(r0, r1)] = 0.0  # no pair with itself
        np.exp(y, out=y)
        y += f32(1.0)
        np.reciprocal(y, out=y)  # p_gt = sigmoid((g_a - g_b) / tau)
        x = qs[r0:r1, None] - qs[None, :]
        np.clip(x, lo, hi, out=x)
        sp = np.logaddexp(f32(0.0), x) if stable else np.log1p(np.exp(x))  # softplus
        y *= x
        sp -= y  # BCE(p_gt, sigmoid(x)) = softplus(x) - p_gt x
        sp *= w
        loss[r0:r1] = sp.sum(axis=1, dtype=np.float64) / w.sum(axis=1, dtype=np.float64)
    out[idx] = np.clip(1.0 - loss / -math.log(eps), 0.0, 1.0)
    return out


def think_cost_values(think_words, is_iqa, *, iqa_cost: float, iaa_cost: float, norm_words: int):
    """``-cost[task] * min(1, think_words / norm_words)`` per completion."""
    if norm_words <= 0:
        raise ValueError(f"norm_words must be positive, got {norm_words}")
    cost = np.where(np.asarray(is_iqa, dtype=bool), iqa_cost, iaa_cost)
    frac = np.minimum(1.0, np.asarray(think_words, dtype=float) / norm_words)
    return -cost * frac


# ----------------------------------------------------------------------------------------------
# Reward callables (TRL signature)


def _named(fn: RewardFn, name: str, doc: str) -> RewardFn:
    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def format_reward(completions, **kwargs) -> list[float]:
    """1.0 when the first ``<answer>`` holds exactly one number, else 0.0."""
    return _Batch.of(completions).valid.astype(float).tolist()


def make_gaussian_reward(
    *,
    threshold: float = 8.75,
    target: float = 0.5,
    iqa_alpha: float = 0.8,
    iqa_max_words: int | None = 65,
    iaa_alpha: float | None = None,
    iaa_scale: float = 1.5,
    iaa_min_words: int | None = None,
    name: str = "score_gaussian",
) -> RewardFn:
    """The Gaussian score reward; IAA completions get 0 unless `iaa_alpha` is set (the anchor)."""
    sigma0_from_threshold(threshold, target)  # validate now, not at the first batch

    def reward(completions, task=None, solution=None, **kwargs) -> list[float]:
        batch = _Batch.of(completions)
        n = len(batch.texts)
        is_iqa = _task_array(task, n, name) == "iqa"
        gt = _solution_array(solution, n, name)
        out = np.where(
            is_iqa,
            gaussian_rewards(batch.pred, gt, threshold=threshold, target=target, alpha=iqa_alpha),
            0.0,
        )
        if iqa_max_words is not None:
            out[is_iqa & (batch.words > iqa_max_words)] = 0.0
        if iaa_alpha is not None:
            is_iaa = ~is_iqa
            r = gaussian_rewards(
                batch.pred, gt, threshold=threshold, target=target, alpha=iaa_alpha
            )
            r = np.minimum(1.0, iaa_scale * r)
            if iaa_min_words is not None:
                r[batch.words < iaa_min_words] = 0.0
            out = np.where(is_iaa, r, out)
        return out.tolist()

    doc = (
        f"Gaussian score reward (threshold {threshold}, target {target}; IQA alpha {iqa_alpha}, "
        f"IQA word gate {iqa_max_words}; IAA anchor "
        + (
            f"alpha {iaa_alpha} x{iaa_scale} capped at 1, word floor {iaa_min_words})"
            if iaa_alpha is not None
            else "off)"
        )
    )
    return _named(reward, name, doc)


def make_thurstone_reward(
    *,
    tau: float = 0.08,
    margin: float = 0.12,
    eps: float = 1e-6,
    iaa_min_words: int | None = None,
    name: str = "iaa_thurstone",
) -> RewardFn:
    """Thurstone completion-level ranking over every IAA group in the call (IQA gets 0).

    With `iaa_min_words`, an IAA completion under that many words earns 0; its score still
    counts in its group's mean and variance.
    """

    def reward(
        completions, task=None, solution=None, group=None, prompt_id=None, **kwargs
    ) -> list[float]:
        batch = _Batch.of(completions)
        n = len(batch.texts)
        tasks = _task_array(task, n, name)
        gt = _solution_array(solution, n, name)
        is_iaa = tasks == "iaa"
        out = np.zeros(n)
        idx = np.flatnonzero(is_iaa)
        if not idx.size:
            return out.tolist()
        column, ids = ("group", group) if group is not None else ("prompt_id", prompt_id)
        if ids is None:
            raise ValueError(
                f"reward {name!r} needs the column 'group' (or 'prompt_id'): one id per "
                "prompt/image, shared by its completions; without it completions of different "
                "images with the same task and score would be merged into one group"
            )
        if len(ids) != n:
            raise ValueError(
                f"reward {name!r}: column {column!r} has {len(ids)} rows, {n} completions"
            )
        gid = _group_ids(list(ids))
        out[idx] = thurstone_rewards(
            batch.pred[idx], gt[idx], gid[idx], tau=tau, margin=margin, eps=eps
        )
        if iaa_min_words is not None:
            out[is_iaa & (batch.words < iaa_min_words)] = 0.0
        return out.tolist()

    doc = f"Thurstone IAA ranking reward (tau {tau}, m {margin}, eps {eps}, word floor {iaa_min_words})"
    return _named(reward, name, doc)


def make_pairwise_rank_reward(
    *, tau: float = 0.08, margin: float = 0.12, eps: float = 1e-4, name: str = "iaa_pairwise_rank"
) -> RewardFn:
    """The released pairwise rank reward over every parsed IAA completion of the call."""

    def reward(completions, task=None, solution=None, **kwargs) -> list[float]:
        batch = _Batch.of(completions)
        n = len(batch.texts)
        is_iaa = _task_array(task, n, name) == "iaa"
        gt = _solution_array(solution, n, name)
        out = np.zeros(n)
        idx = np.flatnonzero(is_iaa)
        out[idx] = pairwise_rank_rewards(batch.pred[idx], gt[idx], tau=tau, margin=margin, eps=eps)
        return out.tolist()

    return _named(reward, name, f"Released pairwise rank reward (tau {tau}, m {margin}, eps {eps})")


def make_think_cost(
    *, iqa_cost: float = 0.0, iaa_cost: float = 0.0, norm_words: int = 100, name: str = "think_cost"
) -> RewardFn:
    """A per-task cost on the words inside ``<think>`` (values in [-cost, 0])."""

    def reward(completions, task=None, **kwargs) -> list[float]:
        batch = _Batch.of(completions)
        is_iqa = _task_array(task, len(batch.texts), name) == "iqa"
        values = think_cost_values(
            batch.think_words, is_iqa, iqa_cost=iqa_cost, iaa_cost=iaa_cost, norm_words=norm_words
        )
        return values.tolist()

    return _named(
        reward, name, f"Think-length cost (IQA {iqa_cost}, IAA {iaa_cost} per {norm_words} words)"
    )


# ----------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class RewardSettings:
    """Every reward knob; a weight of 0 (or a None gate) switches a term off.

    Build one with `RewardSettings.preset("paper", **overrides)` or from a config mapping with
    `RewardSettings.from_dict`.
    """

    format_weight: float = 1.0
    gaussian_weight: float = 1.0
    threshold: float = 8.75
    target: float = 0.5
    iqa_alpha: float = 0.8
    iqa_max_words: int | None = 65
    iaa_anchor: bool = False
    iaa_alpha: float = 2.0
    iaa_scale: float = 1.5
    iaa_min_words: int | None = None
    thurstone_weight: float = 1.0
    tau: float = 0.08
    margin: float = 0.12
    thurstone_eps: float = 1e-6
    pairwise_rank_weight: float = 0.0
    rank_eps: float = 1e-4
    think_cost_weight: float = 1.0
    think_cost_iqa: float = 0.0
    think_cost_iaa: float = 0.0
    think_cost_norm_words: int = 100

    @classmethod
    def preset(cls, name: str = "paper", **overrides) -> RewardSettings:
        if name not in PRESETS:
            raise ValueError(
                f"unknown reward preset {name!r}: expected one of {', '.join(PRESETS)}"
            )
        return replace(PRESETS[name], **overrides)

    @classmethod
    def from_dict(cls, data: dict) -> RewardSettings:
        """Settings from a config mapping: optional ``preset`` plus any field as an override."""
        data = dict(data or {})
        preset = data.pop("preset", "paper")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown reward setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls.preset(preset, **data)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, RewardSettings] = {
    # The method as the paper states it.
    "paper": RewardSettings(),
    # What the released code computes, its bugs aside.
    "released": RewardSettings(
        iaa_anchor=True,
        iaa_min_words=125,
        thurstone_weight=0.0,
        pairwise_rank_weight=1.0,
    ),
}


def reward_functions(
    settings: RewardSettings | str = "paper", **overrides
) -> tuple[list[RewardFn], list[float]]:
    """The reward callables (distinct ``__name__`` each) and their weights for a preset.

    >>> funcs, weights = reward_functions("paper")
    >>> [f.__name__ for f in funcs]
    ['format_reward', 'score_gaussian', 'iaa_thurstone']
    """
    s = (
        RewardSettings.preset(settings, **overrides)
        if isinstance(settings, str)
        else replace(settings, **overrides)
    )
    funcs: list[RewardFn] = []
    weights: list[float] = []
    if s.format_weight:
        funcs.append(format_reward)
        weights.append(s.format_weight)
    if s.gaussian_weight:
        funcs.append(
            make_gaussian_reward(
                threshold=s.threshold,
                target=s.target,
                iqa_alpha=s.iqa_alpha,
                iqa_max_words=s.iqa_max_words,
                iaa_alpha=s.iaa_alpha if s.iaa_anchor else None,
                iaa_scale=s.iaa_scale,
                iaa_min_words=s.iaa_min_words,
            )
        )
        weights.append(s.gaussian_weight)
    if s.thurstone_weight:
        funcs.append(
            make_thurstone_reward(
                tau=s.tau, margin=s.margin, eps=s.thurstone_eps, iaa_min_words=s.iaa_min_words
            )
        )
        weights.append(s.thurstone_weight)
    if s.pairwise_rank_weight:
        funcs.append(make_pairwise_rank_reward(tau=s.tau, margin=s.margin, eps=s.rank_eps))
        weights.append(s.pairwise_rank_weight)
    if s.think_cost_weight and (s.think_cost_iqa or s.think_cost_iaa):
        funcs.append(
            make_think_cost(
                iqa_cost=s.think_cost_iqa,
                iaa_cost=s.think_cost_iaa,
                norm_words=s.think_cost_norm_words,
            )
        )
        weights.append(s.think_cost_weight)
    return funcs, weights


def score_completions(
    completions: Sequence,
    settings: RewardSettings | str = "paper",
    **columns,
) -> dict[str, np.ndarray]:
    """Every term of a preset on one batch, plus their weighted ``total`` (for reports and tests)."""
    funcs, weights = reward_functions(settings)
    terms = {
        f.__name__: np.asarray(f(completions=completions, **columns), dtype=float) for f in funcs
    }
    total = np.zeros(len(completions))
    for values, weight in zip(terms.values(), weights, strict=True):
        total += weight * values
    terms["total"] = total
    return terms
