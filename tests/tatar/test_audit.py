"""Reporting fixes from the scoring-core audit: honest task means, a monotone logistic fit whose
fallback is named, a Thurstone reward that needs its groups and has a memory bound, and the
spec's pixel limits as the training default."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from tatar import metrics
from tatar.datasets import load_dataset
from tatar.evaluate import evaluate, task_mean
from tatar.generation import GenerationSettings
from tatar.rewards import thurstone_rewards


class FixedBackend:
    """Answers from a per-image-size lookup (one completion)."""

    name = "fixed"

    def __init__(self, answers):
        self.answers = answers

    def generate(self, images, tasks, settings, *, key=""):
        return [[self.answers[im.size]] for im in images]


def _dataset(folder, n, answer_of, name):
    folder.mkdir()
    rng = np.random.default_rng(len(name))
    rows, answers = [], {}
    for i in range(n):
        size = (20 + i, 20 + len(name))  # image sizes differ between datasets
        Image.new("RGB", size, (i * 10, 40, 40)).save(folder / f"{i}.png")
        gt = float(rng.uniform(0, 100))
        rows.append(f"{i}.png,{gt}")
        answers[size] = answer_of(gt)
    (folder / f"{name}.csv").write_text("image,mos\n" + "\n".join(rows) + "\n")
    return load_dataset(folder / f"{name}.csv", task="iqa", scale="0:100"), answers


def test_an_all_failed_dataset_makes_the_task_mean_undefined_and_says_so(tmp_path):
    good, a1 = _dataset(tmp_path / "good", 8, lambda g: f"<answer>{g:.2f}</answer>", "good")
    bad, a2 = _dataset(tmp_path / "bad", 8, lambda g: "<answer>no idea</answer>", "bad")
    evaluate(
        FixedBackend({**a1, **a2}),
        [good, bad],
        tmp_path / "out",
        GenerationSettings(batch_size=4),
        model="m",
        n_resamples=0,
        progress=False,
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    iqa = summary["per_task"]["iqa"]
    assert iqa["mean_srcc"] is None and iqa["mean_plcc"] is None  # NaN is written as null
    assert iqa["n_datasets"] == 2 and iqa["datasets_with_srcc"] == 1
    assert iqa["mean_srcc_of_defined"] == pytest.approx(1.0)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "n/a (1 of 2 undefined; mean of the rest 1.000)" in text
    assert "| **IQA mean** |" in text


def test_task_mean_is_the_plain_mean_when_every_dataset_has_a_value():
    assert task_mean([0.5, 0.7]) == {
        "mean": pytest.approx(0.6),
        "mean_of_defined": pytest.approx(0.6),
        "defined": 2,
        "datasets": 2,
    }
    t = task_mean([0.5, None, math.nan])
    assert math.isnan(t["mean"]) and t["defined"] == 1 and t["mean_of_defined"] == 0.5


def test_an_anti_correlated_prediction_keeps_a_negative_logistic_plcc():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, 200)
    pred = 100 - gt + rng.normal(0, 5, gt.size)
    value, fit = metrics.plcc_logistic_fit(pred, gt)
    # An unconstrained fit flips the curve and reports about +0.98 here.
    assert value < -0.9
    assert fit == metrics.RAW_FALLBACK
    params = metrics.fit_logistic4(pred, gt)
    assert params is not None and params[0] >= params[1]  # b1 >= b2: increasing


def test_a_monotone_fit_still_linearises_an_increasing_curve():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 100, 300)
    y = 100 / (1 + np.exp(-(x - 50) / 8)) + rng.normal(0, 1, x.size)
    value, fit = metrics.plcc_logistic_fit(x, y)
    assert fit == metrics.LOGISTIC and value > 0.99 > metrics.plcc(x, y)


def test_a_failed_fit_is_reported_by_name_in_json_and_tables(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(metrics.optimize, "curve_fit", fail)
    rng = np.random.default_rng(2)
    gt = rng.uniform(0, 100, 50)
    block = metrics.summarize(gt + rng.normal(0, 10, 50), gt, n_resamples=0)["scored"]
    assert block["plcc_logistic_fit"] == "raw_fallback"
    assert block["plcc_logistic"] == pytest.approx(block["plcc"])

    ds, answers = _dataset(tmp_path / "d", 8, lambda g: f"<answer>{g:.2f}</answer>", "d")
    evaluate(
        FixedBackend(answers),
        [ds],
        tmp_path / "out",
        GenerationSettings(),
        model="m",
        n_resamples=0,
        progress=False,
    )
    m = json.loads((tmp_path / "out" / "d" / "metrics.json").read_text())
    assert m["scored"]["plcc_logistic_fit"] == "raw_fallback"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["datasets"][0]["plcc_logistic_fit"] == "raw_fallback"
    assert "1.000 (raw: fit failed)" in (tmp_path / "out" / "summary.md").read_text()


def _iaa_batch(rng, n_groups, per_group=8):
    gt = np.repeat(rng.uniform(0, 100, n_groups), per_group)
    pred = gt + rng.normal(0, 10, gt.size)
    pred[rng.random(gt.size) < 0.05] = np.nan
    return pred, gt, np.repeat(np.arange(n_groups), per_group)


def test_thurstone_blocks_give_the_same_rewards():
    pred, gt, group = _iaa_batch(np.random.default_rng(4), 37, per_group=5)
    whole = thurstone_rewards(pred, gt, group)
    for block in (1, 7, 100, 37 * 3):
        np.testing.assert_allclose(thurstone_rewards(pred, gt, group, max_block=block), whole)


def test_thurstone_memory_is_bounded_by_the_block():
    # 1,024 IAA prompts x 8 completions: unchunked, one (8,192 x 1,024) float64 temporary alone
    # is 64 MiB, and the formula needs several.
    pred, gt, group = _iaa_batch(np.random.default_rng(5), 1024)
    tracemalloc.start()
    try:
        thurstone_rewards(pred, gt, group, max_block=1 << 18)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # pair matrices (5 x 1,024^2 x 8 B = 40 MiB) + blocks (a few x 2 MiB)
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_a_config_without_processor_gets_the_spec_pixel_limits(tmp_path):
    from tatar.train.config import SPEC_PIXELS, load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {path: tiny}\ndata:\n  train:\n    - toy: {train_iqa: 4}\n")
    assert load_config(cfg).processor == {"min_pixels": 3136, "max_pixels": 1572864}
    assert SPEC_PIXELS == {"min_pixels": 3136, "max_pixels": 1572864}
    cfg.write_text(
        "model: {path: tiny}\nprocessor: {max_pixels: 12544}\n"
        "data:\n  train:\n    - toy: {train_iqa: 4}\n"
    )
    assert load_config(cfg).processor == {"min_pixels": 3136, "max_pixels": 12544}
