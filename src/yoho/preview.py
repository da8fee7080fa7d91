"""What the network will be taught, for the physician who drew the annotation.

`physician_preview` draws the image with the pixels the network is told are **lesion** (red),
the ones it is told are **normal** (blue), and the **unknown** ones it has to decide itself
(left untinted, inside the dashed ROI outline), with a legend and plain-language checks of the
annotation. It uses the renderer's own labelling of the untouched image (`base_labels` and
the clicked discs, as in `render_original`), so the picture is the truth about the labels,
not a second description of them.

`yoho render-preview --simple` writes it as `preview.png` (and prints the checks); the web tool
shows it under *Check annotation*.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from yoho.annotation import Annotation
from yoho.letterbox import IGNORE
from yoho.overlay import NOTICE, legend_strip
from yoho.physician import field_of_view
from yoho.render.composite import RenderOptions, base_labels

__all__ = ["TaughtRegions", "taught_regions", "annotation_checks", "physician_preview"]

LESION_TINT = (230, 40, 40)
NORMAL_TINT = (40, 110, 255)
UNKNOWN_LINE = (255, 255, 255)


@dataclass
class TaughtRegions:
    lesion: np.ndarray
    normal: np.ndarray
    unknown: np.ndarray

    def fractions(self) -> dict[str, float]:
        size = self.lesion.size
        return {
            "lesion": float(self.lesion.sum() / size),
            "normal": float(self.normal.sum() / size),
            "unknown": float(self.unknown.sum() / size),
        }


def taught_regions(
    image: np.ndarray, annotation: Annotation, options: RenderOptions | None = None
) -> TaughtRegions:
    """The image's pixels as the renderer labels them: lesion, normal, or unknown (ignored)."""
    options = options or RenderOptions()
    roi = annotation.roi_mask()
    fov = field_of_view(image)
    seg, _ = base_labels(roi, fov, annotation.complement, options)
    h, w = seg.shape
    yy, xx = np.mgrid[0:h, 0:w]
    for circle in annotation.target_circles:
        seg[(xx - circle.x) ** 2 + (yy - circle.y) ** 2 <= circle.r**2] = 1
    for circle in annotation.other_circles:
        seg[(xx - circle.x) ** 2 + (yy - circle.y) ** 2 <= circle.r**2] = 0
    target, other = seg == 1, seg == 0
    if annotation.complement:  # the network learns normal tissue; its output is inverted
        target, other = other, target
    return TaughtRegions(lesion=target, normal=other, unknown=seg == IGNORE)


def annotation_checks(
    image: np.ndarray, annotation: Annotation, regions: TaughtRegions | None = None
) -> list[str]:
    """Plain-language remarks on the annotation: what is taught, and what could be better."""
    regions = regions or taught_regions(image, annotation)
    share = regions.fractions()
    notes = [
        f"The network is told {share['lesion']:.0%} of the image is lesion (red) and "
        f"{share['normal']:.0%} is normal (blue); it decides the remaining "
        f"{share['unknown']:.0%} itself (inside the ROI, no colour)."
    ]
    roi = annotation.roi_mask()
    roi_share = float(roi.mean())
    lesion_n, normal_n = len(annotation.lesion_circles), len(annotation.normal_circles)
    if annotation.complement:
        notes.append(
            "complement is on: the ROI is drawn on normal tissue; everything outside it is "
            "taught as lesion."
        )
        if roi_share < 0.2:
            notes.append(
                f"Check: the ROI covers only {roi_share:.0%} of the image; with complement it "
                "should hold all normal tissue."
            )
    elif roi_share > 0.6:
        notes.append(
            f"Check: the ROI covers {roi_share:.0%} of the image. A tighter ROI around the "
            "lesion (with a small margin) teaches more normal tissue."
        )
    if lesion_n < 2:
        notes.append(
            f"Check: {lesion_n} lesion circle. Two or three circles on different parts of the "
            "lesion (colour, texture) usually help."
        )
    if normal_n == 0 and not annotation.complement:
        notes.append(
            "Check: no normal-tissue circle. One to three on healthy mucosa next to the lesion "
            "help the network tell them apart."
        )
    fov = field_of_view(image)
    for kind, circles in (("lesion", annotation.lesion_circles), ("normal", annotation.normal_circles)):  # fmt: skip
        for i, c in enumerate(circles, 1):
            x, y = int(round(c.x)), int(round(c.y))
            if 0 <= y < fov.shape[0] and 0 <= x < fov.shape[1] and not fov[y, x]:
                notes.append(f"Check: {kind} circle {i} is centred on the dark frame, not tissue.")
    unknown_in_roi = float(regions.unknown.sum() / max(1, roi.sum()))
    if unknown_in_roi > 0.97 and not annotation.complement:
        notes.append(
            "Check: the lesion circles cover under 3 % of the ROI; larger circles give the "
            "network more lesion to learn from."
        )
    if len(notes) == 1:
        notes.append("No problem found in the annotation.")
    return notes


def _dashed_outline(picture: np.ndarray, mask: np.ndarray, thickness: int) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    dash = max(4, 3 * thickness)
    for contour in contours:
        points = contour.reshape(-1, 2)
        for start in range(0, len(points), 2 * dash):
            seg = points[start : start + dash]
            if len(seg) > 1:
                cv2.polylines(picture, [seg], False, UNKNOWN_LINE, thickness, cv2.LINE_AA)


def physician_preview(image: np.ndarray, annotation: Annotation) -> tuple[np.ndarray, list[str]]:
    """(picture, checks): the tinted image with a legend strip below, and the remarks."""
    regions = taught_regions(image, annotation)
    picture = image.astype(np.float32)
    for mask, colour in ((regions.lesion, LESION_TINT), (regions.normal, NORMAL_TINT)):
        picture[mask] = 0.55 * picture[mask] + 0.45 * np.array(colour, np.float32)
    picture = picture.astype(np.uint8)
    thickness = max(1, round(max(image.shape[:2]) / 300))
    _dashed_outline(picture, annotation.roi_mask(), thickness)
    for c in annotation.lesion_circles:
        cv2.circle(
            picture, (round(c.x), round(c.y)), round(c.r), LESION_TINT, thickness, cv2.LINE_AA
        )
    for c in annotation.normal_circles:
        cv2.circle(
            picture, (round(c.x), round(c.y)), round(c.r), NORMAL_TINT, thickness, cv2.LINE_AA
        )
    entries = [
        ("taught as lesion", LESION_TINT, "box"),
        ("taught as normal", NORMAL_TINT, "box"),
        ("unknown: the network decides", UNKNOWN_LINE, "line"),
    ]
    checks = annotation_checks(image, annotation, regions)
    strip = legend_strip(image.shape[1], entries, f"What YOHO will learn | {NOTICE}")
    return np.concatenate([picture, strip], axis=0), checks
