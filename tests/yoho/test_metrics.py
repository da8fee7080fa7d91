"""Metrics and their empty-mask conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from yoho.metrics import all_metrics, dice, hd95, iou, precision, recall


def masks():
    pred = np.zeros((10, 10), bool)
    gt = np.zeros((10, 10), bool)
    pred[2:6, 2:6] = True  # 16 px
    gt[4:8, 4:8] = True  # 16 px, 4 px overlap
    return pred, gt


def test_values():
    pred, gt = masks()
    assert dice(pred, gt) == pytest.approx(2 * 4 / 32)
    assert iou(pred, gt) == pytest.approx(4 / 28)
    assert precision(pred, gt) == pytest.approx(4 / 16)
    assert recall(pred, gt) == pytest.approx(4 / 16)
    assert dice(gt, gt) == 1.0 and hd95(gt, gt) == 0.0


def test_empty_conventions():
    empty = np.zeros((5, 5), bool)
    full = np.ones((5, 5), bool)
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
    assert precision(empty, empty) == 1.0 and recall(empty, empty) == 1.0
    assert dice(empty, full) == 0.0 and precision(empty, full) == 0.0 and recall(full, empty) == 0.0
    assert hd95(empty, empty) == 0.0 and math.isinf(hd95(empty, full))


def test_hd95_of_shifted_square():
    a = np.zeros((40, 40), bool)
    b = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True
    b[10:20, 13:23] = True  # shifted by 3 px
    assert hd95(a, b) == pytest.approx(3.0)


def test_shape_mismatch_and_all_metrics():
    pred, gt = masks()
    with pytest.raises(ValueError, match="differs"):
        dice(pred, gt[:5])
    assert set(all_metrics(pred, gt)) == {"dice", "iou", "precision", "recall", "hd95"}
