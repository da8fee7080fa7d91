"""Simulated physician: an annotation made from a ground-truth mask (the *oracle protocol*).

It reads the ground truth, so results obtained with it are labelled as oracle results; it
exists to benchmark YOHO and its baselines headlessly with the same, reproducible input.

Default protocol (other modules and the evaluation depend on it; change only with care):

- equivalent diameter d = 2·sqrt(area/π); margin m = max(8 px, 0.15·d);
- field of view (FOV) = pixels whose mean RGB is > 15;
- `complement` when the lesion covers more than half of the FOV;
- ROI, normal case: the mask dilated by a disc of radius m; each outer contour simplified with
  approxPolyDP (epsilon 2 % of its perimeter) and filled;
- ROI, complement case: drawn over the normal tissue with the same margin, i.e. the whole
  image minus the lesion *eroded* by m (outer contours simplified the same way, stored as
  holes). It therefore contains all normal tissue, as the normal-case ROI contains all lesion;
- k = 3 lesion circles at successive distance-transform maxima, radius min(dist, 0.25·d) and at
  least 4 px, each suppressing a disc of twice its radius; centres are taken on the side of
  the rasterised ROI that validation requires;
- 3 normal circles at random (seeded) points outside the mask dilated by 2m and inside the FOV,
  radius = median lesion radius, the whole disc in that region, not overlapping one another.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from yoho.annotation import Annotation, Circle, Roi, default_radius_range, validate_annotation

__all__ = ["OracleOptions", "simulate_annotation", "field_of_view", "disc_kernel"]

ANNOTATOR = "simulated physician (oracle protocol: derived from the ground truth)"
MAX_MARGIN_FACTOR = 5.0  # the bound `yoho evaluate --margin` and `yoho sweep` keep too


@dataclass(frozen=True)
class OracleOptions:
    """Parameters of the simulated physician; all are recorded in the annotation file."""

    margin_factor: float = 0.15
    min_margin_px: float = 8.0
    lesion_circles: int = 3
    normal_circles: int = 3
    seed: int = 0
    lesion_radius_factor: float = 0.25
    min_radius_px: int = 4
    epsilon_fraction: float = 0.02
    complement_fraction: float = 0.5
    fov_threshold: int = 15


def field_of_view(image: np.ndarray, threshold: int = 15) -> np.ndarray:
    """Pixels of the endoscope's field of view: mean RGB above `threshold` (the frame is black)."""
    return image.astype(np.float32).mean(axis=2) > threshold


def disc_kernel(radius: float) -> np.ndarray:
    r = max(0, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _beyond_image(radius: float, shape: tuple[int, int]) -> bool:
    """Whether a disc of `radius` reaches from any pixel of the image to any other.

    Dilating a non-empty mask by such a disc gives the whole image, eroding a mask that is not
    the whole image gives nothing; cv2 would take minutes (or crash) to find that out with a
    kernel thousands of pixels wide.
    """
    return radius >= math.hypot(*shape) + 2


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    if mask.any() and _beyond_image(radius, mask.shape):
        return np.ones_like(mask)
    return cv2.dilate(mask, disc_kernel(radius))


def _simplified_contours(mask: np.ndarray, epsilon_fraction: float) -> list[np.ndarray]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = []
    for contour in contours:
        eps = epsilon_fraction * cv2.arcLength(contour, True)
        poly = cv2.approxPolyDP(contour, eps, True).reshape(-1, 2).astype(np.float64)
        if len(poly) < 3:  # a sliver simplified to a segment: keep its bounding box instead
            x, y, w, h = cv2.boundingRect(contour)
            poly = np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]], float)
        polygons.append(poly)
    return polygons


