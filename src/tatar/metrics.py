"""Evaluation metrics for IQA/IAA scoring (public API).

Correlations are scipy's (`spearmanr` and `kendalltau` are tie-aware: tied predictions get
average ranks, unlike the released code's argsort ranks). PLCC is reported raw and after the
standard 4-parameter logistic mapping of the predictions (VQEG):
``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``, fitted under the constraint that it
is increasing (``b1 >= b2``); when the fit fails the raw PLCC is reported and named as such
(``plcc_logistic_fit: raw_fallback``).
MAE is on the 0-100 scale. Confidence intervals are percentile bootstrap intervals
(`scipy.stats.bootstrap`, paired resampling of images).

Parse failures: `summarize` takes predictions with NaN where an answer did not parse. The
default ("scored") convention keeps every image in N and replaces each failure by the median of
the parsed predictions of the same set - an uninformative guess that ties the failures in the
middle of the ranking - or by 50 when nothing parsed. The "valid_only" block drops failures,
as the released evaluation did. Both are always reported, with the parse-failure rate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

__all__ = [
    "bootstrap_ci",
    "fill_failures",
    "fit_logistic4",
    "krcc",
    "logistic4",
    "mae",
    "parse_failure_rate",
    "plcc",
    "plcc_logistic",
    "plcc_logistic_fit",
    "srcc",
    "summarize",
    "think_word_stats",
]

MIN_SAMPLES = 3


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=float).ravel()
    g = np.asarray(gt, dtype=float).ravel()
    if p.shape != g.shape:
        raise ValueError(f"predictions ({p.size}) and ground truth ({g.size}) differ in length")
    return p, g


def _degenerate(p: np.ndarray, g: np.ndarray) -> bool:
    # Correlations are undefined for fewer than 3 points, a constant side, or NaNs.
    return (
        p.size < MIN_SAMPLES
        or not (np.isfinite(p).all() and np.isfinite(g).all())
        or np.ptp(p) == 0
        or np.ptp(g) == 0
    )


def srcc(pred, gt) -> float:
    """Spearman rank correlation (tie-aware); NaN when undefined."""
    p, g = _pair(pred, gt)
    return math.nan if _degenerate(p, g) else float(stats.spearmanr(p, g).statistic)


def krcc(pred, gt) -> float:
    """Kendall rank correlation (tau-b, tie-aware); NaN when undefined."""
    p, g = _pair(pred, gt)
    return math.nan if _degenerate(p, g) else float(stats.kendalltau(p, g).statistic)


def plcc(pred, gt) -> float:
    """Pearson linear correlation of the raw predictions; NaN when undefined."""
    p, g = _pair(pred, gt)
    return math.nan if _degenerate(p, g) else float(stats.pearsonr(p, g).statistic)


def logistic4(x, b1, b2, b3, b4):
    """The 4-parameter logistic used to map predictions before PLCC (VQEG)."""
    z = np.clip(-(np.asarray(x, dtype=float) - b3) / abs(b4), -700, 700)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


LOGISTIC = "logistic"
RAW_FALLBACK = "raw_fallback"
UNDEFINED = "undefined"


def fit_logistic4(pred, gt) -> np.ndarray | None:
    """Least-squares logistic parameters (b1..b4), constrained monotone increasing, or None.

    The fit is constrained to ``b1 >= b2`` and ``b4 > 0`` (an increasing curve): an
    unconstrained fit can flip the curve and turn an anti-correlated prediction into a high
    PLCC. It is done on standardised data (``scipy.optimize.curve_fit``, trust-region
    reflective with bounds) and returned in the original units. None when the data are
    degenerate or the fit does not converge.
    """
    p, g = _pair(pred, gt)
    if _degenerate(p, g):
        return None
    mx, sx = float(np.mean(p)), float(np.std(p))
    mg, sg = float(np.mean(g)), float(np.std(g))
    x = (p - mx) / sx
    y = (g - mg) / sg

    def curve(x, low, delta, b3, b4):
        z = np.clip(-(x - b3) / b4, -700, 700)
        return low + delta / (1.0 + np.exp(z))

    p0 = [float(y.min()), float(np.ptp(y)), 0.0, 1.0]
    bounds = ([-np.inf, 0.0, -np.inf, 1e-6], [np.inf, np.inf, np.inf, np.inf])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = optimize.curve_fit(
                curve, x, y, p0=p0, bounds=bounds, method="trf", max_nfev=20000
            )
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        return None
    if not np.isfinite(params).all():
        return None
    low, delta, b3, b4 = (float(v) for v in params)
    b2 = mg + sg * low
    b1 = b2 + sg * delta
    return np.array([b1, b2, mx + sx * b3, sx * b4])


def plcc_logistic_fit(pred, gt) -> tuple[float, str]:
    """PLCC after the monotone 4-parameter logistic mapping, and how it was obtained.

    Returns
    -------
    value : float
        The PLCC of the mapped predictions; the raw PLCC when the fit fails or the best
        increasing curve is flat (no increasing relation to map); NaN when undefined.
    method : str
        ``"logistic"``, ``"raw_fallback"`` (value is the raw PLCC) or ``"undefined"``.
    """
    p, g = _pair(pred, gt)
    if _degenerate(p, g):
        return math.nan, UNDEFINED
    params = fit_logistic4(p, g)
    if params is None:
        return plcc(p, g), RAW_FALLBACK
    mapped = logistic4(p, *params)
    if np.ptp(mapped) <= 1e-12 * max(1.0, float(np.abs(mapped).max())):
        return plcc(p, g), RAW_FALLBACK
    return float(stats.pearsonr(mapped, g).statistic), LOGISTIC


def plcc_logistic(pred, gt) -> float:
    """PLCC after the monotone 4-parameter logistic mapping (raw PLCC when the fit fails;
    `plcc_logistic_fit` says which)."""
    return plcc_logistic_fit(pred, gt)[0]


def mae(pred, gt) -> float:
    """Mean absolute error (on whatever common scale the inputs share; 0-100 here)."""
    p, g = _pair(pred, gt)
    return math.nan if p.size == 0 else float(np.mean(np.abs(p - g)))


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x * y).sum(axis=-1) / den, np.nan)


def _srcc_vectorized(x, y, axis=-1):
    # Average ranks along the last axis: identical to spearmanr per resample, in one call.
    return _rowwise_pearson(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis))


def _plcc_vectorized(x, y, axis=-1):
    return _rowwise_pearson(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


_VECTORIZED = {"srcc": _srcc_vectorized, "plcc": _plcc_vectorized}


def bootstrap_ci(
    pred,
    gt,
    metric: str = "srcc",
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of SRCC or PLCC over images (NaN, NaN when undefined)."""
    if metric not in _VECTORIZED:
        raise ValueError(f"bootstrap_ci supports {', '.join(_VECTORIZED)}, not {metric!r}")
    p, g = _pair(pred, gt)
    if _degenerate(p, g) or n_resamples < 1:
        return math.nan, math.nan
    with warnings.catch_warnings():
        # Resamples that happen to be constant give NaN; those are dropped by nanpercentile.
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (p, g),
            _VECTORIZED[metric],
            n_resamples=n_resamples,
            paired=True,
            vectorized=True,
            method="percentile",
            confidence_level=confidence,
            batch=max(1, 2_000_000 // max(p.size, 1)),
            rng=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    if not np.isfinite(dist).any():
        return math.nan, math.nan
    alpha = (1 - confidence) / 2 * 100
    lo, hi = np.nanpercentile(dist, [alpha, 100 - alpha])
    return float(lo), float(hi)


def parse_failure_rate(pred) -> float:
    """Fraction of predictions that are NaN/None (answers that did not parse)."""
    p = np.array(
        [math.nan if v is None else v for v in np.asarray(pred, dtype=object).ravel()], dtype=float
    )
    return math.nan if p.size == 0 else float(np.mean(~np.isfinite(p)))


def fill_failures(pred, fill: float | None = None) -> tuple[np.ndarray, float]:
    """Predictions with failures replaced (default: median of the parsed ones, 50 if none)."""
    p = np.array(
        [math.nan if v is None else v for v in np.asarray(pred, dtype=object).ravel()], dtype=float
    )
    ok = np.isfinite(p)
    if fill is None:
        fill = float(np.median(p[ok])) if ok.any() else 50.0
    return np.where(ok, p, fill), float(fill)


def _block(p: np.ndarray, g: np.ndarray, n_resamples: int, seed: int) -> dict:
    out = {"n": int(p.size), "srcc": srcc(p, g), "plcc": plcc(p, g)}
    if n_resamples:
        out["srcc_ci95"] = list(bootstrap_ci(p, g, "srcc", n_resamples=n_resamples, seed=seed))
        out["plcc_ci95"] = list(bootstrap_ci(p, g, "plcc", n_resamples=n_resamples, seed=seed))
    value, method = plcc_logistic_fit(p, g)
    out.update(plcc_logistic=value, plcc_logistic_fit=method, krcc=krcc(p, g), mae=mae(p, g))
    return out


def summarize(pred, gt, *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """All metrics under both parse-failure conventions.

    Parameters
    ----------
    pred : array_like
        Predictions on 0-100, NaN (or None) where the answer did not parse.
    gt : array_like
        Ground truth on 0-100.

    Returns
    -------
    dict
        ``n``, ``n_parsed``, ``parse_failure_rate``, ``failure_fill`` (the value failures were
        scored as), ``scored`` (failures kept in N) and ``valid_only`` (failures dropped), each
        with n, srcc, plcc, plcc_logistic (and ``plcc_logistic_fit``: ``logistic``,
        ``raw_fallback`` or ``undefined``), krcc and mae; ``scored`` also has the bootstrap
        intervals srcc_ci95 and plcc_ci95 (left out when `n_resamples` is 0).
    """
    p = np.array(
        [math.nan if v is None else v for v in np.asarray(pred, dtype=object).ravel()], dtype=float
    )
    g = np.asarray(gt, dtype=float).ravel()
    if p.shape != g.shape:
        raise ValueError(f"predictions ({p.size}) and ground truth ({g.size}) differ in length")
    ok = np.isfinite(p)
    filled, fill = fill_failures(p)
    return {
        "n": int(p.size),
        "n_parsed": int(ok.sum()),
        "parse_failure_rate": parse_failure_rate(p),
        "failure_fill": fill,
        "scored": _block(filled, g, n_resamples, seed),
        "valid_only": _block(p[ok], g[ok], 0, seed),
    }


def think_word_stats(
    think_words: Sequence[int], has_think: Sequence[bool], completion_words: Sequence[int]
) -> dict:
    """Mean/median words inside ``<think>``, share of completions that think, completion words."""
    tw = np.asarray(think_words, dtype=float)
    ht = np.asarray(has_think, dtype=bool)
    cw = np.asarray(completion_words, dtype=float)
    if tw.size == 0:
        return {
            "completions": 0,
            "think_rate": math.nan,
            "mean_think_words": math.nan,
            "median_think_words": math.nan,
            "mean_think_words_when_thinking": math.nan,
            "mean_completion_words": math.nan,
        }
    return {
        "completions": int(tw.size),
        "think_rate": float(ht.mean()),
        "mean_think_words": float(tw.mean()),
        "median_think_words": float(np.median(tw)),
        "mean_think_words_when_thinking": float(tw[ht].mean()) if ht.any() else 0.0,
        "mean_completion_words": float(cw.mean()),
    }
