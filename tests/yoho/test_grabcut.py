"""GrabCut's two starts: OpenCV's k-means++ and the deterministic split of `yoho.grabcut`."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from yoho.grabcut import COMPONENTS, grabcut_mask, split_colour_model
from yoho.metrics import dice
from yoho.physician import simulate_annotation
from yoho.postprocess import PostOptions, circles_mask, refine_mask
from yoho.synthetic import synthetic_endoscopy


def test_split_model_has_opencvs_layout_and_follows_the_colours():
    rng = np.random.default_rng(0)
    dark = rng.normal((20, 20, 120), 3, (200, 3))  # BGR: dark red
    bright = rng.normal((40, 200, 60), 3, (300, 3))  # bright green
    model = split_colour_model(np.concatenate([dark, bright]))
    assert model.shape == (1, 65)
    weights = model[0, :COMPONENTS]
    means = model[0, COMPONENTS : 4 * COMPONENTS].reshape(COMPONENTS, 3)
    covs = model[0, 4 * COMPONENTS :].reshape(COMPONENTS, 3, 3)
    np.testing.assert_allclose(weights, 0.2)  # five equal parts of 500 pixels
    # Sorted along the main axis: two parts of the 200 dark pixels, three of the 300 bright.
    np.testing.assert_allclose(means[:2], np.tile((20, 20, 120), (2, 1)), atol=5)
    np.testing.assert_allclose(means[2:], np.tile((40, 200, 60), (3, 1)), atol=5)
    for cov in covs:
        np.testing.assert_allclose(cov, cov.T)
        assert np.linalg.eigvalsh(cov).min() >= 0.01 - 1e-9  # the ridge keeps it invertible


def test_split_model_of_one_flat_colour_stays_invertible():
    model = split_colour_model(np.full((50, 3), 128.0))
    covs = model[0, 4 * COMPONENTS :].reshape(COMPONENTS, 3, 3)
    np.testing.assert_allclose(covs, np.tile(0.01 * np.eye(3), (COMPONENTS, 1, 1)))


def test_split_model_needs_four_pixels_per_component():
    assert split_colour_model(np.zeros((4 * COMPONENTS - 1, 3))) is None
    assert split_colour_model(np.arange(4 * COMPONENTS * 3.0).reshape(-1, 3)) is not None


def _init(seed: int):
    image, gt = synthetic_endoscopy(size=128, seed=seed)
    ann = simulate_annotation(image, gt)
    roi = ann.roi_mask()
    init = np.where(roi, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    init[circles_mask(ann.lesion_circles, ann.shape)] = cv2.GC_FGD
    init[circles_mask(ann.normal_circles, ann.shape) & roi] = cv2.GC_BGD
    return np.ascontiguousarray(image[..., ::-1]), init, gt


@pytest.mark.parametrize("seed", [1, 4])
def test_split_start_segments_like_kmeans_and_moves_little_with_the_labels(seed):
    bgr, init, gt = _init(seed)
    kmeans = grabcut_mask(bgr, init.copy(), 5, "kmeans")
    split = grabcut_mask(bgr, init.copy(), 5, "split")
    assert dice(split, gt) >= 0.95
    assert dice(split, gt) >= dice(kmeans, gt) - 0.005
    # Ten probable-lesion pixels that change side move the split's start a little, so the
    # mask moves by about those pixels, not by a jump of the colour models.
    rng = np.random.default_rng(seed)
    for _ in range(3):
        moved = init.copy()
        ys, xs = np.nonzero(moved == cv2.GC_PR_FGD)
        pick = rng.choice(len(ys), 10, replace=False)
        moved[ys[pick], xs[pick]] = cv2.GC_PR_BGD
        assert dice(split, grabcut_mask(bgr, moved, 5, "split")) >= 0.999


def test_split_start_is_repeatable_and_changes_only_the_start():
    bgr, init, _ = _init(1)
    first = grabcut_mask(bgr, init.copy(), 5, "split")
    assert np.array_equal(first, grabcut_mask(bgr, init.copy(), 5, "split"))
    labels = init.copy()
    grabcut_mask(bgr, labels, 5, "split")  # works in place, as OpenCV's GrabCut does
    assert np.array_equal(first, (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    sure = (init == cv2.GC_FGD) | (init == cv2.GC_BGD)
    assert np.array_equal(labels[sure], init[sure])  # sure labels are never re-decided


def test_split_start_falls_back_to_kmeans_with_too_few_lesion_pixels():
    bgr, _, _ = _init(1)
    init = np.full(bgr.shape[:2], cv2.GC_BGD, np.uint8)
    init[60:64, 60:64] = cv2.GC_FGD  # 16 pixels: too few for five components
    init[40:90, 40:90][init[40:90, 40:90] == cv2.GC_BGD] = cv2.GC_PR_BGD
    mask = grabcut_mask(bgr, init.copy(), 5, "split")
    assert np.array_equal(mask, grabcut_mask(bgr, init.copy(), 5, "kmeans"))
    assert mask[60:64, 60:64].all()


def test_unknown_start_is_refused_by_name():
    bgr, init, _ = _init(1)
    with pytest.raises(ValueError, match="grabcut start must be one of"):
        grabcut_mask(bgr, init, 5, "random")
    image = np.ascontiguousarray(bgr[..., ::-1])
    ann = simulate_annotation(*synthetic_endoscopy(size=128, seed=1))
    options = replace(PostOptions(grabcut_refine=True), grabcut_start="kmeans++")
    with pytest.raises(ValueError, match=r"^grabcut_start must be one of .*'kmeans\+\+'"):
        refine_mask(np.full(ann.shape, 0.5, np.float32), ann, options, image=image)


def test_refine_mask_uses_the_start():
    image, gt = synthetic_endoscopy(size=128, seed=4)
    ann = simulate_annotation(image, gt)
    prob = np.where(ann.roi_mask(), 0.6, 0.0).astype(np.float32)
    post = PostOptions(grabcut_refine=True, force_circles=True)
    split = refine_mask(prob, ann, replace(post, grabcut_start="split"), image=image)
    bgr = np.ascontiguousarray(image[..., ::-1])
    init = np.where(prob > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    init[prob < post.sure_low] = cv2.GC_BGD
    init[~ann.roi_mask()] = cv2.GC_BGD
    init[circles_mask(ann.normal_circles, ann.shape)] = cv2.GC_BGD
    init[circles_mask(ann.lesion_circles, ann.shape)] = cv2.GC_FGD
    expected = grabcut_mask(bgr, init, post.grabcut_iterations, "split")
    expected |= circles_mask(ann.lesion_circles, ann.shape)
    expected &= ~circles_mask(ann.normal_circles, ann.shape)
    assert np.array_equal(split, expected)
    assert dice(split, gt) >= 0.95


def test_leak_check_reference_keeps_opencvs_start(monkeypatch):
    import yoho.postprocess as postprocess

    image, gt = synthetic_endoscopy(size=128, seed=4)
    ann = simulate_annotation(image, gt)
    assert len(ann.lesion_circles) >= postprocess.LEAK_MIN_CIRCLES
    starts = []

    def recording(bgr, init, iterations, start="kmeans"):
        starts.append(start)
        return grabcut_mask(bgr, init, iterations, start)

    monkeypatch.setattr(postprocess, "grabcut_mask", recording)
    options = PostOptions(
        grabcut_refine=True, walker_share=1.0, leak_ratio=1.6, grabcut_start="split"
    )
    details = {}
    refine_mask(np.full(ann.shape, 0.5, np.float32), ann, options, image=image, details=details)
    # The map's GrabCut starts from the split; the reference from the clicks alone never sees
    # the map and keeps OpenCV's start, against which the 1.6 was chosen.
    assert starts == ["split", "kmeans"] and "leak_check" in details
