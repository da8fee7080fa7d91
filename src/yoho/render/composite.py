"""One rendered training sample: patches of the bank pasted on the image, with their labels.

Labels use {0, 1, IGNORE=255}. Segmentation: outside the ROI 0, inside the ROI ignore, pasted
patches of the class being learnt 1, pasted patches of the other class 0. Edges: 1 on the 1-px
inner rim of each pasted patch of the learnt class, 0 elsewhere in pasted patches and outside
the ROI, ignore inside the ROI. The authors' code let the ROI's ignore override the rims of
patches pasted into the ROI; here pasted patches are labelled wherever they land.

Pixels outside the endoscope's field of view (mean RGB <= 15: the black frame) are labelled as
"not lesion" (0, or 1 with `complement`), so that inverting a complement prediction never turns
the frame into lesion. Pasted patches override this.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from yoho.letterbox import IGNORE
from yoho.render.bank import PatchBank, SourceDisc

__all__ = [
    "RenderOptions",
    "Placement",
    "augment",
    "base_labels",
    "render_composite",
    "render_original",
    "shuffle_tiles",
]


@dataclass(frozen=True)
class RenderOptions:
    """How composites are made. Defaults reproduce the authors' renderer (bugs fixed).

    min_patches: patches per composite is max(min_patches, number of circles).
    triangle_probability: share of triangles (the rest are discs).
    rotate_probability: discs are rotated by U{1..360}° with this probability.
    rotate_triangles: also rotate triangles (their mask turns with them); off in the paper.
    flip: random horizontal/vertical flips of the whole composite.
    colour_jitter: strength of a global brightness/contrast/saturation jitter (0 = off).
    feather: Gaussian sigma (px) of a soft pasting edge (0 = hard paste, the paper).
    max_tries: random positions tried per patch before it is skipped (keeps placement bounded).
    ladder_step_fraction, max_zoom: see `yoho.render.bank`.
    dark_is_normal: pixels outside the field of view are labelled "not lesion".
    original_views: how many samples (the last indices) are the original image with its clicked
        discs rather than a composite. The authors had 1 in 1600; a short schedule sees that
        one rarely, so the CPU profile shows it more often (views after the first get the
        flips and colour jitter when those are switched on).
    place_in_fov: patch centres only inside the field of view (the authors: anywhere).
    outside_patches: share of pasted patches cut from outside the ROI, labelled as the other
        class (see `yoho.render.bank.build_outside_patches`); 0 in the paper.
    shuffle_background: share of composites whose background (the image under the pasted
        patches, with its labels) is cut into square tiles that are put back in a random order,
        each turned by a random multiple of 90° (`shuffle_tiles`); 0 in the paper. Why: with
        the image always in place, the network can learn *where* the labelled normal tissue
        lies (outside the ROI) instead of what it looks like, and then reads the whole
        unlabelled ROI as one plateau; shuffled, only the tissue's look tells the classes apart.
    tile_fraction: side of a background tile as a fraction of the working image's shorter side.
    """

    min_patches: int = 8
    triangle_probability: float = 0.5
    rotate_probability: float = 0.5
    rotate_triangles: bool = False
    flip: bool = False
    colour_jitter: float = 0.0
    feather: float = 0.0
    max_tries: int = 100
    ladder_step_fraction: float = 0.25
    max_zoom: float = 4.0
    dark_is_normal: bool = True
    original_views: int = 1
    place_in_fov: bool = False
    outside_patches: float = 0.0
    shuffle_background: float = 0.0
    tile_fraction: float = 0.125


@dataclass(frozen=True)
class Placement:
    """Where one patch was pasted (working-image pixels, before any flip)."""

    x: int
    y: int
    radius: float
    target: bool
    triangle: bool
    angle: float


def _shape_mask(half: int, radius: float, triangle: bool, angle_deg: float) -> np.ndarray:
    side = 2 * half + 1
    if not triangle:
        yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
        return xx * xx + yy * yy <= radius * radius
    # Equilateral triangle inscribed in the disc (the authors' minEnclosingTriangle of a circle
    # of radius r/2 is this triangle), apex up before rotation.
    angles = np.deg2rad(np.array([-90.0, 30.0, 150.0]) - angle_deg)
    pts = np.stack([half + radius * np.cos(angles), half + radius * np.sin(angles)], 1)
    mask = np.zeros((side, side), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _rotate(pixels: np.ndarray, angle_deg: float) -> np.ndarray:
    half = pixels.shape[0] // 2
    matrix = cv2.getRotationMatrix2D((half, half), angle_deg, 1.0)
    return cv2.warpAffine(
        pixels, matrix, pixels.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def _inner_rim(mask: np.ndarray) -> np.ndarray:
    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0)
    return mask & ~eroded.astype(bool)


def base_labels(
    roi: np.ndarray, fov: np.ndarray, complement: bool, options: RenderOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Segmentation and edge labels before any paste: ROI ignored, the rest negative."""
    seg = np.where(roi, IGNORE, 0).astype(np.uint8)
    edge = seg.copy()
    if options.dark_is_normal:
        seg[~fov] = 1 if complement else 0
        edge[~fov] = 0
    return seg, edge


