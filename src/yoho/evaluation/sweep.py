"""The protocol sweep table: mean Dice per method for each simulated-physician setting."""

from __future__ import annotations

import math

import numpy as np

from yoho.evaluation.report import _order, common_images
from yoho.evaluation.store import ResultStore

__all__ = ["sweep_table"]


def _mean(store: ResultStore, setting: str, method: str, images: set[str] | None = None):
    values = [
        r["dice"] for r in store.select(setting, [method]) if images is None or r["image"] in images
    ]
    return (float(np.mean(values)) if values else math.nan), len(values)


def sweep_table(store: ResultStore, settings: list[str]) -> tuple[str, dict]:
    """Markdown tables (each method on all its images; then on the images YOHO finished)."""
    # Post-processing variants ("... [variant]") and ablated YOHO runs ("yoho(p; ablation)")
    # stay out of this table; the latter have their own (`ablation_table`).
    methods = _order(
        r["method"] for r in store.select() if "[" not in r["method"] and ";" not in r["method"]
    )
    data: dict = {}
    lines = [
        "Mean Dice (images) per method and setting; each method on every image it finished.",
        "",
        "| setting | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for setting in settings:
        cells = []
        for method in methods:
            mean, n = _mean(store, setting, method)
            data.setdefault(setting, {})[method] = {"mean_dice": mean, "n": n}
            cells.append("not run" if n == 0 else f"{mean:.3f} ({n})")
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    yoho = [m for m in methods if m.startswith("yoho")]
    paired = []
    for setting in settings:
        for y in yoho:
            images = set(common_images(store, setting, [y, *[m for m in methods if m not in yoho]]))
            if not images:
                continue
            cells = []
            for method in [*[m for m in methods if m not in yoho], y]:
                mean, n = _mean(store, setting, method, images)
                cells.append(f"{mean:.3f}")
            best = max(_mean(store, setting, m, images)[0] for m in methods if m not in yoho)
            gap = _mean(store, setting, y, images)[0] - best
            data[setting].setdefault("paired", {})[y] = {"n": len(images), "gap": gap}
            paired.append(f"| {setting} | {y} | {len(images)} | " + " | ".join(cells)
                          + f" | {gap:+.3f} |")  # fmt: skip
    if paired:
        base = [m for m in methods if m not in yoho]
        lines += [
            "",
            "The same, only on the images where YOHO ran (paired comparison); gap = YOHO − best "
            "baseline.",
            "",
            "| setting | YOHO | images | " + " | ".join(base) + " | YOHO | gap |",
            "|---|---|---|" + "---|" * (len(base) + 2),
            *paired,
        ]
    return "\n".join(lines) + "\n", data
