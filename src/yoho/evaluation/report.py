"""Tables and pictures of an evaluation: summary per method, figure grid, Dice box plot.

Everything is computed from the results CSV and the saved masks, so the report can be
rebuilt at any time (also while a long evaluation is still running).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from yoho.annotation import load_annotation  # noqa: E402
from yoho.evaluation.dataset import Item  # noqa: E402
from yoho.evaluation.runner import method_dir  # noqa: E402
from yoho.evaluation.store import METRICS, ResultStore  # noqa: E402
from yoho.io import (  # noqa: E402
    read_image,
    read_mask,
    read_probability,
    write_figure,
    write_json,
    write_text,
)

__all__ = [
    "summarise",
    "summary_markdown",
    "write_report",
    "box_plot",
    "figure_grid",
    "probability_grid",
]

COLOURS = {
    "gt": (1.0, 0.86, 0.0),
    "roi": (0.3, 0.6, 1.0),
    "grabcut": (1.0, 0.3, 1.0),
    "random_walker": (0.0, 1.0, 1.0),
}
YOHO_COLOUR = (0.1, 1.0, 0.1)


def _colour(method: str):
    return YOHO_COLOUR if method.startswith("yoho") else COLOURS.get(method, (1.0, 0.5, 0.0))


def _order(methods) -> list[str]:
    """Baselines first (ROI, GrabCut, random walker), then YOHO variants by name."""
    rank = {"roi": 0, "grabcut": 1, "random_walker": 2}
    return sorted(set(methods), key=lambda m: (rank.get(m, 3), m))


def common_images(store: ResultStore, setting: str, methods: list[str]) -> list[str]:
    """Images that every method finished under `setting` (so means compare like with like)."""
    names = None
    for method in methods:
        done = {r["image"] for r in store.select(setting, [method])}
        names = done if names is None else names & done
    return sorted(names or ())


def summarise(store: ResultStore, setting: str, methods: list[str] | None = None) -> list[dict]:
    """Per method: n, mean ± std and median of each metric and the mean seconds.

    Only images that all listed methods finished are used. HD95 is infinite where a mask is
    empty; its mean then is infinite too, so its median is the figure to read.
    """
    rows = store.select(setting)
    methods = _order(methods or [r["method"] for r in rows])
    images = set(common_images(store, setting, methods))
    failed = {
        m: sum(1 for r in store.select(setting, [m], ok=False) if r["error"]) for m in methods
    }
    out = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method and r["image"] in images]
        entry = {"method": method, "n": len(mine), "failed": failed.get(method, 0)}
        for metric in (*METRICS, "seconds"):
            values = np.array([r[metric] for r in mine], float)
            if values.size == 0:
                entry[metric] = {"mean": math.nan, "std": math.nan, "median": math.nan}
                continue
            with np.errstate(invalid="ignore"):
                entry[metric] = {
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values)),
                    "median": float(np.median(values)),
                }
        out.append(entry)
    return out


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def summary_markdown(summary: list[dict], title: str = "") -> str:
    """A markdown table: Dice mean ± std (median), IoU, precision, recall, HD95 median, s."""
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| method | n | Dice mean ± std | Dice median | IoU | precision | recall "
        "| HD95 median (px) | s/image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        lines.append(
            f"| {e['method']} | {e['n']} | {_fmt(e['dice']['mean'])} ± {_fmt(e['dice']['std'])} "
            f"| {_fmt(e['dice']['median'])} | {_fmt(e['iou']['mean'])} "
            f"| {_fmt(e['precision']['mean'])} | {_fmt(e['recall']['mean'])} "
            f"| {_fmt(e['hd95']['median'], 1)} | {_fmt(e['seconds']['mean'], 1)} |"
        )
    return "\n".join(lines) + "\n"


def box_plot(store: ResultStore, setting: str, methods: list[str], path: Path) -> None:
    """Dice per method as box plots with every image as a dot."""
    images = set(common_images(store, setting, methods))
    data = [
        [r["dice"] for r in store.select(setting, [m]) if r["image"] in images] for m in methods
    ]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(methods), 4))
    ax.boxplot(data, showmeans=True)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=8, alpha=0.5,
                   color=_colour(methods[i - 1]))  # fmt: skip
    # A variant's label on its own line ("yoho(cpu_fused)\n[control_flat_0.4]"): one line each
    # ran into the neighbours' labels.
    labels = [m.replace(" [", "\n[").replace("; ", ";\n") for m in methods]
    ax.set_xticks(range(1, len(methods) + 1), labels, fontsize=8)
    ax.set_ylabel("Dice")
    ax.set_ylim(min(0.0, *(min(d) for d in data if d)) if any(data) else 0, 1.0)
    ax.set_title(f"Dice per image ({setting}, n = {len(images)})")
    ax.grid(axis="y", alpha=0.3)
    write_figure(path, fig)


def _outline(ax, mask, colour, width, style, label, mode=cv2.RETR_LIST) -> None:
    """Draw the closed contours of `mask` on `ax`; only the first carries the legend label."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), mode, cv2.CHAIN_APPROX_NONE)
    for i, c in enumerate(contours):
        c = c.reshape(-1, 2)
        ax.plot(np.r_[c[:, 0], c[0, 0]], np.r_[c[:, 1], c[0, 1]], color=colour, lw=width,
                ls=style, label=label if i == 0 else None)  # fmt: skip


