"""Turning YOHO's lesion probability into a mask with the physician's input in mind.

The network is trained for about a minute; its raw mask has speckles, holes and blobs far
from any click. What the physician gave is also known at test time, so it is used:

- `force_circles`: lesion circles are lesion, normal circles are not (they were clicked);
- `fill_holes`: a lesion is one solid region (scipy's binary_fill_holes);
- `keep_seeded`: keep only the connected components that touch a lesion seed (a lesion
  circle, or with `complement` the area outside the ROI, which is lesion there);

The threshold and the ROI clip stay the profile's (`Profile.threshold`, `Profile.roi_clip`);
`Profile.post` says which of the steps above follow them (all off by default, as before).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy import ndimage

from yoho.annotation import Annotation, Circle

__all__ = ["PostOptions", "refine_mask", "circles_mask"]


@dataclass(frozen=True)
class PostOptions:
    """Which post-processing steps run (all off = the plain threshold + optional ROI clip)."""

    force_circles: bool = False
    fill_holes: bool = False
    keep_seeded: bool = False
    grabcut_refine: bool = False
    sure_high: float = 0.8
    sure_low: float = 0.2
    grabcut_iterations: int = 5

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self.force_circles or self.fill_holes or self.keep_seeded or self.grabcut_refine


def circles_mask(circles: list[Circle], shape: tuple[int, int]) -> np.ndarray:
    """Filled discs of `circles` as an (H, W) bool mask."""
    canvas = np.zeros(shape, np.uint8)
    for c in circles:
        cv2.circle(canvas, (round(c.x), round(c.y)), max(1, round(c.r)), 1, -1)
    return canvas.astype(bool)


def _grabcut_refine(image, prob, mask, roi, lesion_seeds, normal_seeds, ann, opt) -> np.ndarray:
    init = np.where(mask, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    init[prob > opt.sure_high] = cv2.GC_FGD
    init[prob < opt.sure_low] = cv2.GC_BGD
    if not ann.complement:
        init[~roi] = cv2.GC_BGD
    init[normal_seeds] = cv2.GC_BGD
    init[lesion_seeds] = cv2.GC_FGD
    has_bg = ((init == cv2.GC_BGD) | (init == cv2.GC_PR_BGD)).any()
    has_fg = ((init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)).any()
    if not (has_bg and has_fg):  # GrabCut needs both colour models
        return mask
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation draws from OpenCV's global RNG
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[..., ::-1])
    cv2.grabCut(bgr, init, None, bgd, fgd, opt.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
    return (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)


def refine_mask(
    lesion_prob: np.ndarray,
    ann: Annotation,
    options: PostOptions,
    threshold: float = 0.5,
    roi_clip: bool = True,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """Lesion mask (H, W) bool from the lesion probability and the annotation.

    `image` (the original RGB image) is needed only for `grabcut_refine`.
    """
    if lesion_prob.shape != ann.shape:
        raise ValueError(
            f"probability map is {lesion_prob.shape[1]}x{lesion_prob.shape[0]} but the "
            f"annotation is for a {ann.width}x{ann.height} image"
        )
    mask = lesion_prob > threshold
    roi = ann.roi_mask()
    if roi_clip:
        mask = (mask | ~roi) if ann.complement else (mask & roi)
    lesion_seeds = circles_mask(ann.lesion_circles, ann.shape)
    if ann.complement:
        lesion_seeds |= ~roi
    normal_seeds = circles_mask(ann.normal_circles, ann.shape) & ~lesion_seeds
    if options.grabcut_refine:
        if image is None or image.shape[:2] != ann.shape:
            raise ValueError("grabcut_refine needs the original image of the annotation")
        mask = _grabcut_refine(image, lesion_prob, mask, roi, lesion_seeds, normal_seeds, ann,
                               options)  # fmt: skip
    if options.force_circles:
        mask |= lesion_seeds
        mask &= ~normal_seeds
    if options.keep_seeded:
        labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        if count:
            keep = np.unique(labels[lesion_seeds & mask])
            mask = np.isin(labels, keep[keep > 0])
    if options.fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    return mask
