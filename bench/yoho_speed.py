"""YOHO speed per profile: seconds per image, peak memory and the Dice reached.

Each (profile, image) run happens in a fresh child process so that its peak resident memory
(ru_maxrss) is its own. Images: one synthetic image and the Kvasir-SEG sample images in
../shared/data (SHARED_DATA overrides), annotated by the simulated physician (oracle
protocol). The `paper` profile (1,500 steps of 32×256²) takes hours per image on a CPU: on a
machine without CUDA it is timed over a few steps and the time per image is extrapolated
(marked as such, no Dice). Results: bench/results/yoho_speed.json (rewritten after every run,
and a rerun skips the runs already there, made with the same profile settings, unless --fresh).

`--busy` measures the same runs while another CPU-heavy job runs beside them: a second process
multiplying matrices on torch's default threads (every core, as an unrelated job would), started
before each run and stopped after it. The timed run then uses the command line's runtime
policy and thread count (idle OpenMP threads sleep, `yoho.threads.configure_cpu_runtime`; the
cores the other job leaves free, `yoho.threads.default_threads`), as a user sharing a machine
runs `yoho`; the other job keeps torch's defaults. Those runs are stored as
`<profile>+busy/<image>`; the issue's goal is at most twice the quiet time. `--images N` keeps the first N images.

    python bench/yoho_speed.py [--profiles tiny,cpu,cpu_tuned,cpu_calibrated,cpu_fused,cpu_guided,paper] [--paper-steps 3] [--fresh] [--busy] [--images N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "yoho_speed.json"


def _images() -> list[tuple[str, str | None]]:
    """(name, image path or None for the synthetic image)."""
    from yoho.demo import shared_data_dir

    items: list[tuple[str, str | None]] = [("synthetic-256-seed0", None)]
    kvasir = shared_data_dir() / "seg" / "kvasir_seg_sample" / "images"
    if kvasir.is_dir():
        items += [(p.stem, str(p)) for p in sorted(kvasir.glob("*.jpg"))]
    return items


def profile_hash(profile: str) -> str:
    """A fingerprint of the profile's settings: a stored run of a changed profile is rerun."""
    import hashlib

    from yoho.profiles import get_profile

    settings = json.dumps(get_profile(profile).to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def child(profile: str, image_path: str | None, paper_steps: int, cli_threads: bool) -> dict:
    """One run in this process; returns its figures (printed as JSON by main)."""
    from yoho.threads import configure_cpu_runtime, set_threads

    if cli_threads:  # the command line's runtime policy: before torch starts OpenMP
        configure_cpu_runtime()
    import numpy as np
    import torch

    if cli_threads:  # and its default thread count, measured before the run starts
        set_threads()

    from yoho.io import read_image, read_mask
    from yoho.metrics import dice
    from yoho.physician import simulate_annotation
    from yoho.pipeline import segment
    from yoho.profiles import Phase, get_profile
    from yoho.synthetic import synthetic_endoscopy

    if image_path is None:
        image, gt = synthetic_endoscopy(size=256, seed=0)
    else:
        image = read_image(image_path)
        mask_path = Path(image_path).parent.parent / "masks" / Path(image_path).name
        gt = read_mask(mask_path, image.shape[:2])
    ann = simulate_annotation(image, gt)
    prof = get_profile(profile)
    extrapolated = profile == "paper" and not torch.cuda.is_available()
    if extrapolated:
        # Time the first `paper_steps` steps of the schedule (setup excluded), then scale.
        short = dataclasses.replace(
            prof, steps_per_epoch=paper_steps, phases=(Phase(1, prof.phases[0].lr),)
        )
        stamps: list[float] = []
        result = segment(image, ann, short, progress=lambda *a: stamps.append(time.perf_counter()))
        per_step = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
        seconds = result.timings["setup"] + per_step * prof.total_steps + result.timings["predict"]
        out = {"seconds_per_step": per_step, "dice": None}
    else:
        result = segment(image, ann, prof)
        seconds = result.timings["total"]
        out = {
            "seconds_per_step": result.timings["train"] / max(1, len(result.curve)),
            "dice": dice(result.mask, gt),
            "dice_without_roi_clip": dice(result.raw_mask, gt),
        }
    out.update(
        seconds_per_image=seconds,
        extrapolated=extrapolated,
        steps=prof.total_steps,
        complement=ann.complement,
        device=result.device,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        torch_threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "torch default"),
        final_loss=float(np.mean(result.curve[-10:])),
        profile_hash=profile_hash(profile),
    )
    return out


