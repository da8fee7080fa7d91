"""Simulated corrective clicks: the standard NoC protocol of interactive segmentation.

After each result the simulated physician clicks once, at the point of the error farthest from
the error's border (the maximum of the distance transform; RITM, SimpleClick and FocalClick
click the same way): in a missed-lesion region it places a lesion circle, in a false-lesion
region a normal circle. Whichever kind of error reaches deeper gets the click (ties: the
missed lesion). The circle's radius is the inscribed disc's there, at most the annotation's
`r_max` and never past the image border, so the circle covers error pixels only.

Clicks obey the annotation's rules: normally a lesion circle lies inside the ROI (a lesion
missed outside the ROI is the ROI's error, which a circle cannot fix); with `complement` lesion
circles lie outside the ROI and normal circles inside it. Plain arrays in, a click out;
deterministic (ties in position: the first in raster order).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from yoho.annotation import Annotation, Circle, CorrectionRound

__all__ = ["Click", "next_click", "MIN_DEPTH"]

MIN_DEPTH = 2.0  # px: thinner errors get no click (a 1-px disc would say nothing)


@dataclass(frozen=True)
class Click:
    """One simulated correction: `lesion` True for a lesion circle, False for a normal one."""

    lesion: bool
    circle: Circle
    depth: float  # distance (px) from the click to the error region's border

    def as_round(self) -> CorrectionRound:
        return CorrectionRound(
            lesion_circles=[self.circle] if self.lesion else [],
            normal_circles=[] if self.lesion else [self.circle],
            source="simulated",
        )


def _depth(region: np.ndarray) -> np.ndarray:
    """Distance of every region pixel to the nearest pixel outside it (the frame counts)."""
    padded = np.pad(region.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def next_click(prediction: np.ndarray, truth: np.ndarray, annotation: Annotation) -> Click | None:
    """The next corrective click for `prediction` against `truth`, or None when none helps.

    Parameters
    ----------
    prediction, truth : (H, W) bool lesion masks at the annotation's size.
    annotation : the annotation the prediction came from (its ROI, `complement`, `r_max`).

    Returns None when every error region is thinner than `MIN_DEPTH` pixels or lies where
    the annotation's rules allow no circle.
    """
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    if prediction.shape != annotation.shape or truth.shape != annotation.shape:
        raise ValueError(
            f"prediction {prediction.shape} and truth {truth.shape} must both be the "
            f"annotation's size {annotation.shape}"
        )
    roi = annotation.roi_mask()
    missed = truth & ~prediction
    false = prediction & ~truth
    if annotation.complement:
        missed &= ~roi
        false &= roi
    else:
        missed &= roi
    best: Click | None = None
    for lesion, region in ((True, missed), (False, false)):
        if not region.any():
            continue
        depth = _depth(region)
        index = int(np.argmax(depth))
        value = float(depth.flat[index])
        if value < MIN_DEPTH or (best is not None and value <= best.depth):
            continue
        y, x = divmod(index, region.shape[1])
        h, w = region.shape
        border = min(x + 0.5, y + 0.5, w - 0.5 - x, h - 0.5 - y)
        # The disc of radius depth − 1 stays inside the region (pixel centres vs. edges).
        radius = min(value - 1.0, float(annotation.r_max), border)
        if radius < 1.0:
            continue
        best = Click(lesion, Circle(float(x), float(y), float(np.floor(radius))), value)
    return best
