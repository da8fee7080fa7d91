"""Per-image evaluation jobs and the plain local loop that runs them (the default engine).

An image is an independent job (`ImageJob` → `run_image_job`): simulate the physician's
annotation (saved), run every requested method, save each mask, and compute the metrics
against the ground truth at the original resolution. The job returns its rows; only the
driver writes the results file, so the same job function serves the local loop and Ray.
A failure inside a method becomes a row with its error, and the other methods and images go on.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yoho.evaluation.corrections import (
    CLICK_METHODS,
    baseline_corrector,
    click_curve,
    yoho_corrector,
)
from yoho.evaluation.dataset import Item
from yoho.evaluation.methods import MethodSpec, run_method
from yoho.evaluation.settings import ProtocolSetting, image_seed
from yoho.evaluation.store import ClickStore, ResultStore
from yoho.metrics import all_metrics

__all__ = [
    "ImageJob",
    "run_image_job",
    "pending_jobs",
    "record",
    "run_local",
    "method_dir",
    "Progress",
]

Progress = Callable[[str, list[dict]], None]


@dataclass(frozen=True)
class ImageJob:
    """Everything one worker needs for one image (plain data: it travels to Ray workers)."""

    item: Item
    setting: ProtocolSetting
    methods: tuple[MethodSpec, ...]
    out_dir: Path
    mask_threshold: int = 127
    torch_threads: int | None = None
    save_probability: bool = True
    meta: dict = field(default_factory=dict)
    corrections: int = 0  # simulated corrective clicks per method (0: none)


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label).strip("_")


def method_dir(out_dir: Path, setting: str, method: str, what: str = "masks") -> Path:
    """Where the masks (or probabilities) of one method under one setting are written."""
    return Path(out_dir) / what / setting / _safe(method)


def _error_rows(job: ImageJob, methods, message: str) -> list[dict]:
    return [
        {
            "image": job.item.name,
            "setting": job.setting.label,
            "method": m.label,
            "kind": m.kind,
            "profile": m.profile if m.kind == "yoho" else "",
            "seed": m.seed if m.kind == "yoho" else "",
            "error": message,
        }
        for m in methods
    ]


def run_image_job(job: ImageJob) -> list[dict]:
    """Evaluate every method of `job` on its image; one row per method."""
    from yoho.annotation import save_annotation
    from yoho.io import read_image, read_mask, write_png
    from yoho.physician import simulate_annotation

    if job.torch_threads:
        import torch

        torch.set_num_threads(job.torch_threads)
    try:
        image = read_image(job.item.image)
        gt = read_mask(job.item.mask, image.shape, threshold=job.mask_threshold)
        options = job.setting.oracle(image_seed(job.item.name))
        ann = simulate_annotation(image, gt, options, image_name=job.item.image.name)
        save_annotation(
            ann, Path(job.out_dir) / "annotations" / job.setting.label / f"{job.item.name}.json"
        )
    except Exception as exc:  # a broken image is reported in the CSV, the others go on
        return _error_rows(job, job.methods, f"{type(exc).__name__}: {exc}")
    rows = []
    for spec in job.methods:
        row = _error_rows(job, [spec], "")[0]
        row["complement"] = str(ann.complement)
        row["lesion_fraction"] = float(gt.mean())
        try:
            clicking = job.corrections > 0 and spec.kind in CLICK_METHODS
            output = run_method(spec, image, ann, keep_model=clicking)
            row.update(all_metrics(output.mask, gt))
            row["seconds"] = output.seconds
            row["train_s"] = output.extra.get("train_s", float("nan"))
            write_png(
                method_dir(job.out_dir, job.setting.label, spec.label) / f"{job.item.name}.png",
                output.mask,
            )
            if job.save_probability and output.probability is not None:
                prob = np.clip(np.round(output.probability * 255), 0, 255).astype(np.uint8)
                folder = method_dir(job.out_dir, job.setting.label, spec.label, "probability")
                write_png(folder / f"{job.item.name}.png", prob)
            if clicking:
                row["corrections"] = _click_curve(job, spec, image, gt, ann, output)
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            row["error"] = f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"
        rows.append(row)
    return rows


def _click_curve(job: ImageJob, spec: MethodSpec, image, gt, ann, output) -> list[dict]:
    """Dice after each simulated corrective click for one method (`yoho.evaluation.corrections`)."""
    if spec.kind == "yoho":
        start = output.annotation or ann
        corrector = yoho_corrector(
            image, output.model, output.profile, spec.seed, spec.device, first_mask=output.mask
        )
    else:
        start, corrector = ann, baseline_corrector(spec.kind, image)
    return click_curve(corrector, start, gt, output.mask, job.corrections)


def pending_jobs(
    items: list[Item],
    setting: ProtocolSetting,
    methods: list[MethodSpec],
    out_dir: str | os.PathLike,
    store: ResultStore,
    clicks: ClickStore | None = None,
    **job_options,
) -> list[ImageJob]:
    """One job per image that still misses a successful row (or click curve) for some method."""
    n = job_options.get("corrections", 0)

    def done(item: Item, m: MethodSpec) -> bool:
        if not store.done(item.name, setting.label, m.label):
            return False
        if n and m.kind in CLICK_METHODS and clicks is not None:
            return clicks.done(item.name, setting.label, m.label, n)
        return True

    jobs = []
    for item in items:
        todo = tuple(m for m in methods if not done(item, m))
        if todo:
            jobs.append(ImageJob(item, setting, todo, Path(out_dir), **job_options))
    return jobs


def record(rows: list[dict], store: ResultStore, clicks: ClickStore | None) -> None:
    """Keep a job's rows: the metrics in `store`, any click curves in `clicks`."""
    if clicks is not None:
        for row in rows:
            if row.get("corrections") and not row["error"]:
                clicks.add(row["image"], row["setting"], row["method"], row["corrections"])
    store.add(rows)


def run_local(
    jobs: list[ImageJob],
    store: ResultStore,
    progress: Progress | None = None,
    clicks: ClickStore | None = None,
) -> int:
    """Run the jobs one after the other in this process; returns the number of failed rows."""
    failed = 0
    for job in jobs:
        rows = run_image_job(job)
        record(rows, store, clicks)
        failed += sum(1 for r in rows if r["error"])
        if progress is not None:
            progress(job.item.name, rows)
    return failed
