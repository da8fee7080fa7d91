"""YOHO correction rounds: seconds per round (`yoho.refine`) and the Dice they reach.

Per image: one first segmentation (the default profile, network kept), then up to `--rounds`
simulated corrective clicks (`yoho.evaluation.clicks`, the NoC protocol), each one refine
round given the mask it corrects (as the CLI and the web tool do). Reported per image and
overall: seconds per round (mean, max), the first segmentation's seconds, peak resident
memory, and the Dice after each round. Images: one
synthetic image and the Kvasir-SEG sample images in ../shared/data (SHARED_DATA overrides),
annotated by the simulated physician (`--margin`, `--lesion-circles`: its protocol; a loose ROI
makes the random walker's problem and GrabCut's larger). Each round's time is split into
training and prediction (the map, the walker, GrabCut). Results:
bench/results/yoho_refine_speed.json (a non-default protocol: yoho_refine_speed_m<margin>_k<k>.json).

    python bench/yoho_refine_speed.py [--profile cpu_guided] [--rounds 5] [--threads 2]
        [--margin 0.15] [--lesion-circles 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "yoho_refine_speed.json"


def _images() -> list[tuple[str, object, object]]:
    from yoho.demo import shared_data_dir
    from yoho.io import read_image, read_mask
    from yoho.synthetic import synthetic_endoscopy

    image, gt = synthetic_endoscopy(size=256, seed=0)
    items = [("synthetic-256-seed0", image, gt > 0)]
    kvasir = shared_data_dir() / "seg" / "kvasir_seg_sample"
    for path in sorted((kvasir / "images").glob("*.jpg")):
        image = read_image(path)
        items.append((path.stem, image, read_mask(kvasir / "masks" / path.name, image.shape[:2])))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu_guided")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--margin", type=float, default=0.15, help="ROI margin (× diameter)")
    parser.add_argument("--lesion-circles", type=int, default=3)
    args = parser.parse_args()
    results = RESULTS
    if (args.margin, args.lesion_circles) != (0.15, 3):
        results = RESULTS.with_name(f"yoho_refine_speed_m{args.margin}_k{args.lesion_circles}.json")

    from yoho.threads import set_threads

    threads = set_threads(args.threads)
    import numpy as np

    from yoho.evaluation.clicks import next_click
    from yoho.metrics import dice
    from yoho.physician import OracleOptions, simulate_annotation
    from yoho.pipeline import segment
    from yoho.refine import refine

    runs = []
    for name, image, gt in _images()[: args.limit]:
        oracle = OracleOptions(margin_factor=args.margin, lesion_circles=args.lesion_circles)
        ann = simulate_annotation(image, gt, oracle)
        t0 = time.perf_counter()
        first = segment(image, ann, args.profile, keep_model=True)
        first_s = time.perf_counter() - t0
        model, mask, seconds, dices = first.model, first.mask, [], [dice(first.mask, gt)]
        train_s, predict_s = [], []
        for _ in range(args.rounds):
            click = next_click(mask, gt, ann)
            if click is None:
                break
            ann = ann.with_round(click.as_round())
            t0 = time.perf_counter()
            result = refine(image, ann, model, args.profile, previous_mask=mask)
            seconds.append(time.perf_counter() - t0)
            train_s.append(result.timings["setup"] + result.timings["train"])
            predict_s.append(result.timings["predict"])
            model, mask = result.model, result.mask
            dices.append(dice(mask, gt))
        run = {
            "image": name,
            "size": [int(image.shape[1]), int(image.shape[0])],
            "first_segmentation_s": round(first_s, 2),
            "round_s": [round(s, 2) for s in seconds],
            "round_train_s": [round(s, 2) for s in train_s],
            "round_predict_s": [round(s, 2) for s in predict_s],
            "dice_per_click": [round(d, 4) for d in dices],
        }
        runs.append(run)
        print(
            f"{name[:24]:24s} {image.shape[1]}x{image.shape[0]}  first {first_s:6.1f} s  "
            f"rounds {' '.join(f'{s:.1f}' for s in seconds)} s (training "
            f"{' '.join(f'{s:.1f}' for s in train_s)} s)  Dice "
            f"{' '.join(f'{d:.3f}' for d in dices)}",
            flush=True,
        )
    all_rounds = [s for r in runs for s in r["round_s"]]
    figures = {
        "profile": args.profile,
        "threads": threads,
        "protocol": {"margin": args.margin, "lesion_circles": args.lesion_circles},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "seconds_per_round_mean": round(float(np.mean(all_rounds)), 2) if all_rounds else None,
        "seconds_per_round_max": round(float(np.max(all_rounds)), 2) if all_rounds else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": runs,
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_suffix(".tmp")
    tmp.write_text(json.dumps(figures, indent=2) + "\n")
    os.replace(tmp, results)
    print(
        f"seconds per correction round: mean {figures['seconds_per_round_mean']}, max "
        f"{figures['seconds_per_round_max']} ({len(all_rounds)} rounds, {threads} threads); "
        f"peak RSS {figures['peak_rss_mib']} MiB -> {results}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