def busy_loop() -> None:
    """Another CPU-heavy job: matrix products on torch's default threads until killed."""
    import torch

    a = torch.randn(1024, 1024)
    while True:
        a = (a @ a).clamp_(-1.0, 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--profiles", default="tiny,cpu,cpu_tuned,cpu_calibrated,cpu_fused,cpu_guided,paper"
    )
    parser.add_argument("--paper-steps", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--busy", action="store_true", help="beside another CPU-heavy job")
    parser.add_argument("--images", type=int, default=None, help="only the first N images")
    parser.add_argument("--busy-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cli-threads", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("PROFILE", "IMAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.busy_child:
        busy_loop()
    if args.child:
        profile, image = args.child
        image = None if image == "-" else image
        print(json.dumps(child(profile, image, args.paper_steps, args.cli_threads)))
        return 0

    data = {} if args.fresh or not RESULTS.is_file() else json.loads(RESULTS.read_text())
    runs = data.setdefault("runs", {})
    data["machine"] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for profile in args.profiles.split(","):
        images = _images()[: args.images]
        if profile == "paper":
            images = images[:2]  # extrapolated timing: two images say enough
        current = profile_hash(profile)
        for name, path in images:
            key = f"{profile}{'+busy' if args.busy else ''}/{name}"
            if key in runs and runs[key].get("profile_hash") == current:
                print(f"{key}: done earlier ({runs[key]['seconds_per_image']:.1f} s)")
                continue
            if key in runs:
                print(f"{key}: the profile changed since the stored run; running it again")
            cmd = [sys.executable, __file__, "--child", profile, path or "-"]
            cmd += ["--paper-steps", str(args.paper_steps)] + (
                ["--cli-threads"] if args.busy else []
            )
            other = None
            if args.busy:
                other = subprocess.Popen([sys.executable, __file__, "--busy-child"])
                time.sleep(2.0)  # let it start working before the timed run does
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True)
            finally:
                if other is not None:
                    other.kill()
                    other.wait()
            if proc.returncode:
                print(proc.stderr[-2000:], file=sys.stderr)
                return proc.returncode
            runs[key] = json.loads(proc.stdout.strip().splitlines()[-1])
            r = runs[key]
            dice = "n/a (extrapolated)" if r["dice"] is None else f"{r['dice']:.4f}"
            print(
                f"{key}: {r['seconds_per_image']:.1f} s/image, {r['seconds_per_step']:.3f} s/step, "
                f"peak {r['peak_rss_mib']:.0f} MiB, Dice {dice}",
                flush=True,
            )
            _write(data)
    summary = {}
    for key, r in runs.items():
        summary.setdefault(key.split("/")[0], []).append(r)
    data["summary"] = {
        profile: {
            "images": len(rs),
            "mean_seconds_per_image": sum(r["seconds_per_image"] for r in rs) / len(rs),
            "max_peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
            "mean_dice": (
                None if any(r["dice"] is None for r in rs) else sum(r["dice"] for r in rs) / len(rs)
            ),
            "extrapolated": any(r["extrapolated"] for r in rs),
        }
        for profile, rs in summary.items()
    }
    _write(data)
    print("\nprofile   images  s/image   peak MiB  mean Dice")
    for profile, s in data["summary"].items():
        dice = "n/a" if s["mean_dice"] is None else f"{s['mean_dice']:.4f}"
        note = " (extrapolated from a few steps)" if s["extrapolated"] else ""
        print(
            f"{profile:8s} {s['images']:6d} {s['mean_seconds_per_image']:8.1f} "
            f"{s['max_peak_rss_mib']:9.0f}  {dice}{note}"
        )
    print(f"wrote {RESULTS}")
    return 0


def _write(data: dict) -> None:
    from yoho.io import write_json

    write_json(RESULTS, data)


if __name__ == "__main__":
    sys.exit(main())
