"""Metrics on hand-computed cases: HD95 on simple shapes, the empty-mask conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import hausdorff_distance

from yoho.metrics import all_metrics, dice, hd95, iou, precision, recall


def canvas():
    return np.zeros((40, 40), bool)


def test_hd95_between_two_pixels_is_their_distance():
    a, b = canvas(), canvas()
    a[10, 10] = True
    b[13, 14] = True  # a 3-4-5 triangle
    assert hd95(a, b) == pytest.approx(5.0)
    assert hd95(a, b) == pytest.approx(hausdorff_distance(a, b))


def test_hd95_ignores_a_rare_outlier_that_hausdorff_sees():
    gt = canvas()
    gt[5:35, 5:35] = True  # 116 surface pixels
    pred = gt.copy()
    pred[0, 39] = True  # one stray pixel far away: 1 surface distance in 117 + 116
    assert hd95(pred, gt) == 0.0
    assert hausdorff_distance(pred, gt) > 6  # the plain Hausdorff distance is dominated by it


def test_hd95_of_a_square_shifted_diagonally():
    a, b = canvas(), canvas()
    a[10:20, 10:20] = True
    b[13:23, 14:24] = True  # shifted by (3, 4): the farthest surface points are 5 px apart
    value = hd95(a, b)
    assert 3.0 <= value <= 5.0 + 1e-9
    assert value == pytest.approx(hd95(b, a))  # symmetric


def test_overlap_metrics_by_hand():
    pred, gt = canvas(), canvas()
    pred[0:10, 0:10] = True  # 100 px
    gt[5:15, 0:10] = True  # 100 px, overlap 50
    assert dice(pred, gt) == pytest.approx(0.5)
    assert iou(pred, gt) == pytest.approx(50 / 150)
    assert precision(pred, gt) == pytest.approx(0.5) and recall(pred, gt) == pytest.approx(0.5)


def test_empty_mask_conventions():
    empty, some = canvas(), canvas()
    some[3, 3] = True
    both = all_metrics(empty, empty)
    assert both == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0, "hd95": 0.0}
    missed = all_metrics(empty, some)  # nothing predicted, a lesion is there
    assert missed["dice"] == 0.0 and missed["precision"] == 0.0 and missed["recall"] == 0.0
    assert math.isinf(missed["hd95"])
    spurious = all_metrics(some, empty)  # something predicted, nothing there
    assert spurious["recall"] == 0.0 and spurious["precision"] == 0.0
    assert math.isinf(spurious["hd95"])
