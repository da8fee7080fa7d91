"""Turning YOHO's lesion probability into a mask with the physician's input in mind.

The network is trained for about a minute; its raw mask has speckles, holes and blobs far
from any click. What the physician gave is also known at test time, so it is used:

- `force_circles`: lesion circles are lesion, normal circles are not (they were clicked);
- `fill_holes`: a lesion is one solid region (scipy's binary_fill_holes);
- `keep_seeded`: keep only the connected components that touch a lesion seed (a lesion
  circle, or with `complement` the area outside the ROI, which is lesion there);
- `calibrate` (applied to the probability before anything else, `calibrate_to_clicks`): the
  network's probability rescaled so that the clicked lesion reads 1 and tissue known to be
  normal reads 0. A network trained for a minute on far more normal than lesion pixels draws
  the right shape at the wrong level (a lesion at 0.4 is lost by a 0.5 threshold, at 0.55 it
  is kept): without this step a rounding difference decides between a good mask and an empty
  one.

The threshold and the ROI clip stay the profile's (`Profile.threshold`, `Profile.roi_clip`);
`Profile.post` says which of the steps above follow them (all off by default, as before).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np
from scipy import ndimage

from yoho.annotation import Annotation, Circle
from yoho.grabcut import GRABCUT_STARTS, grabcut_mask

__all__ = [
    "PostOptions",
    "refine_mask",
    "circles_mask",
    "calibrate_to_clicks",
    "click_evidence",
    "focus_on_clicks",
    "scaled_size",
    "resize_mask",
    "network_normal_seeds",
    "network_lesion_seeds",
    "walker_map",
    "LEAK_FLAT",
    "LEAK_MIN_CIRCLES",
    "SEED_CLEARANCE",
    "SEED_ERODE_PX",
]

# `leak_ratio`'s reference: a flat map below the 0.5 threshold and inside every sure band, so
# that GrabCut starts from "probably normal" everywhere but the clicked circles (what the
# `control_flat_0.4` evaluation variant measures).
LEAK_FLAT = 0.4
LEAK_MIN_CIRCLES = 3
# `network_seeds`: no seed within this many radii of a lesion circle. The simulated physician's
# first circle is as large as fits the lesion, up to a quarter of its diameter, so three radii
# around it cover the lesion itself; the network's "normal" there is more often a mistake than
# the walker's (development images, docs/yoho_evaluation.md).
SEED_CLEARANCE = 3.0
SEED_ERODE_PX = 3


@dataclass(frozen=True)
class PostOptions:
    """Which post-processing steps run (all off = the plain threshold + optional ROI clip).

    grabcut_max_pixels: larger images are refined by GrabCut on a copy scaled down to this many
    pixels and the result scaled back (None: full resolution). GrabCut's time grows with the
    pixels: 15 s on a 1348 × 1070 Kvasir image on 2 cores, about 5 s at 0.5 MP. Endoscopy
    frames of 720 × 576 or 768 × 576 are below the limit and unchanged.
    walker_share: share of the random walker's lesion probability (the same circles;
    `yoho.baselines.random_walker_probability`) averaged into the map before the steps below
    (0 = the network's map alone, as published). The walker follows the image's edges from the
    clicks; the network knows the lesion's colours and texture. walker_max_pixels: the walker
    of larger frames is solved on a copy scaled to this many pixels (None: full size).
    walker_guide: weight of the network's map as a fourth channel of the image the walker
    walks on (0: the image alone). The map's edge then stops the walk where the image has
    none, so the walker's map carries the network's view; with `walker_share` = 1 the result
    starts from that guided walker alone.
    leak_ratio: with the walker in the map and at least `LEAK_MIN_CIRCLES` lesion circles, the
    largest ratio between the mask's area and the area of GrabCut's mask from the clicks alone
    (a flat `LEAK_FLAT` map through the same steps); above it that mask is the result (0: no
    check). A walk that crosses a faint lesion edge spreads towards the ROI's border, to
    several times the lesion; the lesion circles' colours then bound the lesion better. With
    one or two circles GrabCut's lesion colours are too few and its mask too small for the
    check to mean anything. With a complement ROI the check always takes GrabCut's mask: the
    walk's lesion seeds are then all of the image outside the ROI, and it floods the ROI.
    network_seeds: with the guided walker (`walker_guide` > 0) and at least
    `network_seeds_min_circles` lesion circles, ROI pixels where the network's map is below
    this value become normal seeds of the walker (`network_normal_seeds`; 0: none). In a loose
    ROI the physician's few normal circles leave the walk free to flood the normal tissue
    around the lesion; the network has learnt what that tissue looks like, and its confident
    "normal" stops the walk.
    network_seeds_min_circles: the fewest lesion circles with which `network_seeds` are used
    (`LEAK_MIN_CIRCLES`, 3, by default). With one circle a network that reads the ROI as a
    plateau calls parts of the lesion sure normal; one trained to tell the ROI's tissues
    apart (`RenderOptions.shuffle_background`) can seed the walk from one circle too.
    network_lesion_seeds: with the guided walker and fewer than `LEAK_MIN_CIRCLES` lesion
    circles, ROI pixels where the network's map is at least this value, in regions joined to
    a lesion circle, become lesion seeds of the walker (`network_lesion_seeds`; 0: none). One
    small circle is a weak source: the walk's 0.5 level lies near it, well inside a tight ROI's
    lesion. The network's sure lesion around the circle makes the source as large as what the
    network is sure of. With three circles the clicks already spread over the lesion.
    grabcut_start: how GrabCut's colour models start (`yoho.grabcut.grabcut_mask`): "kmeans",
    OpenCV's k-means++ (every profile), or "split", a deterministic split of each side's pixels
    along their main colour axis. k-means++ draws at random among the pixels, so a few pixels
    that change side move its start, and the mask can jump; the split moves with them a little.
    The leak check's reference (GrabCut from the clicks alone) always starts as OpenCV does:
    it never sees the map, so nothing moves it between runs.
    """

    force_circles: bool = False
    fill_holes: bool = False
    keep_seeded: bool = False
    grabcut_refine: bool = False
    sure_high: float = 0.8
    sure_low: float = 0.2
    grabcut_iterations: int = 5
    calibrate: bool = False
    grabcut_max_pixels: int | None = 500_000
    walker_share: float = 0.0
    walker_max_pixels: int | None = 500_000
    walker_guide: float = 0.0
    leak_ratio: float = 0.0
    network_seeds: float = 0.0
    network_seeds_min_circles: int = LEAK_MIN_CIRCLES
    network_lesion_seeds: float = 0.0
    grabcut_start: str = "kmeans"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def active(self) -> bool:
        return (
            self.force_circles
            or self.fill_holes
            or self.keep_seeded
            or self.grabcut_refine
            or self.walker_share > 0
        )


def circles_mask(circles: list[Circle], shape: tuple[int, int]) -> np.ndarray:
    """Filled discs of `circles` as an (H, W) bool mask."""
    canvas = np.zeros(shape, np.uint8)
    for c in circles:
        cv2.circle(canvas, (round(c.x), round(c.y)), max(1, round(c.r)), 1, -1)
    return canvas.astype(bool)


def scaled_size(shape: tuple[int, int], max_pixels: int | None) -> tuple[int, int] | None:
    """(width, height) of a copy of an image of `shape` (H, W) scaled down to about
    `max_pixels` pixels, the aspect kept; None when it already fits (or no limit is set)."""
    h, w = shape
    if not max_pixels or h * w <= max_pixels:
        return None
    scale = float(np.sqrt(max_pixels / (h * w)))
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask resized to `size` = (width, height) by nearest neighbour (labels stay labels)."""
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


def roi_radius(roi: np.ndarray) -> float:
    """The ROI's equivalent radius: that of a disc of the same area (at least 1 px²)."""
    return float(np.sqrt(max(1, int(roi.sum())) / np.pi))


def click_evidence(
    ann: Annotation, image: np.ndarray | None = None, ring_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """(lesion, normal) pixels the physician's input vouches for, as (H, W) bool masks.

    Lesion: the lesion circles (with `complement` also a ring just outside the ROI, which is
    lesion there). Normal: the normal circles and, in the normal case, a ring just outside the
    ROI. The ring is max(3 px, `ring_fraction` × the ROI's equivalent radius) wide and, when
    `image` is given, limited to the endoscope's field of view (the black frame says nothing).
    """
    ann = ann.merged()
    roi = ann.roi_mask()
    radius = roi_radius(roi)
    width = max(3, round(ring_fraction * radius))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    ring = cv2.dilate(roi.astype(np.uint8), kernel).astype(bool) & ~roi
    if image is not None:
        from yoho.physician import field_of_view

        ring &= field_of_view(image)
    lesion = circles_mask(ann.lesion_circles, ann.shape)
    normal = circles_mask(ann.normal_circles, ann.shape)
    if ann.complement:
        lesion |= ring
    else:
        normal |= ring
    return lesion & ~normal, normal & ~lesion


def calibrate_to_clicks(
    lesion_prob: np.ndarray,
    ann: Annotation,
    image: np.ndarray | None = None,
    min_separation: float = 0.1,
) -> np.ndarray:
    """Rescale a lesion probability so that the clicked evidence reads 1 (lesion) and 0 (normal).

    q = clip((p − p_normal) / (p_lesion − p_normal), 0, 1) with p_lesion and p_normal the
    medians of p over the pixels of `click_evidence`. A 0.5 threshold on q is the midpoint
    between what the network says on known lesion and on known normal tissue. When the two
    medians are less than `min_separation` apart (the network separates nothing) or either
    side has no pixel, p is returned unchanged.
    """
    lesion, normal = click_evidence(ann, image)
    if not lesion.any() or not normal.any():
        return lesion_prob.astype(np.float32)
    p_lesion = float(np.median(lesion_prob[lesion]))
    p_normal = float(np.median(lesion_prob[normal]))
    if p_lesion - p_normal < min_separation:
        return lesion_prob.astype(np.float32)
    scaled = (lesion_prob - p_normal) / (p_lesion - p_normal)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _eroded(region: np.ndarray, erode_px: int) -> np.ndarray:
    """`region` (H, W) bool eroded by a disc of radius `erode_px` (0: unchanged)."""
    if erode_px <= 0:
        return region.astype(bool)
    size = 2 * erode_px + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.erode(region.astype(np.uint8), disc).astype(bool)


def network_normal_seeds(
    lesion_prob: np.ndarray,
    ann: Annotation,
    below: float,
    clearance: float = SEED_CLEARANCE,
    erode_px: int = SEED_ERODE_PX,
) -> np.ndarray:
    """Pixels the network is sure are normal tissue inside the ROI, as (H, W) bool.

    Parameters
    ----------
    lesion_prob : the network's lesion map (calibrated to the clicks: the normal circles and
        the ring outside the ROI read about 0).
    ann : the annotation; its merged lesion circles (corrections included) are kept clear.
    below : pixels of the ROI with `lesion_prob` below this value.
    clearance : none within this many radii of any lesion circle's centre.
    erode_px : the region is eroded by a disc of this radius first, so that a thin band of low
        values along an edge (where the map is only blurred) gives no seed.

    Empty with a complement ROI: its normal tissue is inside the ROI by definition.
    """
    ann = ann.merged()
    if ann.complement or below <= 0:
        return np.zeros(ann.shape, bool)
    low = _eroded((lesion_prob < below) & ann.roi_mask(), erode_px)
    near = circles_mask([Circle(c.x, c.y, clearance * c.r) for c in ann.lesion_circles], ann.shape)
    return low & ~near


def network_lesion_seeds(
    lesion_prob: np.ndarray,
    ann: Annotation,
    above: float,
    erode_px: int = SEED_ERODE_PX,
) -> np.ndarray:
    """Pixels the network is sure are lesion, joined to a lesion circle, as (H, W) bool.

    Parameters
    ----------
    lesion_prob : the network's lesion map (calibrated to the clicks: the lesion circles read
        about 1).
    ann : the annotation; its merged lesion circles (corrections included) anchor the regions.
    above : pixels of the ROI with `lesion_prob` at or above this value.
    erode_px : the region is eroded by a disc of this radius first, so that a thin bridge of
        high values (a blurred edge) does not join a distant region to the circle.

    Only the regions that touch a lesion circle are kept: a sure region elsewhere in the ROI
    is as likely another lesion-like structure as the clicked one. Empty with a complement ROI.
    """
    ann = ann.merged()
    if ann.complement or above <= 0 or not ann.lesion_circles:
        return np.zeros(ann.shape, bool)
    high = _eroded((lesion_prob >= above) & ann.roi_mask(), erode_px)
    circles = circles_mask(ann.lesion_circles, ann.shape)
    _, labels = cv2.connectedComponents((high | circles).astype(np.uint8), connectivity=8)
    joined = np.unique(labels[circles])
    return np.isin(labels, joined[joined > 0]) & high


def _grabcut_refine(image, prob, mask, roi, lesion_seeds, normal_seeds, ann, opt) -> np.ndarray:
    size = scaled_size(mask.shape, opt.grabcut_max_pixels)
    if size is not None:
        return _grabcut_downscaled(
            image, prob, mask, roi, lesion_seeds, normal_seeds, ann, opt, size
        )
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
    bgr = np.ascontiguousarray(image[..., ::-1])
    return grabcut_mask(bgr, init, opt.grabcut_iterations, opt.grabcut_start)


def _grabcut_downscaled(image, prob, mask, roi, lesion_seeds, normal_seeds, ann, opt, size):
    """GrabCut on a copy scaled to `size` (width, height), its result scaled back; the
    full-resolution seeds, sure pixels and ROI rule are then applied again."""
    h, w = mask.shape

    def small(m: np.ndarray) -> np.ndarray:
        return resize_mask(m, size)

    out = _grabcut_refine(
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        cv2.resize(prob.astype(np.float32), size, interpolation=cv2.INTER_LINEAR),
        small(mask), small(roi), small(lesion_seeds), small(normal_seeds), ann,
        replace(opt, grabcut_max_pixels=None),
    )  # fmt: skip
    out = cv2.resize(out.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    out[prob > opt.sure_high] = True
    out[prob < opt.sure_low] = False
    if not ann.complement:
        out &= roi
    out[normal_seeds] = False
    out[lesion_seeds] = True
    return out


def refine_mask(
    lesion_prob: np.ndarray,
    ann: Annotation,
    options: PostOptions,
    threshold: float = 0.5,
    roi_clip: bool = True,
    image: np.ndarray | None = None,
    details: dict | None = None,
) -> np.ndarray:
    """Lesion mask (H, W) bool from the lesion probability and the annotation.

    `image` (the original RGB image) is needed for `grabcut_refine` and `walker_share`. With
    `leak_ratio` the steps run a second time from a flat map (GrabCut from the clicks alone),
    and that mask is returned when the first is more than `leak_ratio` times its area, or
    always with a complement ROI; a `details` dict then receives `leak_check` = {fired,
    area_ratio, limit, complement}, to be reported, and with `network_seeds` the count of
    seed pixels, `network_seeds` = {pixels, below}.
    """
    if lesion_prob.shape != ann.shape:
        raise ValueError(
            f"probability map is {lesion_prob.shape[1]}x{lesion_prob.shape[0]} but the "
            f"annotation is for a {ann.width}x{ann.height} image"
        )
    ann = ann.merged()
    if not 0.0 <= options.walker_share <= 1.0:
        raise ValueError(f"walker_share must lie in [0, 1], got {options.walker_share}")
    if options.walker_guide < 0:
        raise ValueError(f"walker_guide must be >= 0, got {options.walker_guide}")
    if not options.leak_ratio >= 0:  # NaN too
        raise ValueError(f"leak_ratio must be >= 0, got {options.leak_ratio}")
    if not 0.0 <= options.network_seeds <= 1.0:  # NaN too
        raise ValueError(f"network_seeds must lie in [0, 1], got {options.network_seeds}")
    if not 0.0 <= options.network_lesion_seeds <= 1.0:  # NaN too
        raise ValueError(
            f"network_lesion_seeds must lie in [0, 1], got {options.network_lesion_seeds}"
        )
    if options.grabcut_start not in GRABCUT_STARTS:
        raise ValueError(
            f"grabcut_start must be one of {GRABCUT_STARTS}, got {options.grabcut_start!r}"
        )
    if options.network_seeds_min_circles < 1:
        raise ValueError(
            f"network_seeds_min_circles must be >= 1, got {options.network_seeds_min_circles}"
        )
    if options.leak_ratio > 0 and not options.grabcut_refine:
        raise ValueError("leak_ratio compares with GrabCut's mask: it needs grabcut_refine")
    mask = _refine(lesion_prob, ann, options, threshold, roi_clip, image, details)
    checked = options.walker_share > 0 and options.leak_ratio > 0
    if checked and (ann.complement or len(ann.lesion_circles) >= LEAK_MIN_CIRCLES):
        flat = np.full(ann.shape, LEAK_FLAT, np.float32)
        # OpenCV's start for this reference: it never sees the map, so nothing moves it
        # between runs, and the 1.6 was chosen against it.
        reference = replace(options, walker_share=0.0, grabcut_start="kmeans")
        clicks_only = _refine(flat, ann, reference, threshold, roi_clip, image)
        ratio = float(mask.sum()) / max(int(clicks_only.sum()), 1)
        # A complement ROI is drawn over the normal tissue: the walk's lesion seeds are all of
        # the image outside it, against a few normal circles inside, and it floods the ROI.
        fired = ann.complement or ratio > options.leak_ratio
        if details is not None:
            details["leak_check"] = {
                "fired": fired, "area_ratio": round(ratio, 4), "limit": options.leak_ratio,
                "complement": ann.complement,
            }  # fmt: skip
        if fired:
            mask = clicks_only
    return mask


def walker_map(
    lesion_prob: np.ndarray,
    ann: Annotation,
    options: PostOptions,
    image: np.ndarray,
    details: dict | None = None,
) -> np.ndarray:
    """The random walker's lesion map that `walker_share` mixes in, as (H, W) float32.

    The walk runs on `image` and, with `walker_guide` > 0, on the network's map too; with
    `network_seeds` (guided, `network_seeds_min_circles` lesion circles or more) the network's
    sure normal tissue seeds it as well, and a `details` dict receives `network_seeds` =
    {pixels, below}; with `network_lesion_seeds` (guided, fewer than `LEAK_MIN_CIRCLES` lesion
    circles) its sure lesion joined to a circle seeds it as lesion, and `details` receives
    `network_lesion_seeds` = {pixels, above}.
    """
    from yoho.baselines import random_walker_probability  # baselines import this module

    ann = ann.merged()
    guided = options.walker_guide > 0
    seeds = None
    circles = len(ann.lesion_circles)
    if guided and options.network_seeds > 0 and circles >= options.network_seeds_min_circles:
        seeds = network_normal_seeds(lesion_prob, ann, options.network_seeds)
        if details is not None:
            details["network_seeds"] = {"pixels": int(seeds.sum()), "below": options.network_seeds}
    lesion = None
    if guided and options.network_lesion_seeds > 0 and circles < LEAK_MIN_CIRCLES:
        lesion = network_lesion_seeds(lesion_prob, ann, options.network_lesion_seeds)
        if details is not None:
            details["network_lesion_seeds"] = {
                "pixels": int(lesion.sum()), "above": options.network_lesion_seeds,
            }  # fmt: skip
    return random_walker_probability(
        image, ann, max_pixels=options.walker_max_pixels,
        guide=lesion_prob if guided else None, guide_weight=options.walker_guide,
        extra_normal=seeds, extra_lesion=lesion,
    )  # fmt: skip


def _refine(lesion_prob, ann, options, threshold, roi_clip, image, details=None) -> np.ndarray:
    if options.walker_share > 0:
        if image is None or image.shape[:2] != ann.shape:
            raise ValueError("walker_share needs the original image of the annotation")
        share = options.walker_share
        walker = walker_map(lesion_prob, ann, options, image, details)
        lesion_prob = ((1.0 - share) * lesion_prob + share * walker).astype(np.float32)
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


def focus_on_clicks(
    previous: np.ndarray, new: np.ndarray, ann: Annotation, factor: float
) -> np.ndarray:
    """`new` within `factor` radii of the last correction round's circles, `previous` elsewhere.

    A corrective click says what is wrong where it was made; the rest of the mask the physician
    has seen and left alone. The focus radius is at least a tenth of the ROI's equivalent
    radius, so that a click on a thin sliver can still move the contour around it.
    """
    if previous.shape != new.shape or new.shape != ann.shape:
        raise ValueError(
            f"masks differ in shape: previous {previous.shape}, new {new.shape}, "
            f"annotation {ann.shape}"
        )
    if not ann.rounds:
        return new.astype(bool)
    last = ann.rounds[-1]
    floor = 0.1 * roi_radius(ann.roi_mask())
    zones = [
        replace(c, r=max(factor * c.r, floor)) for c in last.lesion_circles + last.normal_circles
    ]
    focus = circles_mask(zones, ann.shape)
    return np.where(focus, new, previous).astype(bool)
