"""Inference on the original image and the files written for a user.

Steps: letterbox → network → sigmoid → crop the padding and resize the probability bilinearly
to the original size → invert if `complement` → threshold (0.5) → optional ROI clip. The
probability is resized before thresholding (the authors did the same), which gives smoother
outlines than resizing a binary mask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from yoho.annotation import Annotation
from yoho.io import write_json, write_png
from yoho.letterbox import PAD_GREY, Letterbox
from yoho.metrics import all_metrics, dice
from yoho.model.net import EdgeUNet
from yoho.overlay import overlay_with_legend, save_curve

__all__ = [
    "SegmentationResult",
    "predict_target_probability",
    "lesion_from_probability",
    "write_outputs",
]


@dataclass
class SegmentationResult:
    """What `yoho.pipeline.segment` returns.

    mask: (H, W) bool lesion mask (after the ROI clip when the profile clips).
    raw_mask: the same before the ROI clip.
    probability: (H, W) float32 lesion probability (inverted already for complement).
    timings: seconds per stage ("setup", "train", "predict", "total").
    curve: training loss per step.
    post: what the post-processing decided (`leak_check`: whether GrabCut's mask from the
    clicks alone replaced the walk's, and the area ratio; `network_seeds`: how many pixels of
    the network's sure normal tissue seeded the walk; `network_lesion_seeds`: the same for its
    sure lesion joined to a circle; `yoho.postprocess.refine_mask`).
    """

    mask: np.ndarray
    raw_mask: np.ndarray
    probability: np.ndarray
    timings: dict[str, float]
    curve: list[float]
    profile: str
    seed: int
    device: str
    complement: bool
    roi_clip: bool
    model: EdgeUNet | None = field(default=None, repr=False)
    post: dict = field(default_factory=dict)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@torch.no_grad()
def predict_target_probability(
    model: EdgeUNet,
    image: np.ndarray,
    size: int,
    device: torch.device | str = "cpu",
    tta_flip: bool = False,
) -> np.ndarray:
    """Probability of the learnt class (lesion, or normal tissue with complement), (H, W)."""
    box = Letterbox(image.shape[0], image.shape[1], size)
    padded = box.pad(box.resize_image(image), PAD_GREY)
    x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).float()[None] / 255.0
    model.eval()
    x = x.to(device)
    if tta_flip:
        views = [x, x.flip(-1), x.flip(-2)]
        logits = model(torch.cat(views)).seg.float()
        prob = torch.sigmoid(logits)
        prob = (prob[0] + prob[1].flip(-1) + prob[2].flip(-2)) / 3
    else:
        prob = torch.sigmoid(model(x).seg.float())[0]
    return box.unletterbox(prob[0].cpu().numpy())


def lesion_from_probability(
    target_prob: np.ndarray,
    annotation: Annotation,
    threshold: float = 0.5,
    roi_clip: bool = False,
    calibrate_image: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lesion probability, raw lesion mask, clipped lesion mask).

    The clip keeps the learnt class inside the ROI: normally the lesion is cut to the ROI;
    with `complement` the normal tissue is, so everything outside the ROI becomes lesion.
    `calibrate_image` (the original image): rescale the probability to the physician's clicks
    first (`yoho.postprocess.calibrate_to_clicks`); None leaves it as the network gave it.
    """
    if target_prob.shape != annotation.shape:
        raise ValueError("probability map and annotation sizes differ")
    lesion_prob = 1.0 - target_prob if annotation.complement else target_prob
    if calibrate_image is not None:
        from yoho.postprocess import calibrate_to_clicks

        lesion_prob = calibrate_to_clicks(lesion_prob, annotation, calibrate_image)
    raw = lesion_prob > threshold
    if not roi_clip:
        return lesion_prob.astype(np.float32), raw, raw
    roi = annotation.roi_mask()
    clipped = (raw | ~roi) if annotation.complement else (raw & roi)
    return lesion_prob.astype(np.float32), raw, clipped


def write_outputs(
    out_dir: str | os.PathLike,
    image: np.ndarray,
    annotation: Annotation,
    result: SegmentationResult,
    gt: np.ndarray | None = None,
    extra: dict | None = None,
    source: str | os.PathLike | None = None,
    image_name: str | None = None,
) -> dict:
    """Write mask.png (0/255), overlay.png (with its legend), curve.png, the exports of the
    contour (`yoho.exports`) and summary.json; returns the summary.

    `source`: the input image file (a DICOM file also gets a DICOM-SEG); `image_name`: the
    image's path as the exported annotation and labelme files should name it (relative to
    `out_dir`); None keeps the annotation's own.
    """
    from datetime import datetime, timezone

    from yoho import __version__
    from yoho.exports import write_exports

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    created = datetime.now(timezone.utc)
    write_png(out / "mask.png", result.mask)
    overlay = overlay_with_legend(
        image,
        result.mask,
        annotation,
        gt=gt,
        profile=result.profile,
        when=created.strftime("%Y-%m-%d %H:%M UTC"),
    )
    write_png(out / "overlay.png", overlay)
    if result.curve:
        save_curve(result.curve, out / "curve.png", f"profile {result.profile}, seed {result.seed}")
    meta = {"profile": result.profile, "yoho_version": __version__,
            "created": created.isoformat(timespec="seconds")}  # fmt: skip
    exports = write_exports(
        out,
        result.mask,
        annotation,
        image_name=image_name if image_name is not None else annotation.image,
        source=source,
        meta=meta,
    )
    summary = {
        "image_size": {"width": int(image.shape[1]), "height": int(image.shape[0])},
        "area_px": result.area,
        "area_fraction": round(result.area / result.mask.size, 6),
        "profile": result.profile,
        "seed": result.seed,
        "device": result.device,
        "complement": result.complement,
        "roi_clip": result.roi_clip,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "final_loss": round(result.curve[-1], 5) if result.curve else None,
        "steps": len(result.curve),
        "yoho_version": __version__,
        "created": meta["created"],
        "exports": exports,
        "notice": "research use only, not a medical device",
    }
    # what the post-processing decided
    for key in ("leak_check", "network_seeds", "network_lesion_seeds"):
        if key in result.post:
            summary[key] = result.post[key]
    if gt is not None:
        metrics = all_metrics(result.mask, gt)
        summary["metrics"] = {k: round(v, 5) for k, v in metrics.items()}
        summary["dice"] = summary["metrics"]["dice"]
        summary["dice_without_roi_clip"] = round(dice(result.raw_mask, gt), 5)
    if extra:
        summary.update(extra)
    write_json(out / "summary.json", summary)
    return summary
