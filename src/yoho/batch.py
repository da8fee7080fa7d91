"""Segmenting one image into a folder, and a folder of annotated images (`yoho segment-folder`).

`segment_one` is what `yoho segment` does for one image: train, predict, write the mask, the
overlay, the exports and `summary.json` (written last, with a fingerprint of the inputs, so a
rerun with the same inputs skips the image). `segment-folder` runs it for every image of a
folder that has an annotation `ADIR/<image stem>.json`, one output folder per image, and keeps
`summary.csv` (one row per image, rewritten atomically after each image). Killed and started
again, it skips the images whose `summary.json` carries the same fingerprint and redoes the one
it was working on. `--engine ray` runs the images as Ray tasks, as `yoho evaluate` does.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "SegmentRequest",
    "segment_one",
    "find_pairs",
    "run_folder",
    "SUMMARY_COLUMNS",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dcm"}
SUMMARY_COLUMNS = (
    "image", "annotation", "status", "area_px", "area_fraction", "complement", "leak_check",
    "profile", "seed", "seconds", "dicom_seg", "output", "error",
)  # fmt: skip


def fingerprint(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            digest.update(part.read_bytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class SegmentRequest:
    """One image to segment into `out` (plain data: it travels to Ray workers)."""

    image: Path
    annotation: Path
    out: Path
    profile: Any  # a Profile (the object travels, so a registered test profile works too)
    seed: int = 0
    device: str | None = None
    weights: str | None = None
    roi_clip: bool | None = None
    save_model: bool = True
    force: bool = False
    gt: Path | None = None
    torch_threads: int | None = None


def _done_before(req: SegmentRequest, key: str) -> dict | None:
    summary_path = req.out / "summary.json"
    if req.force or not summary_path.is_file() or not (req.out / "mask.png").is_file():
        return None
    try:
        done = json.loads(summary_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return done if done.get("fingerprint") == key else None


def segment_one(
    req: SegmentRequest, progress: Callable[[int, int, float], None] | None = None
) -> tuple[dict, bool]:
    """Segment `req.image` into `req.out`; returns (summary, True when it was done before)."""
    from yoho.annotation import load_annotation
    from yoho.history import save_round_annotation
    from yoho.io import check_output_folder, read_image, read_mask
    from yoho.pipeline import segment
    from yoho.predict import write_outputs
    from yoho.train import save_checkpoint

    if req.torch_threads:
        import torch

        torch.set_num_threads(req.torch_threads)
    prof = req.profile
    img = read_image(req.image)
    ann = load_annotation(req.annotation, img.shape)
    check_output_folder(req.out)  # before training, not after it
    truth = read_mask(req.gt, img.shape[:2]) if req.gt is not None else None
    imagenet = req.weights == "imagenet"
    key = fingerprint(
        req.image, req.annotation, prof.to_dict(), req.seed,
        str(None if imagenet else req.weights), imagenet, req.roi_clip, str(req.gt),
    )  # fmt: skip
    done = _done_before(req, key)
    if done is not None:
        return done, True
    result = segment(
        img,
        ann,
        prof,
        seed=req.seed,
        device=req.device,
        progress=progress,
        weights=req.weights,
        roi_clip=req.roi_clip,
        keep_model=req.save_model,
    )
    extra = {"image": str(req.image), "annotation": str(req.annotation), "fingerprint": key}
    if req.gt is not None:
        extra["ground_truth"] = str(req.gt)
    if req.save_model and result.model is not None:
        save_checkpoint(
            req.out / "model.pt",
            result.model,
            {"profile": prof.name, "seed": req.seed, "image": str(req.image),
             "input_size": prof.input_size},
        )  # fmt: skip
    # The annotation next to the result and round 0: `yoho refine` goes on from here.
    save_round_annotation(ann, req.out)
    extra["round"] = 0
    # summary.json is written last: with the fingerprint it marks the run as finished.
    summary = write_outputs(
        req.out,
        img,
        ann,
        result,
        gt=truth,
        extra=extra,
        source=req.image,
        image_name=os.path.relpath(req.image.resolve(), req.out.resolve()),
    )
    return summary, False


# -- a folder -------------------------------------------------------------------------------


def find_pairs(images: Path, annotations: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(image, annotation) pairs of the folder, sorted by name, and the images without one.

    An image's annotation is `annotations/<image stem>.json`. Only the folder's own files are
    taken (not sub-folders); two images with the same stem are refused.
    """
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: image folder not found")
    if not annotations.is_dir():
        raise FileNotFoundError(f"{annotations}: annotation folder not found")
    files = sorted(
        p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    stems = [p.stem for p in files]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise ValueError(f"{images}: images share a file stem ({', '.join(twins[:5])})")
    pairs, missing = [], []
    for path in files:
        ann = annotations / f"{path.stem}.json"
        if ann.is_file():
            pairs.append((path, ann))
        else:
            missing.append(path)
    return pairs, missing


def _leak_check_text(check: dict | None) -> str:
    """`fired` when the mask is GrabCut's from the clicks (`yoho.postprocess`, leak check),
    `no` when the check ran and kept the walk, empty when the profile has no check."""
    if not check:
        return ""
    return "fired" if check.get("fired") else "no"


def _row(req: SegmentRequest, status: str, summary: dict | None = None, error: str = "") -> dict:
    summary = summary or {}
    exports = summary.get("exports", {})
    return {
        "image": req.image.name,
        "annotation": str(req.annotation),
        "status": status,
        "area_px": summary.get("area_px", ""),
        "area_fraction": summary.get("area_fraction", ""),
        "complement": summary.get("complement", ""),
        "leak_check": _leak_check_text(summary.get("leak_check")),
        "profile": req.profile.name,
        "seed": req.seed,
        "seconds": (summary.get("timings_s") or {}).get("total", ""),
        "dicom_seg": "yes" if exports.get("dicom_seg", "").endswith(".dcm") else "no",
        "output": req.out.name,
        "error": error,
    }


def run_request(req: SegmentRequest) -> dict:
    """One image, never raising: the summary CSV's row for it."""
    start = time.perf_counter()
    try:
        summary, before = segment_one(req)
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" ({Path(last.filename).name}:{last.lineno})"
        row = _row(req, "failed", error=f"{type(exc).__name__}: {exc}{where}")
        row["seconds"] = round(time.perf_counter() - start, 3)
        return row
    return _row(req, "done before" if before else "done", summary)


class SummaryTable:
    """`summary.csv`: one row per image, rewritten atomically after every image."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict] = {}
        if path.is_file():
            try:
                with path.open(newline="", encoding="utf-8-sig") as handle:
                    for row in csv.DictReader(handle):
                        if row.get("image"):
                            self.rows[row["image"]] = row
            except (UnicodeDecodeError, csv.Error) as exc:
                # A spreadsheet that re-saved it in its own encoding; the images' folders are
                # the record of what is done, so moving the file away loses nothing.
                raise ValueError(
                    f"{path}: not a readable summary ({exc}); save it as UTF-8 CSV, or move it "
                    "away: it is rebuilt from the images' folders"
                ) from None

    def add(self, row: dict) -> None:
        self.rows[row["image"]] = row
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, SUMMARY_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for name in sorted(self.rows):
            writer.writerow(self.rows[name])
        from yoho.io import write_text

        write_text(self.path, buffer.getvalue())


def run_folder(
    requests: list[SegmentRequest],
    table: SummaryTable,
    advance: Callable[[dict], None] | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    cpus_per_job: float = 1.0,
    gpus_per_job: float = 0.0,
) -> int:
    """Run every request (here or on Ray), adding each row to `table` as it finishes;
    returns the number of failed images."""
    failed = 0

    def record(row: dict) -> None:
        nonlocal failed
        table.add(row)
        failed += row["status"] == "failed"
        if advance is not None:
            advance(row)

    if engine == "local":
        for req in requests:
            record(run_request(req))
        return failed
    if engine != "ray":
        raise ValueError(f"--engine must be local or ray, got {engine!r}")
    import ray

    from yoho.evaluation.ray_engine import start_ray

    if cpus_per_job <= 0 or gpus_per_job < 0:
        raise ValueError("cpus per job must be > 0 and gpus per job >= 0")
    started = start_ray(ray_address)
    task = ray.remote(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=0)(run_request)
    threads = max(1, int(cpus_per_job))
    pending = {
        task.remote(replace(req, torch_threads=req.torch_threads or threads)): req
        for req in requests
    }
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            req = pending.pop(ready[0])
            try:
                row = ray.get(ready[0])
            except Exception as exc:  # the task itself died: report its image, go on
                row = _row(req, "failed", error=f"ray task failed: {type(exc).__name__}")
            record(row)
    finally:
        if started:
            ray.shutdown()
    return failed
