"""Interactive baselines that get exactly the physician's input YOHO gets.

- `roi_alone`: the ROI itself is the prediction (the lesion side of it with `complement`).
- `grabcut`: OpenCV's GrabCut initialised with "background" outside the ROI, "probable
  foreground" inside it, "foreground" in the lesion circles and "background" in the normal
  circles (with `complement` the ROI covers normal tissue, so the roles of inside and outside
  are swapped: outside = foreground, inside = probable background).
- `random_walker`: scikit-image's random walker seeded with the lesion circles (label 1)
  against the normal circles and everything outside the ROI (label 2); with `complement`,
  outside the ROI is lesion and inside it is unlabelled.
- `trainable`: the ilastik approach, the classical form of YOHO's idea: a random forest
  (scikit-learn) on scikit-image's `multiscale_basic_features` (intensity, edges, texture per
  RGB channel at sigmas 1–8), trained on the pixels of the lesion circles against the normal
  circles and the outside of the ROI, applied inside the ROI.

Each takes the RGB image (H, W, 3) uint8 and an `Annotation` and returns an (H, W) bool lesion
mask at the original resolution. They are deterministic (GrabCut's GMM initialisation uses
OpenCV's global RNG, which is reseeded on every call).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import cv2
import numpy as np
from skimage.segmentation import random_walker as _skimage_random_walker

from yoho.annotation import Annotation, validate_annotation
from yoho.grabcut import grabcut_mask
from yoho.postprocess import circles_mask, resize_mask, scaled_size

__all__ = [
    "BASELINES",
    "roi_alone",
    "grabcut",
    "random_walker",
    "random_walker_probability",
    "trainable",
    "run_baseline",
]


def _seeds(image: np.ndarray, ann: Annotation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(roi, lesion seeds, normal seeds) as bool masks; seeds include the side outside the ROI."""
    roi = validate_annotation(ann, image.shape)
    ann = ann.merged()  # correction rounds are seeds like the first circles
    lesion = circles_mask(ann.lesion_circles, roi.shape)
    normal = circles_mask(ann.normal_circles, roi.shape)
    if ann.complement:
        lesion |= ~roi
    else:
        normal |= ~roi
    normal &= ~lesion  # a click wins over the "outside the ROI" rule where they meet
    return roi, lesion, normal


def roi_alone(image: np.ndarray, ann: Annotation) -> np.ndarray:
    """The ROI as the lesion (its outside with `complement`)."""
    roi = validate_annotation(ann, image.shape)
    return ~roi if ann.complement else roi