def render_original(
    image: np.ndarray,
    roi: np.ndarray,
    fov: np.ndarray,
    bank: PatchBank,
    complement: bool,
    options: RenderOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unmodified image as a sample: its clicked discs labelled, the ROI ignored."""
    seg, edge = base_labels(roi, fov, complement, options)
    h, w = seg.shape
    yy, xx = np.mgrid[0:h, 0:w]
    for circle, target in zip(bank.circles, bank.targets, strict=True):
        disc = (xx - circle.x) ** 2 + (yy - circle.y) ** 2 <= circle.r**2
        seg[disc] = 1 if target else 0
    return image.copy(), seg, edge


def render_composite(
    image: np.ndarray,
    roi: np.ndarray,
    fov: np.ndarray,
    bank: PatchBank,
    complement: bool,
    rng: np.random.Generator,
    options: RenderOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Placement]]:
    """Paste max(min_patches, #circles) non-overlapping patches at random places.

    Returns (image, seg, edge, placements). Each patch gets `options.max_tries` random
    positions at most (centres at least r1 + r2 + 1 apart, the authors' rule); a patch that
    finds no free position is skipped, so a crowded image gets fewer patches, never a hang.
    """
    h, w = roi.shape
    seg, edge = base_labels(roi, fov, complement, options)
    # No extra draw when the switch is off: the paper's random stream stays the same.
    if options.shuffle_background > 0 and rng.random() < options.shuffle_background:
        image, seg, edge = shuffle_tiles(image, seg, edge, options.tile_fraction, rng)
    out = image.astype(np.float32)
    placements: list[Placement] = []
    wanted = max(options.min_patches, len(bank.circles))
    centres = np.flatnonzero(fov) if options.place_in_fov and fov.any() else None
    for _ in range(wanted):
        # No extra draw when the switch is off: the paper's random stream stays the same.
        if options.outside_patches > 0 and bank.outside and rng.random() < options.outside_patches:
            scales = bank.outside
        else:
            scales = bank.entries[int(rng.integers(len(bank.entries)))]
        choices = scales[int(rng.integers(len(scales)))]
        source: SourceDisc = choices[int(rng.integers(len(choices)))]
        triangle = bool(rng.random() < options.triangle_probability)
        angle = 0.0
        if (not triangle or options.rotate_triangles) and rng.random() < options.rotate_probability:
            angle = float(rng.integers(1, 361))
        r = source.radius
        spot = None
        for _try in range(options.max_tries):
            if centres is None:
                px, py = int(rng.integers(w)), int(rng.integers(h))
            else:
                py, px = divmod(int(centres[rng.integers(centres.size)]), w)
            if all(
                (px - p.x) ** 2 + (py - p.y) ** 2 >= (r + p.radius + 1) ** 2 for p in placements
            ):
                spot = (px, py)
                break
        if spot is None:
            continue
        px, py = spot
        placements.append(Placement(px, py, r, source.target, triangle, angle))

        half = source.pixels.shape[0] // 2
        pixels = _rotate(source.pixels, angle) if angle else source.pixels
        mask = _shape_mask(half, r, triangle, angle if triangle else 0.0)
        rim = _inner_rim(mask)
        # Clip the patch window to the image.
        x0, y0 = px - half, py - half
        sx0, sy0 = max(0, -x0), max(0, -y0)
        sx1 = min(2 * half + 1, w - x0)
        sy1 = min(2 * half + 1, h - y0)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        win = (slice(y0 + sy0, y0 + sy1), slice(x0 + sx0, x0 + sx1))
        m = mask[sy0:sy1, sx0:sx1]
        p = pixels[sy0:sy1, sx0:sx1].astype(np.float32)
        if options.feather > 0:
            alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), options.feather)
            a = alpha[sy0:sy1, sx0:sx1, None]
            out[win] = out[win] * (1 - a) + p * a
        else:
            region = out[win]
            region[m] = p[m]
        seg_win, edge_win = seg[win], edge[win]
        seg_win[m] = 1 if source.target else 0
        edge_win[m] = 0
        if source.target:
            edge_win[rim[sy0:sy1, sx0:sx1]] = 1

    composite, seg, edge = augment(out, seg, edge, rng, options)
    return composite, seg, edge, placements


def shuffle_tiles(
    image: np.ndarray,
    seg: np.ndarray,
    edge: np.ndarray,
    tile_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image and its labels cut into square tiles, shuffled and each turned by k·90°.

    Tiles have side round(tile_fraction × the shorter side) (at least 2 px); the grid covers
    the largest multiple of the tile side, and the strip beyond it (right, bottom) stays in
    place. Image and labels move together, so every pixel keeps its own label.
    """
    h, w = seg.shape
    side = max(2, int(round(tile_fraction * min(h, w))))
    rows, cols = h // side, w // side
    if rows * cols < 2:
        return image, seg, edge
    arrays = [image.copy(), seg.copy(), edge.copy()]
    order = rng.permutation(rows * cols)
    turns = rng.integers(0, 4, size=rows * cols)
    for dst, (src, k) in enumerate(zip(order, turns, strict=True)):
        sy, sx = divmod(int(src), cols)
        dy, dx = divmod(dst, cols)
        for out, arr in zip(arrays, (image, seg, edge), strict=True):
            tile = arr[sy * side : (sy + 1) * side, sx * side : (sx + 1) * side]
            out[dy * side : (dy + 1) * side, dx * side : (dx + 1) * side] = np.rot90(tile, int(k))
    return arrays[0], arrays[1], arrays[2]


def augment(
    image: np.ndarray,
    seg: np.ndarray,
    edge: np.ndarray,
    rng: np.random.Generator,
    options: RenderOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optional colour jitter and flips of a whole sample (labels flipped alike)."""
    image = image.astype(np.float32)
    if options.colour_jitter > 0:
        image = _jitter(image, rng, options.colour_jitter)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if options.flip:
        if rng.random() < 0.5:
            image, seg, edge = image[:, ::-1], seg[:, ::-1], edge[:, ::-1]
        if rng.random() < 0.5:
            image, seg, edge = image[::-1], seg[::-1], edge[::-1]
        image, seg, edge = (np.ascontiguousarray(a) for a in (image, seg, edge))
    return image, seg, edge


def _jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Global brightness, contrast and saturation change (the same for lesion and normal)."""
    brightness = 1 + rng.uniform(-strength, strength)
    contrast = 1 + rng.uniform(-strength, strength)
    saturation = 1 + rng.uniform(-strength, strength)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * saturation
    mean = image.mean()
    image = mean + (image - mean) * contrast
    return image * brightness


def rim_of(mask: np.ndarray) -> np.ndarray:
    """Inner 1-px rim of a boolean mask (exposed for tests and previews)."""
    return _inner_rim(mask)
