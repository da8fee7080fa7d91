"""Corrective clicks in the evaluation: Dice after each simulated click, NoC, Dice-vs-clicks.

Every method gets the clicks its own errors call for (the NoC protocol of RITM, SimpleClick and
FocalClick): after each of its results `yoho.evaluation.clicks.next_click` looks at *its* mask.
Giving every method the same clicks would favour the method whose errors made them. A click is
one correction round in the annotation; GrabCut, the random walker and the trainable forest
re-run from scratch with every circle so far; YOHO refines its network (`yoho.refine`).

A method stops clicking once it has had `min_clicks` clicks and reached `stop_dice`, or when no
click is left to make; the Dice of the clicks it did not need is carried forward (a physician
who is satisfied stops clicking). NoC@t is the first click count whose Dice reaches t, or the
cap (`max_clicks`) when it never does, counted as a failure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from yoho.annotation import Annotation
from yoho.evaluation.clicks import next_click
from yoho.metrics import dice

__all__ = [
    "CLICK_METHODS",
    "click_curve",
    "yoho_corrector",
    "baseline_corrector",
    "noc",
    "summarise_clicks",
    "write_click_report",
]

# Methods whose result depends on the circles (the ROI alone ignores clicks).
CLICK_METHODS = ("yoho", "grabcut", "random_walker", "trainable")

Corrector = Callable[[Annotation], np.ndarray]


def click_curve(
    corrector: Corrector,
    annotation: Annotation,
    truth: np.ndarray,
    first_mask: np.ndarray,
    max_clicks: int = 10,
    stop_dice: float = 0.90,
    min_clicks: int = 5,
) -> list[dict]:
    """Rows for clicks 0..max_clicks: click, dice, seconds, and the click made (x, y, r, kind).

    `corrector(annotation_with_rounds)` returns the method's new mask; `first_mask` is its
    result without corrections (click 0).
    """
    truth = np.asarray(truth, bool)
    mask = np.asarray(first_mask, bool)
    rows = [{"click": 0, "dice": dice(mask, truth), "seconds": 0.0, "made": True}]
    ann = annotation
    for k in range(1, max_clicks + 1):
        last = rows[-1]
        click = None
        if not (k > min_clicks and last["dice"] >= stop_dice):
            click = next_click(mask, truth, ann)
        if click is None:  # satisfied, or nothing left to click: the Dice stays
            rows.append({"click": k, "dice": last["dice"], "seconds": 0.0, "made": False})
            continue
        ann = ann.with_round(click.as_round())
        t0 = time.perf_counter()
        mask = np.asarray(corrector(ann), bool)
        rows.append(
            {
                "click": k,
                "dice": dice(mask, truth),
                "seconds": time.perf_counter() - t0,
                "made": True,
                "kind": "lesion" if click.lesion else "normal",
                "x": click.circle.x,
                "y": click.circle.y,
                "r": click.circle.r,
            }
        )
    return rows


def baseline_corrector(name: str, image: np.ndarray) -> Corrector:
    """A baseline re-run from scratch with every circle so far."""
    from yoho.baselines import run_baseline

    return lambda ann: run_baseline(name, image, ann)


def yoho_corrector(
    image: np.ndarray, model, profile, seed: int = 0, device=None, first_mask=None
) -> Corrector:
    """YOHO's correction rounds: each refines the network the previous round left (and sees
    the mask it corrects, starting from `first_mask`)."""
    from yoho.refine import refine

    state = {"model": model, "mask": first_mask}

    def correct(ann: Annotation) -> np.ndarray:
        result = refine(image, ann, state["model"], profile, seed=seed, device=device,
                        previous_mask=state["mask"])  # fmt: skip
        state["model"], state["mask"] = result.model, result.mask
        return result.mask

    return correct


def noc(dices: list[float], target: float, max_clicks: int) -> tuple[int, bool]:
    """(clicks needed to reach `target`, reached?) from Dice after 0, 1, 2, ... clicks.

    Click 0 counts: a first result already at the target needs no click. Not reached within
    the curve → (max_clicks, False), the NoC convention for a failure.
    """
    for k, value in enumerate(dices[: max_clicks + 1]):
        if value >= target:
            return k, True
    return max_clicks, False


def summarise_clicks(store, setting: str, methods: list[str], max_clicks: int) -> list[dict]:
    """Per method, over the images every listed method has a curve for: NoC@85/90 (mean,
    failures), mean Dice after 0/1/3/5 clicks and mean seconds per click made."""
    curves = {m: store.select(setting, m) for m in methods}
    curves = {m: c for m, c in curves.items() if c}
    if not curves:
        return []
    common = sorted(set.intersection(*(set(c) for c in curves.values())))
    out = []
    for method, by_image in curves.items():
        dices = [[r["dice"] for r in by_image[i]] for i in common]
        row: dict = {"method": method, "images": len(common)}
        for target in (0.85, 0.90):
            counts = [noc(d, target, max_clicks) for d in dices]
            tag = f"{round(target * 100)}"
            row[f"noc{tag}"] = float(np.mean([c for c, _ in counts])) if counts else math.nan
            row[f"fail{tag}"] = sum(1 for _, ok in counts if not ok)
        for k in (0, 1, 3, 5):
            values = [d[min(k, len(d) - 1)] for d in dices]
            row[f"dice@{k}"] = float(np.mean(values)) if values else math.nan
        made = [r["seconds"] for i in common for r in by_image[i][1:] if r.get("made")]
        row["s_per_click"] = float(np.mean(made)) if made else math.nan
        row["curve"] = [
            float(np.mean([d[min(k, len(d) - 1)] for d in dices])) for k in range(max_clicks + 1)
        ]
        out.append(row)
    return out


def write_click_report(store, setting: str, methods: list[str], max_clicks: int, folder) -> str:
    """noc.md, noc.json and dice_vs_clicks.png in `folder`; returns the Markdown table."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yoho.io import write_json, write_text

    folder = Path(folder)
    rows = summarise_clicks(store, setting, methods, max_clicks)
    if not rows:
        return "no correction curves yet"
    lines = [
        f"Corrective clicks, setting {setting}, {rows[0]['images']} images, at most "
        f"{max_clicks} clicks (each method clicks on its own errors; NoC capped at "
        f"{max_clicks}, failures = never reached)",
        "",
        "| method | NoC@85 | fail@85 | NoC@90 | fail@90 | Dice 0 | Dice 1 | Dice 3 | Dice 5 "
        "| s/click |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['noc85']:.2f} | {r['fail85']} | {r['noc90']:.2f} | "
            f"{r['fail90']} | {r['dice@0']:.3f} | {r['dice@1']:.3f} | {r['dice@3']:.3f} | "
            f"{r['dice@5']:.3f} | {r['s_per_click']:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    write_text(folder / "noc.md", text)
    write_json(folder / "noc.json", {"setting": setting, "max_clicks": max_clicks, "rows": rows})
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for r in rows:
        ax.plot(range(max_clicks + 1), r["curve"], marker="o", ms=3, label=r["method"])
    ax.axhline(0.90, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("corrective clicks")
    ax.set_ylabel(f"mean Dice ({rows[0]['images']} images)")
    ax.set_title(f"Dice vs clicks, {setting}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from yoho.io import write_figure

    write_figure(folder / "dice_vs_clicks.png", fig)
    return text
