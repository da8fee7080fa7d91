"""The patch bank: every disc of tissue the renderer may paste, cut once from the image.

For each clicked circle (centre c, radius `rad`) a ladder of radii runs from r_max down to a
lower bound in steps of r_min/4 (4 px at the authors' 480² images, where r_min = 16):

- radii above `rad`: one *magnified* copy of the clicked disc (bicubic zoom r/rad, capped at
  `max_zoom`, which is the authors' bound r_max/r_min = 4);
- radii up to `rad`: ceil(rad/r)² *native-resolution sub-discs* whose centres are drawn in the
  disc of radius rad − r around c, so each lies inside the clicked disc; at r = rad this is
  the clicked disc itself.

The class being learnt (lesion; normal tissue with `complement`) goes down to r_min, the other
class to 2·r_min − 1, as the authors did for their background circles. Every patch keeps its
class at every scale (the authors' bug B3 dropped the label of the smallest lesion patches).
Shapes (disc or triangle) and rotation are chosen when pasting, not stored here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from yoho.annotation import Annotation, Circle

__all__ = ["SourceDisc", "PatchBank", "radius_ladder", "build_patch_bank", "cut_disc"]

MAX_RUNGS = 1000


@dataclass(frozen=True)
class SourceDisc:
    """Square pixels of side 2·ceil(radius)+1 centred on a disc of tissue."""

    pixels: np.ndarray
    radius: float
    target: bool


@dataclass
class PatchBank:
    """Patches per circle and per ladder scale: `entries[circle][scale] -> [SourceDisc]`.

    `outside[scale] -> [SourceDisc]`: optional patches of the other class cut from outside the
    ROI (see `build_outside_patches`).
    """

    circles: list[Circle]
    targets: list[bool]
    entries: list[list[list[SourceDisc]]] = field(default_factory=list)
    outside: list[list[SourceDisc]] = field(default_factory=list)

    def __len__(self) -> int:
        clicked = sum(len(per_scale) for circle in self.entries for per_scale in circle)
        return clicked + sum(len(per_scale) for per_scale in self.outside)

    @property
    def max_radius(self) -> float:
        return max(d.radius for c in self.entries for s in c for d in s)


def radius_ladder(
    rad: float, r_min: float, r_max: float, lower: float, step: float, max_zoom: float
) -> list[float]:
    """Radii for one clicked circle: `rad` first, then r_max, r_max − step, … down to `lower`.

    Radii above `rad`·`max_zoom` are dropped (they would be blurry over-magnifications); a
    ladder radius within 0.5 px of `rad` is the clicked disc itself and is not repeated.
    """
    values = {"rad": rad, "r_min": r_min, "r_max": r_max, "lower": lower, "step": step}
    bad = [f"{k}={v}" for k, v in values.items() if not math.isfinite(float(v))]
    if bad:
        raise ValueError(f"radius ladder: values must be finite, got {', '.join(bad)}")
    if step <= 0:
        raise ValueError(f"ladder step must be positive, got {step}")
    # A bound on the rungs, so that no radius range (r_max of 1e9 with a 4 px step) can make
    # this loop run for hours; annotations are validated far below it.
    rungs = (float(r_max) - float(lower)) / float(step)
    if rungs > MAX_RUNGS:
        raise ValueError(
            f"radius ladder from r_max={r_max:g} down to {lower:g} in steps of {step:g} has "
            f"{rungs:.0f} rungs (at most {MAX_RUNGS}); r_max is far too large for r_min"
        )
    ladder = [float(rad)]
    r = float(r_max)
    while r >= lower - 1e-6:
        if abs(r - rad) >= 0.5 and r <= rad * max_zoom + 1e-6:
            ladder.append(r)
        r -= step
    return ladder


def cut_disc(image: np.ndarray, cx: float, cy: float, radius: float, zoom: float) -> np.ndarray:
    """Pixels of side 2·ceil(radius)+1 around (cx, cy), magnified by `zoom` about that centre.

    Borders are reflected so that a disc near the image edge is still complete.
    """
    half = int(math.ceil(radius))
    side = 2 * half + 1
    matrix = np.array([[zoom, 0, half - zoom * cx], [0, zoom, half - zoom * cy]], np.float64)
    interp = cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(
        image, matrix, (side, side), flags=interp, borderMode=cv2.BORDER_REFLECT_101
    )


def build_patch_bank(
    image: np.ndarray,
    annotation: Annotation,
    rng: np.random.Generator,
    ladder_step_fraction: float = 0.25,
    max_zoom: float = 4.0,
) -> PatchBank:
    """Cut every ladder patch of every clicked circle from `image` (already at working size).

    `annotation` must describe `image` (same size); sub-disc centres are drawn with `rng`.
    """
    if image.shape[:2] != annotation.shape:
        raise ValueError("patch bank: the annotation does not match the image size")
    r_min, r_max = float(annotation.r_min), float(annotation.r_max)
    step = max(r_min * ladder_step_fraction, 0.5)
    circles = list(annotation.target_circles) + list(annotation.other_circles)
    targets = [True] * len(annotation.target_circles) + [False] * len(annotation.other_circles)
    bank = PatchBank(circles=circles, targets=targets)
    for circle, target in zip(circles, targets, strict=True):
        lower = r_min if target else 2 * r_min - 1
        rad = float(circle.r)
        per_scale: list[list[SourceDisc]] = []
        for r in radius_ladder(rad, r_min, r_max, lower, step, max_zoom):
            discs = []
            if r > rad:
                discs.append(SourceDisc(cut_disc(image, circle.x, circle.y, r, r / rad), r, target))
            else:
                count = 1 if abs(r - rad) < 0.5 else math.ceil(rad / r) ** 2
                for _ in range(count):
                    # Uniform in the disc of radius rad − r: the sub-disc stays in the click.
                    reach = max(rad - r, 0.0) * math.sqrt(rng.random())
                    angle = rng.uniform(0, 2 * math.pi)
                    sx = round(circle.x + reach * math.cos(angle))
                    sy = round(circle.y + reach * math.sin(angle))
                    if count == 1:
                        sx, sy = circle.x, circle.y
                    discs.append(SourceDisc(cut_disc(image, sx, sy, r, 1.0), r, target))
            per_scale.append(discs)
        bank.entries.append(per_scale)
    return bank


def build_outside_patches(
    image: np.ndarray,
    region: np.ndarray,
    radii: list[float],
    rng: np.random.Generator,
    per_radius: int = 4,
    max_zoom: float = 4.0,
) -> list[list[SourceDisc]]:
    """Patches of the other class cut at random from `region` (outside the ROI, in the FOV).

    Why: with the clicked circles alone, almost every pasted patch is of the learnt class, so
    "pasted (seam, magnification blur) = lesion" is a shortcut that a short schedule learns
    instead of the tissue's appearance. Pasting known-normal tissue the same way (same radii,
    half of them magnified like the ladder's upper half) takes that shortcut away. Each source
    disc lies entirely in `region`.
    """
    padded = np.pad(region.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    w = region.shape[1]
    pool: list[list[SourceDisc]] = []
    for r in radii:
        discs = []
        for _ in range(per_radius):
            zoom = 1.0
            if rng.random() < 0.5 and r / 2 > 1:
                zoom = float(rng.uniform(1.0, min(max_zoom, r / 2)))
            candidates = np.flatnonzero(dist >= r / zoom + 0.5)
            if candidates.size == 0:
                continue
            cy, cx = divmod(int(candidates[rng.integers(candidates.size)]), w)
            discs.append(SourceDisc(cut_disc(image, cx, cy, r, zoom), r, False))
        if discs:
            pool.append(discs)
    return pool
