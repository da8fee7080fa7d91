"""`cpu_guided`'s leak check recomputed from an evaluation's results.csv, without the maps.

The check (`yoho.postprocess.PostOptions.leak_ratio`) replaces the guided walk's mask by
GrabCut's mask from the clicks alone (the `control_flat_0.4` variant) when the first is more
than `--ratio` times the second's area with three lesion circles or more, and always with a
complement ROI. Both areas follow from a row's precision and recall (area = recall × |lesion| /
precision, and |lesion| cancels in the ratio), so the check's result on every image of a run
made before it existed is exact: the flat row's Dice where it fires, the walk's elsewhere.

    python scripts/yoho_leak_check.py RESULTS.csv --out FOLDER [--ratio 1.6]
        [--walk 'yoho(cpu_fused) [guide_random_walker]'] [--flat ... [control_flat_0.4]]
        [--control ... [guide_control_random_walker]] [--subset every4 --data DIR]

Writes FOLDER/leak_check.csv (one row per image: both Dice values, the area ratio, whether the
check fired, the checked Dice for YOHO and for its network-free control), leak_check.md and
leak_check.png (YOHO's Dice against GrabCut's per image, an arrow where the check fired).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import defaultdict
from pathlib import Path

from yoho.evaluation.store import ResultStore
from yoho.io import write_figure, write_text
from yoho.postprocess import LEAK_MIN_CIRCLES

BASELINES = ("grabcut", "random_walker", "trainable")


def area(row: dict) -> float:
    """The mask's area in lesion areas (recall / precision); 0 for an empty mask."""
    precision = row["precision"]
    return row["recall"] / precision if precision > 0 else 0.0


def checked(
    walk: dict, flat: dict, ratio: float, circles: int, complement: bool
) -> tuple[float, bool, float]:
    """(Dice after the check, whether it fired, area ratio walk / flat)."""
    r = area(walk) / max(area(flat), 1e-9)
    fire = complement or (circles >= LEAK_MIN_CIRCLES and r > ratio)
    return (flat if fire else walk)["dice"], fire, r


def figure(table: list[dict], ratio: float, path: Path) -> None:
    """YOHO's Dice against GrabCut's per image; an arrow from the walk to the checked result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    kept = [t for t in table if not t["fired"]]
    ax.scatter([t["grabcut"] for t in kept], [t["walk"] for t in kept], s=12, c="tab:blue",
               alpha=0.6, label="check did not fire")  # fmt: skip
    for t in (t for t in table if t["fired"]):
        ax.annotate("", (t["grabcut"], t["checked"]), (t["grabcut"], t["walk"]),
                    arrowprops=dict(arrowstyle="->", color="tab:red"))  # fmt: skip
    ax.scatter([], [], c="tab:red", marker=r"$\uparrow$", label=f"fired (ratio > {ratio:g})")
    low = min(min(t["grabcut"], t["walk"]) for t in table) - 0.02
    ax.plot([low, 1], [low, 1], color="grey", lw=0.8)
    ax.set(xlim=(low, 1), ylim=(low, 1), xlabel="GrabCut Dice", ylabel="YOHO Dice",
           title=f"Leak check, {len(table)} images")  # fmt: skip
    ax.legend(loc="lower right")
    fig.tight_layout()
    write_figure(path, fig, dpi=120, tight=False)  # atomic, as every file the evaluation writes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--ratio", type=float, default=1.6)
    p.add_argument("--walk", default="yoho(cpu_fused) [guide_random_walker]")
    p.add_argument("--flat", default="yoho(cpu_fused) [control_flat_0.4]")
    p.add_argument("--control", default="yoho(cpu_fused) [guide_control_random_walker]")
    p.add_argument("--subset", help="also report this subset (every4 or a file); needs --data")
    p.add_argument("--data", type=Path)
    a = p.parse_args(argv)

    if not a.results.is_file():
        sys.exit(f"{a.results}: results file not found")
    try:  # the evaluation's own reader: numbers parsed, damaged rows named and left out
        store = ResultStore(a.results)
    except ValueError as exc:
        sys.exit(str(exc))
    for warning in store.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rows: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for row in store.select():
        rows[(row["image"], row["setting"])][row["method"]] = row
    table = []
    for (image, setting), m in sorted(rows.items()):
        if a.walk not in m or a.flat not in m:
            continue
        k = re.search(r"_k(\d+)", setting)
        circles = int(k.group(1)) if k else 0
        # Reprocessed variant rows leave `complement` empty: the image's other rows carry it.
        complement = any(r["complement"] == "True" for r in m.values())
        dice, fired, r = checked(m[a.walk], m[a.flat], a.ratio, circles, complement)
        control = (
            checked(m[a.control], m[a.flat], a.ratio, circles, complement)[0]
            if a.control in m
            else None
        )
        others = {b: m[b]["dice"] for b in BASELINES if b in m}
        table.append(dict(image=image, setting=setting, complement=complement,
                          walk=m[a.walk]["dice"], flat=m[a.flat]["dice"], area_ratio=round(r, 4), fired=fired,
                          checked=dice, control_checked=control, **others))  # fmt: skip
    if not table:
        sys.exit(f"{a.results}: no image has both {a.walk!r} and {a.flat!r} rows")

    groups = {"all": table}
    if a.subset:
        from yoho.evaluation.dataset import load_dataset, select_subset

        names = {i.name for i in select_subset(load_dataset(a.data), a.subset)}
        groups[a.subset] = [t for t in table if t["image"] in names]
        groups[f"not {a.subset}"] = [t for t in table if t["image"] not in names]

    def mean(ts, key):
        values = [t[key] for t in ts if t.get(key) is not None]
        return sum(values) / len(values) if values else float("nan")

    lines = [
        f"Leak check at ratio {a.ratio} recomputed from `{a.results.name}` "
        f"(walk: `{a.walk}`; GrabCut from the clicks: `{a.flat}`).",
        "",
        "| images | n | fired | walk | **checked** | control checked | flat | "
        + " | ".join(BASELINES)
        + " | checked − best other |",
        "|---|---|---|---|---|---|---|" + "---|" * len(BASELINES) + "---|",
    ]
    for name, ts in groups.items():
        best = max((mean(ts, b) for b in BASELINES if b in ts[0]), default=float("nan"))
        lines.append(
            f"| {name} | {len(ts)} | {sum(t['fired'] for t in ts)} | {mean(ts, 'walk'):.4f} | "
            f"**{mean(ts, 'checked'):.4f}** | {mean(ts, 'control_checked'):.4f} | "
            f"{mean(ts, 'flat'):.4f} | "
            + " | ".join(f"{mean(ts, b):.4f}" for b in BASELINES)
            + f" | {mean(ts, 'checked') - best:+.4f} |"
        )
    fired = [t for t in table if t["fired"]]
    lines += ["", f"Fired on {len(fired)} image(s):", ""]
    lines += [f"- {t['image']} ({t['setting']}): walk {t['walk']:.3f} → {t['checked']:.3f}, "
              f"area ratio {t['area_ratio']:.2f}" for t in fired]  # fmt: skip
    a.out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(key for t in table for key in t))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    write_text(a.out / "leak_check.csv", buffer.getvalue())
    write_text(a.out / "leak_check.md", "\n".join(lines) + "\n")
    if all("grabcut" in t for t in table):
        figure(table, a.ratio, a.out / "leak_check.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