def _lesion_circles(
    gt: np.ndarray, allowed: np.ndarray, diameter: float, opt: OracleOptions
) -> list[Circle]:
    # Pad so that the image border counts as outside: a disc never leaves the image.
    padded = np.pad(gt.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    h, w = gt.shape
    yy, xx = np.mgrid[0:h, 0:w]
    score = np.where(allowed, dist, 0.0)
    circles: list[Circle] = []
    for _ in range(opt.lesion_circles):
        idx = int(np.argmax(score))
        y, x = divmod(idx, w)
        if score[y, x] <= 0:
            break
        r = max(opt.min_radius_px, int(min(dist[y, x], opt.lesion_radius_factor * diameter)))
        # Keep the disc inside the image (the padded border sits one pixel outside it).
        r = min(r, x, y, w - 1 - x, h - 1 - y)
        if r < 1:
            score[y, x] = 0
            continue
        circles.append(Circle(float(x), float(y), float(r)))
        score[(xx - x) ** 2 + (yy - y) ** 2 <= (2 * r) ** 2] = 0
    return circles


def _normal_circles(
    region: np.ndarray, radius: float, count: int, rng: np.random.Generator
) -> list[Circle]:
    # Centres where the whole disc lies in `region` (padding: the image border is outside).
    padded = np.pad(region.astype(np.uint8), 1)
    fits = cv2.erode(padded, disc_kernel(radius))[1:-1, 1:-1].astype(bool)
    h, w = region.shape
    yy, xx = np.mgrid[0:h, 0:w]
    circles: list[Circle] = []
    for _ in range(count):
        candidates = np.flatnonzero(fits)
        if candidates.size == 0:
            break
        y, x = divmod(int(rng.choice(candidates)), w)
        circles.append(Circle(float(x), float(y), float(radius)))
        fits[(xx - x) ** 2 + (yy - y) ** 2 <= (2 * radius) ** 2] = False
    return circles


MAX_SIDE = 2048  # pixels; larger images are annotated on a downscaled copy


def simulate_annotation(
    image: np.ndarray,
    gt: np.ndarray,
    options: OracleOptions | None = None,
    image_name: str | None = None,
    max_side: int | None = None,
) -> Annotation:
    """Make the oracle-protocol annotation of `image` from its ground-truth mask `gt`.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB array.
    gt : (H, W) boolean lesion mask.
    options : protocol parameters (defaults: the protocol of the module docstring).
    image_name : stored in the annotation's `image` field.
    max_side : an image whose longer side exceeds this (default `MAX_SIDE`) is annotated on a
        copy downscaled to it and the annotation is scaled back (recorded in `protocol` as
        `working_scale`): the morphology costs grow with the square of the margin, and an
        8000×8000 image would otherwise take many minutes.

    Returns
    -------
    A validated `Annotation` whose `protocol` field records every parameter and derived value.
    """
    opt = options or OracleOptions()
    gt = np.asarray(gt).astype(bool)
    if image.shape[:2] != gt.shape:
        raise ValueError(
            f"ground-truth mask is {gt.shape[1]}x{gt.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    area = int(gt.sum())
    if area == 0:
        raise ValueError("the ground-truth mask is empty: nothing to annotate")
    if area == gt.size:
        raise ValueError(
            "the ground-truth mask covers the whole image: there is no normal tissue to "
            "annotate (an all-white mask; is it inverted, or is it the wrong file?)"
        )
    limit = MAX_SIDE if max_side is None else int(max_side)
    if max(gt.shape) > limit:
        return _simulate_downscaled(image, gt, opt, image_name, limit)
    if opt.lesion_circles < 1:
        raise ValueError("the simulated physician needs at least one lesion circle")
    if not 0 <= opt.margin_factor <= MAX_MARGIN_FACTOR:  # NaN too: max(8, NaN) would be 8
        raise ValueError(
            f"the margin factor must lie in [0, {MAX_MARGIN_FACTOR:g}], got {opt.margin_factor}"
        )
    h, w = gt.shape
    rng = np.random.default_rng(opt.seed)
    diameter = 2.0 * np.sqrt(area / np.pi)
    margin = max(opt.min_margin_px, opt.margin_factor * diameter)
    fov = field_of_view(image, opt.fov_threshold)
    fov_area = max(int(fov.sum()), 1)
    fraction = float((gt & fov).sum()) / fov_area
    complement = fraction > opt.complement_fraction

    margin_used = margin
    if not complement:
        grown = _dilate(gt.astype(np.uint8), margin)
        roi = Roi(polygons=_simplified_contours(grown, opt.epsilon_fraction))
    else:
        # ROI over the normal tissue: the image minus the lesion shrunk by the margin. A thin
        # lesion may vanish under erosion; the margin is then halved until something is left.
        while True:
            if _beyond_image(margin_used, gt.shape):
                core = np.zeros_like(gt, np.uint8)
            else:
                core = cv2.erode(gt.astype(np.uint8), disc_kernel(margin_used))
            if core.any() or margin_used < 1:
                break
            margin_used /= 2
        if not core.any():
            core = gt.astype(np.uint8)
        frame = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
        roi = Roi(polygons=[frame], holes=_simplified_contours(core, opt.epsilon_fraction))
    roi_mask = roi.rasterize(h, w)

    side_ok = ~roi_mask if complement else roi_mask
    lesion = _lesion_circles(gt, side_ok, diameter, opt)
    if not lesion:
        raise ValueError("no lesion circle fits on the required side of the ROI")
    radius = float(np.median([c.r for c in lesion]))
    normal: list[Circle] = []
    exclusion = 2 * margin
    # When no disc fits (a lesion filling the frame, where the complement ROI learns from these
    # very circles), the radius is halved down to the minimum, then the exclusion zone is
    # relaxed to m and to 0. Both values actually used are recorded.
    for exclusion in (2 * margin, margin, 0.0):
        grown = _dilate(gt.astype(np.uint8), exclusion).astype(bool)
        normal_region = fov & ~grown
        if complement:
            normal_region &= roi_mask
        r = radius
        while opt.normal_circles > 0:
            normal = _normal_circles(normal_region, r, opt.normal_circles, rng)
            if normal or r <= opt.min_radius_px:
                break
            r = max(opt.min_radius_px, r / 2)
        if normal or opt.normal_circles == 0:
            break

    r_min, r_max = default_radius_range(h, w)
    ann = Annotation(
        width=w,
        height=h,
        roi=roi,
        lesion_circles=lesion,
        normal_circles=normal,
        complement=complement,
        r_min=r_min,
        r_max=r_max,
        image=image_name,
        annotator=ANNOTATOR,
        protocol={
            "name": "oracle",
            **asdict(opt),
            "equivalent_diameter_px": round(float(diameter), 2),
            "margin_px": round(float(margin_used), 2),
            "lesion_fraction_of_fov": round(fraction, 4),
            "normal_exclusion_px": round(float(exclusion), 2),
        },
    )
    validate_annotation(ann, image.shape, source="simulated annotation")
    return ann


def _simulate_downscaled(
    image: np.ndarray, gt: np.ndarray, opt: OracleOptions, image_name: str | None, limit: int
) -> Annotation:
    h, w = gt.shape
    scale = limit / max(h, w)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    coverage = cv2.resize(gt.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small_gt = coverage >= 0.5
    if not small_gt.any():  # a lesion smaller than a working pixel: keep what touches it
        small_gt = coverage > 0
    small = simulate_annotation(small_image, small_gt, opt, image_name, max_side=limit)
    r_min, r_max = default_radius_range(h, w)
    ann = dataclasses.replace(small.scaled(w, h), r_min=r_min, r_max=r_max)
    ann.protocol = {
        **(small.protocol or {}),
        "working_scale": round(size[0] / w, 6),
        "working_size": list(size),
    }
    validate_annotation(ann, image.shape, source="simulated annotation (scaled back)")
    return ann
