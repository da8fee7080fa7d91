"""Pictures for people: contour overlays, rendered-sample contact sheets, training curves."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from yoho.io import write_bytes  # noqa: E402
from yoho.letterbox import IGNORE  # noqa: E402

__all__ = ["draw_overlay", "label_picture", "save_contact_sheet", "save_curve", "PRED", "GT"]

PRED = (0, 255, 0)  # prediction contour: green
GT = (255, 220, 0)  # ground-truth contour: yellow
ROI = (80, 160, 255)  # ROI contour: light blue


def _contours(image: np.ndarray, mask: np.ndarray, colour, thickness: int) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(image, contours, -1, colour, thickness, lineType=cv2.LINE_AA)


def draw_overlay(
    image: np.ndarray,
    mask: np.ndarray,
    gt: np.ndarray | None = None,
    roi: np.ndarray | None = None,
    circles: Sequence[tuple[float, float, float, tuple[int, int, int]]] = (),
) -> np.ndarray:
    """The image with the prediction tinted and outlined (green), the ground truth outlined
    (yellow), the ROI outlined (blue) and circles drawn (x, y, r, colour)."""
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 300))
    tint = out.astype(np.float32)
    tint[mask] = 0.75 * tint[mask] + 0.25 * np.array(PRED, np.float32)
    out = tint.astype(np.uint8)
    if roi is not None:
        _contours(out, roi, ROI, thickness)
    if gt is not None:
        _contours(out, gt, GT, thickness)
    _contours(out, mask, PRED, thickness)
    for x, y, r, colour in circles:
        cv2.circle(out, (round(x), round(y)), round(r), colour, thickness, cv2.LINE_AA)
    return out


def label_picture(seg: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """RGB picture of labels: 1 red, 0 black, ignore grey, edge pixels yellow."""
    out = np.zeros((*seg.shape, 3), np.uint8)
    out[seg == IGNORE] = (110, 110, 110)
    out[seg == 1] = (220, 40, 40)
    out[edge == 1] = (255, 230, 0)
    return out


def _save_figure(fig, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_bytes(path, buffer.getvalue())


def save_contact_sheet(
    samples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    columns: int = 4,
) -> None:
    """A grid of rendered samples: each (title, image, seg, edge) as image | labels."""
    rows = (len(samples) + columns - 1) // columns
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(4 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (title, image, seg, edge) in enumerate(samples):
        r, c = divmod(k, columns)
        axes[r][2 * c].imshow(image)
        axes[r][2 * c].set_title(title, fontsize=7)
        axes[r][2 * c + 1].imshow(label_picture(seg, edge))
        axes[r][2 * c + 1].set_title("red 1 · black 0 · grey ignore · yellow edge", fontsize=5)
    _save_figure(fig, path)


def save_curve(losses: Sequence[float], path: str | os.PathLike, title: str = "") -> None:
    """Training loss per step (with a moving average)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="loss")
    if len(losses) >= 10:
        k = max(5, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    _save_figure(fig, path)