def _crop_box(masks: list[np.ndarray], shape, pad: float = 0.25):
    union = np.zeros(shape, bool)
    for m in masks:
        union |= m
    ys, xs = np.nonzero(union)
    if ys.size == 0:
        return 0, shape[0], 0, shape[1]
    g = int(pad * max(np.ptp(ys) + 1, np.ptp(xs) + 1))
    return (max(0, ys.min() - g), min(shape[0], ys.max() + 1 + g),
            max(0, xs.min() - g), min(shape[1], xs.max() + 1 + g))  # fmt: skip


def figure_grid(
    store: ResultStore,
    items: dict[str, Item],
    out_dir: Path,
    setting: str,
    methods: list[str],
    rank_by: str,
    path: Path,
    mask_threshold: int = 127,
) -> list[str]:
    """Best, median and worst image by `rank_by`'s Dice: image with every method's contour."""
    images = common_images(store, setting, methods)
    scores = {r["image"]: r["dice"] for r in store.select(setting, [rank_by])}
    ranked = sorted((i for i in images if i in scores and i in items), key=lambda i: scores[i])
    if not ranked:
        return []
    picks = [("best", ranked[-1]), ("median", ranked[len(ranked) // 2]), ("worst", ranked[0])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    for ax, (tag, name) in zip(axes, picks, strict=True):
        image = read_image(items[name].image)
        gt = read_mask(items[name].mask, image.shape, threshold=mask_threshold)
        masks = {}
        for m in methods:
            p = method_dir(out_dir, setting, m) / f"{name}.png"
            if p.is_file():
                masks[m] = read_mask(p, image.shape)
        y0, y1, x0, x1 = _crop_box([gt, *masks.values()], gt.shape)
        ax.imshow(image[y0:y1, x0:x1])
        for label, mask, width in [("ground truth", gt, 2.5)] + [(m, k, 1.6) for m, k in masks.items()]:  # fmt: skip
            colour = COLOURS["gt"] if label == "ground truth" else _colour(label)
            style = "--" if label == "ground truth" else "-"
            _outline(ax, mask[y0:y1, x0:x1], colour, width, style, label, cv2.RETR_LIST)
        dices = ", ".join(
            f"{m.split(';')[0].replace('random_walker', 'RW')} {r['dice']:.2f}"
            for m in methods
            for r in store.select(setting, [m])
            if r["image"] == name
        )
        ax.set_title(f"{tag}: {name[:13]}…\n{dices}", fontsize=8)
        ax.axis("off")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(f"best / median / worst by {rank_by} Dice ({setting}); dashed = ground truth")
    write_figure(path, fig)
    return [name for _, name in picks]


def probability_grid(
    items: dict[str, Item],
    out_dir: Path,
    setting: str,
    method: str,
    picks: list[str],
    path: Path,
    mask_threshold: int = 127,
) -> bool:
    """What the network believes: `method`'s saved lesion probability for each picked image.

    Each column shows the image with the ground truth, the ROI and the clicked circles, and
    below it the probability map (0 blue – 1 red) over the whole image, so that a network
    that calls healthy tissue near the lesion "lesion" is seen, even where the ROI clip or
    the post-processing hides it in the final mask. Returns False when nothing was saved.
    """
    folder = method_dir(out_dir, setting, method, "probability")
    shown = [n for n in picks if (folder / f"{n}.png").is_file() and n in items]
    if not shown:
        return False
    fig, axes = plt.subplots(2, len(shown), figsize=(5 * len(shown), 7.6), squeeze=False)
    for col, name in enumerate(shown):
        image = read_image(items[name].image)
        gt = read_mask(items[name].mask, image.shape, threshold=mask_threshold)
        prob = read_probability(folder / f"{name}.png", image.shape)
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(image)
        outlines = [(gt, COLOURS["gt"], "--", "ground truth")]
        ann_path = Path(out_dir) / "annotations" / setting / f"{name}.json"
        if ann_path.is_file():
            ann = load_annotation(ann_path)
            outlines.append((ann.roi_mask(), COLOURS["roi"], "-", "ROI"))
            for circles, colour, label in [
                (ann.lesion_circles, (1.0, 0.2, 0.2), "lesion circles"),
                (ann.normal_circles, (0.2, 1.0, 0.2), "normal circles"),
            ]:
                for i, c in enumerate(circles):
                    top.add_patch(plt.Circle((c.x, c.y), c.r, fill=False, color=colour, lw=1.4,
                                             label=label if i == 0 else None))  # fmt: skip
        for mask, colour, style, label in outlines:
            _outline(top, mask, colour, 1.8, style, label, cv2.RETR_EXTERNAL)
        top.set_title(name[:13] + "…", fontsize=9)
        shown_map = bottom.imshow(prob, cmap="jet", vmin=0, vmax=1)
        for ax in (top, bottom):
            ax.axis("off")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9)
    fig.colorbar(shown_map, ax=axes[1, :].tolist(), fraction=0.02, label="lesion probability")
    fig.suptitle(f"{method}: lesion probability before ROI clip and post-processing ({setting})",
                 y=0.02)  # fmt: skip
    write_figure(path, fig)
    return True


def write_report(
    store: ResultStore,
    items: list[Item],
    out_dir: Path,
    setting: str,
    methods: list[str],
    mask_threshold: int = 127,
    commands: list[str] | None = None,
) -> dict:
    """summary.md / summary.json, dice_boxplot.png and cases.png for one setting."""
    out_dir = Path(out_dir)
    methods = _order(methods)
    summary = summarise(store, setting, methods)
    report = out_dir / "report" / setting
    title = f"setting {setting}: {len(common_images(store, setting, methods))} images"
    text = summary_markdown(summary, title)
    if commands:
        text += "\n```bash\n" + "\n".join(commands) + "\n```\n"
    write_text(report / "summary.md", text)
    write_json(report / "summary.json", {"setting": setting, "methods": summary})
    if any(e["n"] for e in summary):
        box_plot(store, setting, methods, report / "dice_boxplot.png")
        # Post-processing variants have no saved mask: the figure shows the real methods.
        drawn = [m for m in methods if "[" not in m]
        yoho = [m for m in drawn if m.startswith("yoho")]
        by_name = {i.name: i for i in items}
        picks = figure_grid(store, by_name, out_dir, setting, drawn,
                            yoho[0] if yoho else drawn[-1], report / "cases.png", mask_threshold)  # fmt: skip
        if yoho:
            probability_grid(by_name, out_dir, setting, yoho[0], picks,
                             report / "probability.png", mask_threshold)  # fmt: skip
    return {"summary": summary, "markdown": text, "folder": report}
