"""YOHO on a GPU: the `paper` profile on one real image — seconds per image and Dice.

Part of bench/gpu_check.sh (a lent GPU machine; nothing can be downloaded there). The image is
the first Kvasir-SEG sample in ../shared/data (SHARED_DATA overrides; `--image/--mask` choose
another), else a synthetic 480² image when the data is not on that machine (said so in the
output). The simulated physician (default oracle protocol) makes the annotation. Training
stops at `--max-seconds` (the shell script's limit is 240 s): the result then gives the steps
reached and the extrapolated time of the full schedule, and no Dice. The default profile
(`--compare`, the CPU default) then runs on the same image and device for comparison. Results:
bench/results/gpu_check_yoho.json.

    python bench/gpu_check_yoho.py                 # on the GPU machine
    python bench/gpu_check_yoho.py --smoke         # CPU check of this script: `tiny` profile
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def _pick_image(args) -> tuple[str, object, object]:
    import numpy as np

    from yoho.io import read_image, read_mask
    from yoho.synthetic import synthetic_endoscopy

    if args.image:
        image = read_image(args.image)
        if not args.mask:
            raise SystemExit("error: --image needs --mask")
        return Path(args.image).name, image, read_mask(args.mask, image.shape)
    data = Path(os.environ.get("SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    kvasir = data / "seg" / "kvasir_seg_sample"
    images = sorted((kvasir / "images").glob("*.jpg")) if kvasir.is_dir() else []
    if images and not args.smoke:
        path = images[0]
        image = read_image(path)
        return path.name, image, read_mask(kvasir / "masks" / path.name, image.shape)
    size = 96 if args.smoke else 480
    image, mask = synthetic_endoscopy(size=size, seed=0)
    return f"synthetic-{size}-seed0", image, np.asarray(mask, bool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, `tiny` profile, synthetic")
    parser.add_argument("--profile", default=None, help="default: paper (tiny with --smoke)")
    parser.add_argument("--image")
    parser.add_argument("--mask")
    parser.add_argument("--max-seconds", type=float, default=200.0)
    parser.add_argument(
        "--compare", default=None, help="second profile on the same image (default: the default)"
    )
    parser.add_argument("--out", default=str(HERE / "results" / "gpu_check_yoho.json"))
    args = parser.parse_args(argv)

    import torch

    from yoho.choices import DEFAULT_PROFILE
    from yoho.io import write_json
    from yoho.metrics import dice
    from yoho.physician import simulate_annotation
    from yoho.pipeline import TrainingCancelled, segment
    from yoho.profiles import get_profile

    profile = get_profile(args.profile or ("tiny" if args.smoke else "paper"))
    device = "cpu" if args.smoke else ("cuda" if torch.cuda.is_available() else "cpu")
    name, image, gt = _pick_image(args)
    ann = simulate_annotation(image, gt)
    stamps: list[float] = []
    start = time.perf_counter()

    def progress(step: int, total: int, loss: float) -> None:
        stamps.append(time.perf_counter())
        if step % 100 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.4f} {stamps[-1] - start:.1f} s", flush=True)

    def should_stop() -> bool:
        return time.perf_counter() - start > args.max_seconds

    result = {
        "profile": profile.name,
        "image": name,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "torch": torch.__version__,
        "total_steps": profile.total_steps,
        "max_seconds": args.max_seconds,
    }
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        seg = segment(image, ann, profile, seed=0, device=device, progress=progress,
                      should_stop=should_stop)  # fmt: skip
        result.update(
            finished=True,
            seconds_per_image=seg.timings["total"],
            seconds_train=seg.timings["train"],
            seconds_per_step=seg.timings["train"] / max(1, len(seg.curve)),
            dice=dice(seg.mask, gt),
            dice_without_roi_clip=dice(seg.raw_mask, gt),
        )
    except TrainingCancelled:
        per_step = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1) if stamps else float("nan")
        result.update(
            finished=False,
            steps_done=len(stamps),
            seconds_per_step=per_step,
            seconds_per_image_extrapolated=per_step * profile.total_steps,
            dice=None,
        )
    if device == "cuda":
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    other = get_profile(args.compare or ("tiny" if args.smoke else DEFAULT_PROFILE))
    seg = segment(image, ann, other, seed=0, device=device)
    result["compare"] = {
        "profile": other.name,
        "seconds_per_image": seg.timings["total"],
        "seconds_train": seg.timings["train"],
        "dice": dice(seg.mask, gt),
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
