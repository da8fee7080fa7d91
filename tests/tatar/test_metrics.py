"""Metrics equal scipy (ties included); parse failures are counted and scored, not dropped."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tatar import metrics


@pytest.fixture
def tied():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, 120)
    pred = (
        np.round(gt / 20 + rng.normal(0, 1, gt.size)) * 10
    )  # heavy ties, like 2-decimal greedy answers
    return pred, gt


def test_correlations_equal_scipy_on_ties(tied):
    pred, gt = tied
    assert len(np.unique(pred)) < 15
    assert metrics.srcc(pred, gt) == pytest.approx(stats.spearmanr(pred, gt).statistic, abs=1e-12)
    assert metrics.krcc(pred, gt) == pytest.approx(stats.kendalltau(pred, gt).statistic, abs=1e-12)
    assert metrics.plcc(pred, gt) == pytest.approx(stats.pearsonr(pred, gt).statistic, abs=1e-12)
    assert metrics.mae(pred, gt) == pytest.approx(np.mean(np.abs(pred - gt)))
    # the released code's argsort ranks are not tie-aware and give another number
    ordinal = stats.pearsonr(np.argsort(np.argsort(pred)), np.argsort(np.argsort(gt))).statistic
    assert abs(ordinal - metrics.srcc(pred, gt)) > 1e-3


def test_logistic_plcc_fits_a_monotone_nonlinearity():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 100, 300)
    y = 100 / (1 + np.exp(-(x - 50) / 8)) + rng.normal(0, 1, x.size)
    assert metrics.plcc_logistic(x, y) > metrics.plcc(x, y) + 0.02
    assert metrics.plcc_logistic(x, y) > 0.99


def test_degenerate_inputs_give_nan():
    assert math.isnan(metrics.srcc([1, 2], [1, 2]))
    assert math.isnan(metrics.plcc([5, 5, 5, 5], [1, 2, 3, 4]))
    assert math.isnan(metrics.plcc_logistic([5, 5, 5, 5], [1, 2, 3, 4]))
    assert metrics.bootstrap_ci([5, 5, 5], [1, 2, 3]) == (pytest.approx(math.nan, nan_ok=True),) * 2
    with pytest.raises(ValueError, match="differ in length"):
        metrics.srcc([1, 2, 3], [1, 2])


def test_bootstrap_ci_equals_scipy_loop(tied):
    pred, gt = tied
    lo, hi = metrics.bootstrap_ci(pred, gt, "srcc", n_resamples=300, seed=4)
    ref = stats.bootstrap(
        (pred, gt),
        lambda a, b: stats.spearmanr(a, b).statistic,
        paired=True,
        vectorized=False,
        n_resamples=300,
        method="percentile",
        rng=np.random.default_rng(4),
    ).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert lo < metrics.srcc(pred, gt) < hi


def test_summarize_counts_parse_failures_and_reports_both_conventions(tied):
    pred, gt = tied
    pred = pred.astype(object)
    pred[:12] = None  # 10% failures
    pred[12] = np.nan
    s = metrics.summarize(pred, gt, n_resamples=50)
    assert s["n"] == 120 and s["n_parsed"] == 107
    assert s["parse_failure_rate"] == pytest.approx(13 / 120)
    parsed = np.array([p for p in pred if p is not None and np.isfinite(p)], dtype=float)
    assert s["failure_fill"] == np.median(parsed)
    filled = np.array(
        [s["failure_fill"] if p is None or not np.isfinite(p) else p for p in pred], dtype=float
    )
    assert s["scored"]["n"] == 120
    assert s["scored"]["srcc"] == pytest.approx(stats.spearmanr(filled, gt).statistic)
    assert s["valid_only"]["n"] == 107
    mask = np.array([p is not None and np.isfinite(p) for p in pred])
    assert s["valid_only"]["srcc"] == pytest.approx(stats.spearmanr(parsed, gt[mask]).statistic)
    assert "srcc_ci95" in s["scored"] and "srcc_ci95" not in s["valid_only"]
    none_parsed = metrics.summarize([None] * 4, [1, 2, 3, 4], n_resamples=0)
    assert none_parsed["parse_failure_rate"] == 1.0 and none_parsed["failure_fill"] == 50.0
    assert math.isnan(none_parsed["scored"]["srcc"])


def test_think_word_stats():
    s = metrics.think_word_stats([0, 10, 30], [False, True, True], [5, 20, 40])
    assert s["think_rate"] == pytest.approx(2 / 3)
    assert s["mean_think_words"] == pytest.approx(40 / 3)
    assert s["mean_think_words_when_thinking"] == 20
    assert s["mean_completion_words"] == pytest.approx(65 / 3)
