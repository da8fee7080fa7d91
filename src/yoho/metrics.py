"""Per-image segmentation metrics at the original resolution.

Conventions for empty masks (needed because a normal-tissue image has an empty ground truth):
Dice and IoU of two empty masks are 1; precision is 1 when nothing is predicted and nothing is
there, 0 when nothing is predicted but a lesion is; recall likewise with the roles swapped.
HD95 is 0 for two empty masks and infinite when exactly one is empty.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["dice", "iou", "precision", "recall", "hd95", "all_metrics"]


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred).astype(bool)
    gt = np.asarray(gt).astype(bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    return pred, gt


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient 2|P∩G| / (|P|+|G|); 1.0 when both masks are empty."""
    pred, gt = _pair(pred, gt)
    total = int(pred.sum()) + int(gt.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, gt).sum()) / total


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union; 1.0 when both masks are empty."""
    pred, gt = _pair(pred, gt)
    union = int(np.logical_or(pred, gt).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(pred, gt).sum()) / union


def precision(pred: np.ndarray, gt: np.ndarray) -> float:
    """TP / (TP + FP); with no predicted pixel: 1.0 if the ground truth is empty, else 0.0."""
    pred, gt = _pair(pred, gt)
    npred = int(pred.sum())
    if npred == 0:
        return 1.0 if not gt.any() else 0.0
    return int(np.logical_and(pred, gt).sum()) / npred


def recall(pred: np.ndarray, gt: np.ndarray) -> float:
    """TP / (TP + FN); with an empty ground truth: 1.0 if nothing is predicted, else 0.0."""
    pred, gt = _pair(pred, gt)
    ngt = int(gt.sum())
    if ngt == 0:
        return 1.0 if not pred.any() else 0.0
    return int(np.logical_and(pred, gt).sum()) / ngt


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)


def hd95(pred: np.ndarray, gt: np.ndarray) -> float:
    """95th percentile of the symmetric surface distances, in pixels.

    Surfaces are the 8-connected inner boundaries; distances come from Euclidean distance
    transforms (scipy) of each surface's complement.
    """
    pred, gt = _pair(pred, gt)
    if not pred.any() and not gt.any():
        return 0.0
    if not pred.any() or not gt.any():
        return float("inf")
    sp, sg = _surface(pred), _surface(gt)
    to_gt = ndimage.distance_transform_edt(~sg)
    to_pred = ndimage.distance_transform_edt(~sp)
    distances = np.concatenate([to_gt[sp], to_pred[sg]])
    return float(np.percentile(distances, 95))


def all_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Dice, IoU, precision, recall and HD95 of one prediction against its ground truth."""
    return {
        "dice": dice(pred, gt),
        "iou": iou(pred, gt),
        "precision": precision(pred, gt),
        "recall": recall(pred, gt),
        "hd95": hd95(pred, gt),
    }
