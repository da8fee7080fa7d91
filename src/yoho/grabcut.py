"""OpenCV's GrabCut from a labelled mask, with its colour models started one of two ways.

OpenCV starts GrabCut's two Gaussian mixtures (5 components each, RGB) with k-means++ on the
pixels labelled lesion and normal. k-means++ draws its first centres at random among those
pixels, so when a few pixels change label the draws land elsewhere, the mixtures start
elsewhere, and the graph cut can settle on a different mask. After the guided walk, one
8-bit step of the network's map moved a mask by up to 2.5 % this way, where thresholding the
same walk moved nothing (docs/yoho_evaluation.md, the steady-GrabCut round).

`start="split"` starts each mixture from a deterministic split instead: its pixels sorted along
their first principal colour axis and cut into five equal parts, each part's mean and
covariance one component. A few changed pixels move those statistics a little, so the start,
and with it the mask, moves a little. GrabCut's own iterations then refit the mixtures as
usual (OpenCV's `GC_EVAL` mode resumes from given models). OpenCV offers no other start, so
the split is written here. No profile uses it: a 1- vs 2-thread difference in training moves
the walk itself, the split steadied little against that, and it cost Dice on `every4`.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["COMPONENTS", "GRABCUT_STARTS", "grabcut_mask", "split_colour_model"]

COMPONENTS = 5  # OpenCV's fixed number of mixture components per model
GRABCUT_STARTS = ("kmeans", "split")
# OpenCV's model layout: 5 weights, 5 × 3 means, 5 × 9 covariances in one row of 65 doubles.
_MODEL_SIZE = COMPONENTS * 13
# Added to each component's covariance diagonal so that a part of one flat colour (saturated
# pixels, a black border) stays invertible; OpenCV adds the same 0.01 to a singular one.
_RIDGE = 0.01


def split_colour_model(samples: np.ndarray) -> np.ndarray | None:
    """GrabCut's (1, 65) colour model started from `samples` ((N, 3), BGR, 0-255).

    The pixels sorted along their first principal axis are cut into `COMPONENTS` equal parts
    (ties kept in input order); each part gives one component: its share of the pixels, its
    mean and its covariance (+ 0.01 on the diagonal). None when there are fewer than four
    pixels per component: too few for a covariance, and the caller falls back to k-means.
    """
    x = np.asarray(samples, np.float64).reshape(-1, 3)
    if len(x) < 4 * COMPONENTS:
        return None
    centred = x - x.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axis = vectors[:, -1]
    axis = axis * np.sign(axis[np.argmax(np.abs(axis))])  # one sign: the parts keep their order
    order = np.argsort(centred @ axis, kind="stable")
    weights, means, covariances = [], [], []
    for part in np.array_split(order, COMPONENTS):
        pixels = x[part]
        weights.append(len(part) / len(x))
        means.append(pixels.mean(axis=0))
        covariances.append(np.cov(pixels.T) + _RIDGE * np.eye(3))
    model = np.concatenate([weights, np.ravel(means), np.ravel(covariances)])
    return model.reshape(1, _MODEL_SIZE)


def grabcut_mask(
    bgr: np.ndarray, init: np.ndarray, iterations: int, start: str = "kmeans"
) -> np.ndarray:
    """Run GrabCut in place on `init` (OpenCV's GC_* labels) and return the lesion mask.

    bgr: (H, W, 3) uint8 in OpenCV's channel order. start: "kmeans" (OpenCV's k-means++, its
    random draws seeded with 0 so that one input gives one mask) or "split"
    (`split_colour_model`). `init` must hold both lesion and normal labels.
    """
    if start not in GRABCUT_STARTS:
        raise ValueError(f"grabcut start must be one of {GRABCUT_STARTS}, got {start!r}")
    bgd = fgd = None
    if start == "split":
        lesion = (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
        fgd, bgd = split_colour_model(bgr[lesion]), split_colour_model(bgr[~lesion])
    if bgd is None or fgd is None:
        cv2.setRNGSeed(0)  # k-means++ draws from OpenCV's global RNG
        bgd, fgd = np.zeros((1, _MODEL_SIZE)), np.zeros((1, _MODEL_SIZE))
        cv2.grabCut(bgr, init, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    else:
        cv2.grabCut(bgr, init, None, bgd, fgd, iterations, cv2.GC_EVAL)
    return (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
