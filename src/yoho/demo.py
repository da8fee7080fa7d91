"""`make demo` / `yoho demo`: segment one synthetic image and one real Kvasir-SEG image.

Nothing is downloaded. The real image is taken from `../shared/data/seg/kvasir_seg_sample`
(relative to the repository; `SHARED_DATA` overrides the data folder) when it exists. Both use
the simulated physician (oracle protocol) for the annotation and the default profile.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from yoho.annotation import save_annotation
from yoho.console import training_bar
from yoho.io import read_image, read_mask, write_png
from yoho.physician import simulate_annotation
from yoho.pipeline import segment
from yoho.predict import write_outputs
from yoho.profiles import DEFAULT_PROFILE, get_profile
from yoho.synthetic import synthetic_endoscopy

__all__ = ["run", "shared_data_dir"]

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The shared data folder: $SHARED_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


def _one(name: str, image: np.ndarray, gt: np.ndarray, out: Path, profile: str) -> float:
    out.mkdir(parents=True, exist_ok=True)
    write_png(out / "image.png", image)
    write_png(out / "ground_truth.png", gt)
    ann = simulate_annotation(image, gt, image_name="image.png")
    save_annotation(ann, out / "annotation.json")
    prof = get_profile(profile)
    with training_bar(f"{name} ({prof.name})", prof.total_steps) as progress:
        result = segment(image, ann, prof, seed=0, progress=progress)
    summary = write_outputs(out, image, ann, result, gt=gt, extra={"image": name})
    print(
        f"  {name}: Dice {summary['dice']:.4f} (without ROI clip "
        f"{summary['dice_without_roi_clip']:.4f}), {result.timings['total']:.1f} s "
        f"-> {out / 'overlay.png'}"
    )
    return summary["dice"]


def run(out_dir: Path, profile: str = DEFAULT_PROFILE) -> None:
    """Segment a synthetic image and (if available) the first Kvasir-SEG sample image."""
    out_dir = Path(out_dir)
    print(f"YOHO demo (profile {profile}, simulated physician = oracle protocol)")
    image, gt = synthetic_endoscopy(size=256, seed=0)
    _one("synthetic", image, gt, out_dir / "synthetic", profile)
    kvasir = shared_data_dir() / "seg" / "kvasir_seg_sample"
    images = sorted((kvasir / "images").glob("*.jpg")) if kvasir.is_dir() else []
    if not images:
        print(f"  no Kvasir-SEG sample at {kvasir}: real-image part skipped")
        return
    path = images[0]
    image = read_image(path)
    gt = read_mask(kvasir / "masks" / path.name, image.shape[:2])
    _one(f"kvasir {path.stem}", image, gt, out_dir / f"kvasir_{path.stem}", profile)