def grabcut(image: np.ndarray, ann: Annotation, iterations: int = 5) -> np.ndarray:
    """GrabCut from the ROI and the circles (see the module docstring for the seeding)."""
    roi, lesion, normal = _seeds(image, ann)
    if ann.complement:
        init = np.where(roi, cv2.GC_PR_BGD, cv2.GC_FGD).astype(np.uint8)
    else:
        init = np.where(roi, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    init[normal & roi] = cv2.GC_BGD
    init[lesion] = cv2.GC_FGD
    if not (init == cv2.GC_BGD).any() and not (init == cv2.GC_PR_BGD).any():
        return np.ones(roi.shape, bool)  # nothing marks the background: all is lesion
    return grabcut_mask(np.ascontiguousarray(image[..., ::-1]), init, iterations)  # OpenCV's start


def _walker_problem(data: np.ndarray, lesion: np.ndarray, normal: np.ndarray):
    """The random walker's problem: (box, labels of the box or None, the box's part of `data`,
    the float image of `_walker_data`). Without labels the answer needs no solver: the lesion
    seeds alone (`box` None), or the whole box as lesion (`box` given: its unlabelled pixels
    see no normal seed)."""
    labels = np.zeros(lesion.shape, np.int32)
    labels[normal] = 2
    labels[lesion] = 1
    unlabelled = labels == 0
    if not unlabelled.any():
        return None, None, None
    # Only unlabelled pixels are solved for and they only see their 4-neighbours, so cropping
    # to their bounding box plus one pixel gives the same answer for far less work.
    ys, xs = np.nonzero(unlabelled)
    y0, y1 = max(0, ys.min() - 1), min(lesion.shape[0], ys.max() + 2)
    x0, x1 = max(0, xs.min() - 1), min(lesion.shape[1], xs.max() + 2)
    box = (slice(y0, y1), slice(x0, x1))
    crop = labels[box]
    if not (crop == 1).any():
        return None, None, None
    if not (crop == 2).any():
        return box, None, None
    return box, crop, data[box]


def _solve_walker(data, crop, beta, tol, full_prob):
    with warnings.catch_warnings():
        # The solver's probabilities can overshoot [0, 1] by its tolerance; that warning says
        # nothing about the result (the mask is the arg-max, the probability is clipped).
        warnings.filterwarnings("ignore", message="The probability range is outside")
        return _skimage_random_walker(
            data, crop, beta=beta, mode="cg_j", tol=tol, channel_axis=-1,
            return_full_prob=full_prob,
        )  # fmt: skip


def random_walker(
    image: np.ndarray, ann: Annotation, beta: float = 130.0, tol: float = 1e-3
) -> np.ndarray:
    """Random walker seeded by the circles (lesion) and normal circles + outside the ROI."""
    _, lesion, normal = _seeds(image, ann)
    box, crop, data = _walker_problem(_walker_data(image), lesion, normal)
    out = lesion.copy()
    if box is not None:
        out[box] = True if crop is None else _solve_walker(data, crop, beta, tol, False) == 1
    return out


def random_walker_probability(
    image: np.ndarray,
    ann: Annotation,
    beta: float = 130.0,
    tol: float = 1e-3,
    max_pixels: int | None = None,
    guide: np.ndarray | None = None,
    guide_weight: float = 0.0,
    extra_normal: np.ndarray | None = None,
    extra_lesion: np.ndarray | None = None,
) -> np.ndarray:
    """The random walker's lesion probability (H, W) float32 in [0, 1]: 1 on the lesion seeds,
    0 on the normal ones, elsewhere the probability that a walk from the pixel reaches a
    lesion seed first (`random_walker`'s mask is where that wins).

    max_pixels: larger images are solved on a copy scaled down to this many pixels (the
    solver's time grows faster than the pixel count: 5–10 s on a 1920 × 1072 frame here); the
    probability is scaled back and the full-size seeds are set again. None: full size.
    guide, guide_weight: an (H, W) map in [0, 1] (YOHO's network map) given to the walker as
    one more channel of the image, scaled by `guide_weight` (the RGB channels are in [0, 1]).
    The walk is then hindered where the image's colour *or* the map changes: the map's edge
    between what the network takes for lesion and for normal tissue stops the walk where the
    image has no edge of its own. None or a weight of 0: the image alone.
    extra_normal: (H, W) bool, more normal seeds than the clicks give (YOHO's network's
    confident normal tissue, `yoho.postprocess.network_normal_seeds`); a lesion seed wins.
    extra_lesion: (H, W) bool, more lesion seeds than the clicks give (YOHO's network's
    confident lesion joined to a lesion circle, `yoho.postprocess.network_lesion_seeds`);
    every normal seed wins over them.
    """
    _, lesion, normal = _seeds(image, ann)
    if guide is not None and guide.shape != lesion.shape:
        raise ValueError(f"the walker's guide is {guide.shape}, the image {lesion.shape}")
    for kind, extra in (("normal", extra_normal), ("lesion", extra_lesion)):
        if extra is not None and extra.shape != lesion.shape:
            raise ValueError(f"extra {kind} seeds are {extra.shape}, the image {lesion.shape}")
    if extra_normal is not None:
        normal = normal | (extra_normal.astype(bool) & ~lesion)
    if extra_lesion is not None:
        lesion = lesion | (extra_lesion.astype(bool) & ~normal)
    if guide_weight == 0:
        guide = None
    h, w = lesion.shape
    size = scaled_size((h, w), max_pixels)
    if size is None:
        return _walker_probability(_walker_data(image, guide, guide_weight), lesion, normal,
                                   beta, tol)  # fmt: skip
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if guide is not None:
        guide = cv2.resize(guide.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    lesion_s = resize_mask(lesion, size)
    normal_s = resize_mask(normal, size) & ~lesion_s
    prob = _walker_probability(_walker_data(small, guide, guide_weight), lesion_s, normal_s,
                               beta, tol)  # fmt: skip
    out = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    out[normal] = 0.0
    out[lesion] = 1.0
    return np.clip(out, 0, 1).astype(np.float32)


def _walker_data(
    image: np.ndarray, guide: np.ndarray | None = None, guide_weight: float = 0.0
) -> np.ndarray:
    """The walker's image: RGB in [0, 1], with `guide_weight` × `guide` as a fourth channel."""
    data = image.astype(np.float64) / 255.0
    if guide is None:
        return data
    extra = guide_weight * np.clip(guide, 0.0, 1.0).astype(np.float64)
    return np.concatenate([data, extra[..., None]], axis=-1)


def _walker_probability(data, lesion, normal, beta, tol) -> np.ndarray:
    box, crop, data = _walker_problem(data, lesion, normal)
    out = lesion.astype(np.float32)
    if box is not None:
        out[box] = (
            1.0 if crop is None else np.clip(_solve_walker(data, crop, beta, tol, True)[0], 0, 1)
        )
    return out


def trainable(
    image: np.ndarray,
    ann: Annotation,
    trees: int = 100,
    samples_per_class: int = 20_000,
    max_pixels: int = 600_000,
    seed: int = 0,
) -> np.ndarray:
    """Pixel classifier (random forest on multiscale features) trained on the clicks.

    Parameters
    ----------
    image, ann : the RGB image and its annotation.
    trees : trees of the forest (ilastik's default is 100).
    samples_per_class : at most this many training pixels per class, drawn at random
        (seeded) from the labelled pixels; the classes are balanced this way.
    max_pixels : images larger than this are classified at a reduced size (features of a
        1920×1080 frame would take ~2 GiB) and the result is resized back.
    seed : seeds the pixel sampling and the forest.
    """
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    roi, lesion, normal = _seeds(image, ann)
    h, w = roi.shape
    size = scaled_size((h, w), max_pixels)  # the feature stack of a large frame stays small
    if size is not None:
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        roi_s, lesion_s, normal_s = (resize_mask(m, size) for m in (roi, lesion, normal))
    else:
        small, roi_s, lesion_s, normal_s = image, roi, lesion, normal
    if not lesion_s.any() or not normal_s.any():
        return lesion | (~roi if ann.complement else np.zeros_like(roi))
    features = multiscale_basic_features(
        small.astype(np.float32) / 255.0, channel_axis=-1, sigma_min=1, sigma_max=8
    )
    rng = np.random.default_rng(seed)
    picks = []
    for seeds in (normal_s, lesion_s):
        idx = np.flatnonzero(seeds)
        if idx.size > samples_per_class:
            idx = rng.choice(idx, samples_per_class, replace=False)
        picks.append(idx)
    flat = features.reshape(-1, features.shape[-1])
    x = np.concatenate([flat[picks[0]], flat[picks[1]]])
    y = np.concatenate([np.zeros(picks[0].size, np.int8), np.ones(picks[1].size, np.int8)])
    forest = RandomForestClassifier(
        n_estimators=trees,
        n_jobs=-1,
        random_state=seed,
        class_weight="balanced",
        min_samples_leaf=2,
    )
    forest.fit(x, y)
    unknown = ~(lesion_s | normal_s)
    prob = np.zeros(roi_s.shape, np.float32)
    prob[lesion_s] = 1.0
    prob[unknown] = forest.predict_proba(flat[unknown.ravel()])[:, 1]
    if size is not None:
        prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    out = prob > 0.5
    out[lesion] = True
    out[normal] = False
    return out


BASELINES: dict[str, Callable[[np.ndarray, Annotation], np.ndarray]] = {
    "roi": roi_alone,
    "grabcut": grabcut,
    "random_walker": random_walker,
    "trainable": trainable,
}


def run_baseline(name: str, image: np.ndarray, ann: Annotation) -> np.ndarray:
    """Run the baseline called `name` (one of `BASELINES`)."""
    try:
        method = BASELINES[name]
    except KeyError:
        raise ValueError(
            f"unknown baseline {name!r}; known baselines: {', '.join(BASELINES)}"
        ) from None
    return method(image, ann)
