"""The interactive baselines (ROI alone, GrabCut, random walker) on synthetic images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.segmentation import random_walker as skimage_random_walker

from yoho.annotation import Annotation, Circle, Roi
from yoho.baselines import BASELINES, grabcut, random_walker, roi_alone, run_baseline
from yoho.metrics import dice
from yoho.physician import simulate_annotation
from yoho.postprocess import circles_mask
from yoho.synthetic import synthetic_endoscopy


@pytest.fixture(scope="module")
def case():
    image, gt = synthetic_endoscopy(size=128, seed=5)
    return image, gt, simulate_annotation(image, gt)


def test_roi_alone_is_the_roi(case):
    image, gt, ann = case
    mask = roi_alone(image, ann)
    assert np.array_equal(mask, ann.roi_mask())
    assert mask[gt].all()  # the oracle ROI contains the lesion: recall 1


@pytest.mark.parametrize("name", ["grabcut", "random_walker"])
def test_interactive_baselines_beat_the_roi(case, name):
    image, gt, ann = case
    mask = run_baseline(name, image, ann)
    assert mask.shape == gt.shape and mask.dtype == bool
    assert dice(mask, gt) > dice(roi_alone(image, ann), gt) + 0.05
    assert dice(mask, gt) > 0.85
    # Seeds are honoured: lesion circles are lesion, outside the ROI is not.
    assert mask[circles_mask(ann.lesion_circles, gt.shape)].all()
    assert not mask[~ann.roi_mask()].any()
    # Deterministic.
    assert np.array_equal(mask, run_baseline(name, image, ann))


def test_random_walker_crop_equals_the_full_image(case):
    image, gt, ann = case
    labels = np.zeros(gt.shape, np.int32)
    labels[~ann.roi_mask() | circles_mask(ann.normal_circles, gt.shape)] = 2
    labels[circles_mask(ann.lesion_circles, gt.shape)] = 1
    full = skimage_random_walker(
        image.astype(np.float64) / 255, labels, beta=130, mode="cg_j", tol=1e-3, channel_axis=-1
    )
    agree = (random_walker(image, ann) == (full == 1)).mean()
    assert agree > 0.999  # equal up to the iterative solver's tolerance


def test_complement_roles_are_swapped():
    # A lesion filling most of the frame: the ROI covers the normal tissue.
    image, gt = synthetic_endoscopy(size=96, seed=2, lesion_scale=0.95)
    ann = simulate_annotation(image, gt)
    assert ann.complement
    assert np.array_equal(roi_alone(image, ann), ~ann.roi_mask())
    for name in ("grabcut", "random_walker"):
        mask = run_baseline(name, image, ann)
        assert mask[~ann.roi_mask()].all()  # outside the complement ROI is lesion
        assert dice(mask, gt) > 0.8


def test_unknown_baseline_and_bad_annotation(case):
    image, _, ann = case
    with pytest.raises(ValueError, match="unknown baseline 'snake'"):
        run_baseline("snake", image, ann)
    wrong = dataclasses.replace(ann, width=ann.width + 1)
    with pytest.raises(ValueError, match="annotation is for a"):
        grabcut(image, wrong)


def test_grabcut_with_only_lesion_seeds_on_a_flat_image():
    image = np.full((40, 40, 3), 120, np.uint8)
    image[10:30, 10:30] = (200, 60, 60)
    square = np.array([[5, 5], [34, 5], [34, 34], [5, 34]], float)
    ann = Annotation(40, 40, Roi(polygons=[square]), lesion_circles=[Circle(20, 20, 4)])
    gt = np.zeros((40, 40), bool)
    gt[10:30, 10:30] = True
    assert dice(grabcut(image, ann), gt) > 0.9
    assert dice(random_walker(image, ann), gt) > 0.9
    assert set(BASELINES) == {"roi", "grabcut", "random_walker"}
