"""The ablation table: each ablated YOHO against the full YOHO of the same profile, paired.

An ablation run (`--ablations no_edge`) is usually made on fewer images than the main run, so
every row compares the two on exactly the images both finished. Two columns per pair: the
final mask (after the profile's post-processing) and, where both runs saved it, the network's
own map clipped to the ROI (the `[no_postprocess]` variant) — the GrabCut refinement of
`cpu_tuned` can hide what an ablation does to the network.
"""

from __future__ import annotations

import re

import numpy as np

from yoho.evaluation.settings import ABLATIONS
from yoho.evaluation.store import ResultStore

__all__ = ["ablation_table"]

_LABEL = re.compile(r"^yoho\((?P<profile>[^;\]]+); (?P<ablations>[^)]+)\)$")
NETWORK_ONLY = "no_postprocess"


def _paired(store: ResultStore, setting: str, a: str, b: str) -> tuple[int, float, float, int]:
    """(images, mean Dice of a, mean Dice of b, images where a > b) on the images both did."""
    da = {r["image"]: r["dice"] for r in store.select(setting, [a])}
    db = {r["image"]: r["dice"] for r in store.select(setting, [b])}
    common = sorted(set(da) & set(db))
    if not common:
        return 0, float("nan"), float("nan"), 0
    va, vb = np.array([da[i] for i in common]), np.array([db[i] for i in common])
    return len(common), float(va.mean()), float(vb.mean()), int((va > vb).sum())


def ablation_table(store: ResultStore, setting: str) -> tuple[str, list[dict]]:
    """Markdown table and rows of every ablated YOHO run under `setting` (empty if none)."""
    labels = sorted({r["method"] for r in store.select(setting)})
    rows = []
    for label in labels:
        match = _LABEL.match(label)
        if not match:
            continue
        full = f"yoho({match['profile']})"
        n, ablated, reference, wins = _paired(store, setting, label, full)
        if n == 0:
            continue
        names = match["ablations"].split("+")
        row = {
            "ablation": match["ablations"],
            "what": "; ".join(ABLATIONS[a][0] if a in ABLATIONS else a for a in names),
            "reference": full,
            "images": n,
            "dice": ablated,
            "reference_dice": reference,
            "delta": ablated - reference,
            "wins": wins,
        }
        m, net_a, net_r, _ = _paired(
            store, setting, f"{label} [{NETWORK_ONLY}]", f"{full} [{NETWORK_ONLY}]"
        )
        row["network_only"] = (
            {"images": m, "dice": net_a, "reference_dice": net_r, "delta": net_a - net_r}
            if m
            else None
        )
        rows.append(row)
    if not rows:
        return "", rows
    lines = [
        f"YOHO ablations under {setting}, each paired with the full model on the images both "
        "finished; Δ = ablated − full. 'Network only' = the network's map with the ROI clip, "
        "no post-processing.",
        "",
        "| ablation | switches off | images | Dice ablated | Dice full | Δ | ablated better on "
        "| network only: ablated / full (Δ) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        net = r["network_only"]
        net_cell = (
            f"{net['dice']:.3f} / {net['reference_dice']:.3f} ({net['delta']:+.3f})" if net else "–"
        )
        lines.append(
            f"| `{r['ablation']}` | {r['what']} | {r['images']} | {r['dice']:.3f} "
            f"| {r['reference_dice']:.3f} | {r['delta']:+.3f} | {r['wins']}/{r['images']} "
            f"| {net_cell} |"
        )
    return "\n".join(lines) + "\n", rows
