"""Train and predict on the ROI's neighbourhood instead of the whole frame.

A CPU profile works at ~128² input; letterboxing a 720×576 frame to that size leaves the
lesion a few dozen pixels wide. Cropping the image to the ROI's bounding box, grown by
`pad` × its larger side on each side (the grown part is outside the ROI: free negatives),
gives the network several times more pixels on the lesion for the same cost. The crop is
the physician's input only (the ROI), never the ground truth.

Not used with `complement` (that ROI is the whole frame) or when the crop would leave no
negative supervision; the whole image is used then.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from yoho.annotation import Annotation, Circle, Roi, validate_annotation

__all__ = ["roi_crop_box", "crop_annotation", "crop_for_training", "paste_probability"]


def roi_crop_box(ann: Annotation, pad: float) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the grown ROI bounding box, or None when no crop applies."""
    if ann.complement:
        return None
    roi = ann.roi_mask()
    ys, xs = np.nonzero(roi)
    if ys.size == 0:
        return None
    grow = pad * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    y0, y1 = max(0, int(ys.min() - grow)), min(ann.height, int(np.ceil(ys.max() + 1 + grow)))
    x0, x1 = max(0, int(xs.min() - grow)), min(ann.width, int(np.ceil(xs.max() + 1 + grow)))
    if (y1 - y0) * (x1 - x0) >= 0.9 * ann.height * ann.width:
        return None  # hardly smaller than the frame: not worth a special case
    return y0, y1, x0, x1


def _inside(c: Circle, box: tuple[int, int, int, int]) -> bool:
    y0, y1, x0, x1 = box
    return (
        c.x - c.r >= x0 - 0.5
        and c.x + c.r <= x1 - 0.5
        and (c.y - c.r >= y0 - 0.5 and c.y + c.r <= y1 - 0.5)
    )


def crop_annotation(ann: Annotation, box: tuple[int, int, int, int]) -> Annotation | None:
    """The annotation in the coordinates of the crop `box`; None if it would be invalid."""
    y0, y1, x0, x1 = box
    shift = np.array([x0, y0], float)

    def move(c: Circle) -> Circle:
        return Circle(c.x - x0, c.y - y0, c.r)

    roi = (
        Roi(mask=ann.roi_mask()[y0:y1, x0:x1])
        if ann.roi.mask is not None
        else Roi(
            polygons=[p - shift for p in ann.roi.polygons],
            holes=[p - shift for p in ann.roi.holes],
        )
    )
    cropped = dataclasses.replace(
        ann,
        width=x1 - x0,
        height=y1 - y0,
        roi=roi,
        lesion_circles=[move(c) for c in ann.lesion_circles if _inside(c, box)],
        normal_circles=[move(c) for c in ann.normal_circles if _inside(c, box)],
    )
    try:
        validate_annotation(cropped)
    except ValueError:
        return None
    return cropped


def crop_for_training(
    image: np.ndarray, ann: Annotation, pad: float | None
) -> tuple[np.ndarray, Annotation, tuple[int, int, int, int] | None]:
    """(image, annotation, box) to train on: the grown-ROI crop, or the inputs and None."""
    if pad is None:
        return image, ann, None
    box = roi_crop_box(ann, pad)
    cropped = crop_annotation(ann, box) if box is not None else None
    if cropped is None:
        return image, ann, None
    y0, y1, x0, x1 = box
    return np.ascontiguousarray(image[y0:y1, x0:x1]), cropped, box


def paste_probability(
    target: np.ndarray, box: tuple[int, int, int, int] | None, shape: tuple[int, int]
) -> np.ndarray:
    """The crop's probability of the learnt class placed in a full-size map (0 outside)."""
    if box is None:
        return target
    y0, y1, x0, x1 = box
    full = np.zeros(shape, np.float32)
    full[y0:y1, x0:x1] = target
    return full
