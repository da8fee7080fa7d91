"""Where the lesion's edge lies in the guided walker's map, and how much of that map is geometry.

`cpu_guided` hands GrabCut the random walker's lesion map with sure pixels above `sure_high`
and below `sure_low`. This recomputes, for each image of a `yoho evaluate` output folder with
saved YOHO maps, that walk (from the saved network map, as the profile does) and the walk of
the same seeds on a featureless image: geometry alone, where a walk from each pixel ends given
only the circles and the ROI. It reports the median of both on the truth's edge inside the ROI,
the Dice of the profile's post-processing with GrabCut's sure-normal band at `--bands`, and how
well the network's map, geometry alone and the walk each rank lesion above normal tissue inside
the ROI (ROC AUC over the ROI's pixels outside the clicked circles): a network map that ranks
no better than geometry has nothing of its own to give the walk.

When the two medians agree, the walk's value at the lesion's edge is set by where the edge lies
between the circles and the ROI's border, not by the image: no fixed band then fits both a
tight and a loose ROI (docs/yoho_evaluation.md, the walker-geometry round).

    python scripts/yoho_walker_levels.py --data DIR --out EVAL_OUT --settings m0.15_k1,m0.5_k1
        [--bands 0.3,0.2,0.1,0.05] [--report FOLDER] [--profile cpu_guided]

Writes FOLDER (default EVAL_OUT/report/walker_levels) /walker_levels.csv (one row per image and
setting), walker_levels.md (means per setting) and walker_levels.png (walk against geometry on
the truth's edge, per image).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from yoho.annotation import Annotation, load_annotation
from yoho.baselines import random_walker_probability
from yoho.evaluation.dataset import load_dataset
from yoho.evaluation.runner import method_dir
from yoho.io import read_image, read_mask, read_probability, write_figure, write_text
from yoho.metrics import dice
from yoho.postprocess import circles_mask, refine_mask, walker_map
from yoho.profiles import get_profile

# The truth's edge this close to the ROI's border is the border's, not the lesion's.
EDGE_CLEAR_PX = 3


def geometry_walk(ann: Annotation, max_pixels: int | None = 500_000) -> np.ndarray:
    """The random walker's lesion map from the annotation's seeds on a featureless image.

    The image is grey with ±1 level of fixed noise: scikit-image scales `beta` by the data's
    standard deviation, which a constant image makes 0 (its solver then does not converge).
    """
    noise = np.random.default_rng(0).integers(127, 130, (*ann.shape, 3))
    return random_walker_probability(noise.astype(np.uint8), ann, max_pixels=max_pixels)


def edge_pixels(truth: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The truth's one-pixel edge, kept only `EDGE_CLEAR_PX` or more inside the ROI."""
    t = truth.astype(np.uint8)
    edge = (t - cv2.erode(t, np.ones((3, 3), np.uint8))).astype(bool)
    size = 2 * EDGE_CLEAR_PX + 1
    inner = cv2.erode(roi.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    return edge & inner


def unclicked_roi(ann: Annotation) -> np.ndarray:
    """The ROI's pixels outside every clicked circle: where the maps must decide."""
    clicked = circles_mask(list(ann.lesion_circles) + list(ann.normal_circles), ann.shape)
    return ann.roi_mask() & ~clicked


def ranking(values: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    """ROC AUC of `values` for lesion vs normal over `where` (NaN with one class only)."""
    labels = truth[where].astype(bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, values[where]))


def level_on(values: np.ndarray, where: np.ndarray) -> float:
    """Median of `values` over `where` (NaN where it is empty)."""
    return float(np.median(values[where])) if where.any() else float("nan")


def measure(data: Path, out: Path, settings: list[str], bands: list[float], profile: str):
    prof = get_profile(profile)
    post = replace(prof.post, calibrate=False)  # the saved map is already calibrated
    if post.walker_guide <= 0:
        raise SystemExit(f"profile {profile!r} has no guided walker (walker_guide is 0)")
    label = f"yoho({prof.name})"
    items = {item.name: item for item in load_dataset(data)}
    rows = []
    for setting in settings:
        folder = method_dir(out, setting, label, "probability")
        maps = sorted(folder.glob("*.png"))
        if not maps:
            raise SystemExit(f"{folder}: no saved {label} maps for setting {setting}")
        for path in maps:
            item = items.get(path.stem)
            if item is None:
                raise SystemExit(f"{path}: no image {path.stem!r} in {data}")
            image = read_image(item.image)
            truth = read_mask(item.mask, image.shape, threshold=127)
            ann = load_annotation(out / "annotations" / setting / f"{path.stem}.json", image.shape)
            prob = read_probability(path, image.shape)
            edge = edge_pixels(truth, ann.roi_mask())
            walk = walker_map(prob, ann, post, image)
            geometry = geometry_walk(ann, post.walker_max_pixels)
            decide = unclicked_roi(ann.merged())
            row = {
                "image": path.stem,
                "setting": setting,
                "walk_on_edge": level_on(walk, edge),
                "geometry_on_edge": level_on(geometry, edge),
                "auc_network": ranking(prob, truth, decide),
                "auc_geometry": ranking(geometry, truth, decide),
                "auc_walk": ranking(walk, truth, decide),
            }
            for band in bands:
                mask = refine_mask(prob, ann, replace(post, sure_low=band), prof.threshold,
                                   prof.roi_clip, image)  # fmt: skip
                row[f"dice_band_{band:g}"] = dice(mask, truth)
            rows.append(row)
            print(f"{setting} {path.stem}: edge at walk {row['walk_on_edge']:.2f}, "
                  f"geometry {row['geometry_on_edge']:.2f}", flush=True)  # fmt: skip
    return rows


def summary(rows: list[dict], bands: list[float]) -> str:
    head = ["setting", "n", "walk on edge", "geometry on edge"] + [f"band {b:g}" for b in bands]
    head += ["AUC network", "AUC geometry", "AUC walk"]
    keys = ["walk_on_edge", "geometry_on_edge"] + [f"dice_band_{b:g}" for b in bands]
    keys += ["auc_network", "auc_geometry", "auc_walk"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setting in dict.fromkeys(r["setting"] for r in rows):
        group = [r for r in rows if r["setting"] == setting]
        cells = [setting, str(len(group))]
        for key in keys:
            cells.append(f"{np.nanmean([r[key] for r in group]):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for setting in dict.fromkeys(r["setting"] for r in rows):
        group = [r for r in rows if r["setting"] == setting]
        ax.scatter([r["geometry_on_edge"] for r in group], [r["walk_on_edge"] for r in group],
                   label=setting, s=18)  # fmt: skip
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="geometry alone on the truth's edge (median)",
           ylabel="guided walk on the truth's edge (median)")  # fmt: skip
    ax.legend()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="the data set evaluated")
    parser.add_argument("--out", required=True, type=Path, help="the `yoho evaluate` folder")
    parser.add_argument("--settings", required=True, help="comma-separated, e.g. m0.15_k1")
    parser.add_argument("--bands", default="0.3,0.2,0.1,0.05")
    parser.add_argument("--profile", default="cpu_guided")
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        bands = [float(b) for b in args.bands.split(",") if b.strip()]
    except ValueError:
        raise SystemExit(
            f"--bands: not a comma-separated list of numbers: {args.bands!r}"
        ) from None
    if not all(0.0 <= b <= 1.0 for b in bands):
        raise SystemExit(f"--bands: each band must lie in [0, 1], got {args.bands!r}")
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    try:
        rows = measure(args.data, args.out, settings, bands, args.profile)
    except (FileNotFoundError, ValueError) as err:  # a missing file, a map of the wrong size
        raise SystemExit(str(err)) from None
    report = args.report or args.out / "report" / "walker_levels"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(report / "walker_levels.csv", buffer.getvalue())
    table = summary(rows, bands)
    write_text(report / "walker_levels.md", table)
    write_figure(report / "walker_levels.png", figure(rows))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
