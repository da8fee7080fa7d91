"""Pictures for people: contour overlays, rendered-sample contact sheets, training curves."""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from yoho.io import write_figure  # noqa: E402
from yoho.letterbox import IGNORE  # noqa: E402

__all__ = [
    "draw_overlay",
    "legend_strip",
    "overlay_with_legend",
    "label_picture",
    "save_contact_sheet",
    "save_curve",
    "PRED",
    "GT",
    "ROI",
    "LESION_CIRCLE",
    "NORMAL_CIRCLE",
    "NOTICE",
]

PRED = (0, 255, 0)  # prediction contour: green
GT = (255, 220, 0)  # ground-truth contour: yellow
ROI = (80, 160, 255)  # ROI contour: light blue
LESION_CIRCLE = (255, 60, 60)  # lesion circles: red
NORMAL_CIRCLE = (60, 200, 255)  # normal-tissue circles: cyan
NOTICE = "research use only, not a medical device"


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


FONT = cv2.FONT_HERSHEY_SIMPLEX
STRIP_BG = (32, 34, 40)
STRIP_INK = (240, 240, 240)


def _text_size(text: str, scale: float, thickness: int) -> tuple[int, int]:
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    return w, h + base


def legend_strip(
    width: int, entries: Sequence[tuple[str, tuple[int, int, int], str]], footer: str
) -> np.ndarray:
    """A dark strip `width` pixels wide: coloured keys (label, colour, "line" | "circle" | "box") that
    flow into rows, then the footer text wrapped to the width. The text height follows the
    width (about 1/45 of it, at least 11 px), so it stays readable at the image's own size."""
    text_h = max(11, round(width / 45))
    while True:  # smaller text on a narrow image, until every key fits on one row
        scale = text_h / 22.0  # Hershey simplex capitals are ~22 px high at scale 1
        thick = max(1, round(text_h / 12))
        pad, gap, key = max(4, text_h // 2), max(8, text_h), text_h + 4
        widest = max((_text_size(e[0], scale, thick)[0] for e in entries), default=0)
        if text_h <= 7 or 2 * pad + key + 4 + widest <= width:
            break
        text_h -= 1
    line_h = round(text_h * 1.6)
    items = [
        (label, colour, kind, _text_size(label, scale, thick)[0]) for label, colour, kind in entries
    ]
    rows: list[list] = [[]]
    x = pad
    for item in items:
        need = key + 4 + item[3]
        if rows[-1] and x + need > width - pad:
            rows.append([])
            x = pad
        rows[-1].append(item)
        x += need + gap
    words, lines = footer.split(), [""]
    for word in words:
        trial = f"{lines[-1]} {word}".strip()
        if lines[-1] and _text_size(trial, scale, thick)[0] > width - 2 * pad:
            lines.append(word)
        else:
            lines[-1] = trial
    height = pad * 2 + line_h * (len(rows) + len(lines))
    strip = np.zeros((height, width, 3), np.uint8)
    strip[:] = STRIP_BG
    y = pad
    for row in rows:
        x = pad
        mid = y + line_h // 2
        for label, colour, kind, text_w in row:
            if kind == "box":
                cv2.rectangle(
                    strip, (x, mid - key // 2 + 2), (x + key, mid + key // 2 - 2), colour, -1
                )
            elif kind == "circle":
                cv2.circle(strip, (x + key // 2, mid), key // 2 - 1, colour, thick + 1, cv2.LINE_AA)
            else:
                cv2.line(strip, (x, mid), (x + key, mid), colour, thick + 2, cv2.LINE_AA)
            baseline = mid + text_h // 2 - thick
            cv2.putText(
                strip, label, (x + key + 4, baseline), FONT, scale, STRIP_INK, thick, cv2.LINE_AA
            )
            x += key + 4 + text_w + gap
        y += line_h
    for line in lines:
        baseline = y + line_h // 2 + text_h // 2 - thick
        cv2.putText(strip, line, (pad, baseline), FONT, scale, (200, 205, 215), thick, cv2.LINE_AA)
        y += line_h
    return strip


def overlay_with_legend(
    image: np.ndarray,
    mask: np.ndarray,
    annotation=None,
    gt: np.ndarray | None = None,
    profile: str = "",
    when: str | None = None,
) -> np.ndarray:
    """`draw_overlay` of the prediction, ROI and circles of `annotation` (and the ground truth),
    with a legend strip below the picture: what each colour is, then the YOHO version, the
    profile, the date (UTC) and the research-use notice. The image itself is not covered."""
    from datetime import datetime, timezone

    from yoho import __version__

    circles, roi = [], None
    if annotation is not None:
        roi = annotation.roi_mask()
        circles = [(c.x, c.y, c.r, LESION_CIRCLE) for c in annotation.lesion_circles]
        circles += [(c.x, c.y, c.r, NORMAL_CIRCLE) for c in annotation.normal_circles]
    picture = draw_overlay(image, mask, gt=gt, roi=roi, circles=circles)
    entries = [("prediction", PRED, "line")]
    if annotation is not None:
        roi_label = "ROI (drawn on normal tissue)" if annotation.complement else "ROI"
        entries += [
            (roi_label, ROI, "line"),
            ("lesion circles", LESION_CIRCLE, "circle"),
            ("normal circles", NORMAL_CIRCLE, "circle"),
        ]
    if gt is not None:
        entries.append(("ground truth", GT, "line"))
    when = when or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"YOHO {__version__}"] + ([f"profile {profile}"] if profile else []) + [when, NOTICE]
    strip = legend_strip(image.shape[1], entries, " | ".join(parts))
    return np.concatenate([picture, strip], axis=0)


def label_picture(seg: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """RGB picture of labels: 1 red, 0 black, ignore grey, edge pixels yellow."""
    out = np.zeros((*seg.shape, 3), np.uint8)
    out[seg == IGNORE] = (110, 110, 110)
    out[seg == 1] = (220, 40, 40)
    out[edge == 1] = (255, 230, 0)
    return out


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
    write_figure(path, fig)


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
    write_figure(path, fig)
