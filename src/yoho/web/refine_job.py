"""Correction rounds in the web tool: refine a finished result in its own job folder.

After a segmentation job is done, the physician adds correction circles on the result (lesion
where the outline missed lesion, normal where it took in normal tissue) and presses Refine. That
queues a `RefineJob` on the same queue as the segmentations and runs it the same way: in a
spawned child process (`yoho.web.segment_job.run_in_child`), so progress, cancel and the
stuck-phase timeout behave as for Segment. The child continues training the job's saved network
(`yoho.refine.refine`: warm start, a few steps) with every circle so far and writes the new
round's files into a staging folder (`.refine/`); the worker thread then archives the current
round under `history/round_NN/` (`yoho.history`) and moves the new files in, summary.json last.
A round that is cancelled or fails therefore leaves the job folder as it was.

Undo brings the previous round back (`yoho.history.undo`). Every file of a round is archived
and restored (contour.png and the exports included); the job records (job.json, refine.json)
are not a round's and stay as they are.

The refine job has its own id (its progress, events and cancel use the ordinary job endpoints);
its record is kept as `refine.json` in the result's folder, so it never reads as a result.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from yoho.annotation import Circle, CorrectionRound, load_annotation, validate_annotation
from yoho.history import (
    archive_current,
    current_mask,
    current_round,
    round_files,
    rounds_on_disk,
)
from yoho.history import undo as history_undo
from yoho.io import write_bytes, write_json
from yoho.profiles import get_profile
from yoho.web.errors import Conflict, NotFound, Unprocessable
from yoho.web.jobs import TERMINAL, Job, JobQueue, ProgressFn, StopFn, new_job_id
from yoho.web.store import ImageStore

__all__ = [
    "RefineJob",
    "RefineRequest",
    "new_refine_job",
    "run_refine",
    "rounds_info",
    "undo_round",
    "active_refine",
    "refuse_while_refining",
    "write_refine_record",
]

STAGING = ".refine"
REFINE_RECORD = "refine.json"
RECORDS = ("job.json", REFINE_RECORD)  # the jobs' own records: not part of any round
MAX_CIRCLES = 50  # per class and round


class CircleRequest(BaseModel):
    x: float = Field(..., allow_inf_nan=False)
    y: float = Field(..., allow_inf_nan=False)
    r: float = Field(..., gt=0, allow_inf_nan=False)


class RefineRequest(BaseModel):
    """The body of POST .../jobs/{job}/refine: the round's new circles, in image pixels."""

    lesion_circles: list[CircleRequest] = Field(default_factory=list, max_length=MAX_CIRCLES)
    normal_circles: list[CircleRequest] = Field(default_factory=list, max_length=MAX_CIRCLES)

    def circles(self, key: str) -> list[dict[str, float]]:
        return [c.model_dump() for c in getattr(self, key)]


@dataclass
class RefineJob(Job):
    """A correction round of the result of job `target` (same image, same folder)."""

    kind: ClassVar[str] = "refine"
    target: str = ""
    round: int = 0
    lesion_circles: list[dict[str, float]] = field(default_factory=list)
    normal_circles: list[dict[str, float]] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return super().snapshot() | {
            "kind": self.kind,
            "target": self.target,
            "round": self.round,
            "lesion_circles": self.lesion_circles,
            "normal_circles": self.normal_circles,
        }


# -- the parent side: requests, records, rounds on disk ---------------------------------------


def active_refine(jobs: JobQueue, image_id: str, target: str) -> dict[str, Any] | None:
    """The refine job of this result that is queued or running, if any."""
    for snap in jobs.list():
        if (
            snap.get("kind") == RefineJob.kind
            and snap["image_id"] == image_id
            and snap["target"] == target
            and snap["state"] not in TERMINAL
        ):
            return snap
    return None


def refuse_while_refining(jobs: JobQueue, image_id: str, target: str, doing: str) -> None:
    """Conflict when a round of this result is queued or running (one round at a time)."""
    busy = active_refine(jobs, image_id, target)
    if busy is not None:
        raise Conflict(
            f"cannot {doing}: round {busy['round']} of job {target} is {busy['state']} "
            f"(refine job {busy['id']}); wait for it or cancel it"
        )


def write_refine_record(store: ImageStore, snap: dict[str, Any]) -> None:
    """Persist a refine job's state in its result's folder (never as a job of its own)."""
    write_json(store.job_dir(snap["image_id"], snap["target"]) / REFINE_RECORD, snap)


def _circle(data: dict[str, float]) -> Circle:
    return Circle(float(data["x"]), float(data["y"]), float(data["r"]))


def new_refine_job(
    store: ImageStore,
    target: dict[str, Any],
    lesion_circles: list[dict[str, float]],
    normal_circles: list[dict[str, float]],
) -> RefineJob:
    """Check a refine request against the result `target` (a job snapshot); the job to queue.

    Raises Conflict when the result cannot be refined (not finished, no saved network) and
    Unprocessable when the circles are wrong (each message names the circle and the problem).
    """
    if target.get("kind") == RefineJob.kind:
        raise Conflict(
            f"job {target['id']} is a correction round; refine its result, job {target['target']}"
        )
    if target.get("state") != "done":
        raise Conflict(
            f"job {target['id']} is {target.get('state')}; only a finished result can be refined"
        )
    image_id = target["image_id"]
    folder = store.job_dir(image_id, target["id"])
    if not (folder / "model.pt").is_file():
        raise Conflict(
            f"job {target['id']} kept no network (it was made before correction rounds "
            "existed); segment again to refine it"
        )
    if not lesion_circles and not normal_circles:
        raise Unprocessable("a correction round needs at least one lesion or normal circle")
    meta = store.image_meta(image_id)
    shape = (meta["height"], meta["width"])
    try:
        annotation = load_annotation(folder / "annotation.json", shape)
    except ValueError as exc:
        raise Unprocessable(f"the result's annotation cannot be used: {exc}") from None
    new = annotation.with_round(
        CorrectionRound([_circle(c) for c in lesion_circles], [_circle(c) for c in normal_circles])
    )
    try:
        validate_annotation(new, shape, source="correction")
    except ValueError as exc:
        # Name the new circles as the request did (lesion_circles[0]), not by round.
        raise Unprocessable(str(exc).replace(f"rounds[{len(new.rounds) - 1}].", "")) from None
    try:
        profile = get_profile(target["profile"])
    except ValueError as exc:
        raise Conflict(f"cannot refine job {target['id']}: {exc}") from None
    job = RefineJob(
        id=new_job_id(),
        image_id=image_id,
        profile=profile.name,
        seed=int(target.get("seed") or 0),
        target=target["id"],
        round=current_round(folder) + 1,
        lesion_circles=[dict(c) for c in lesion_circles],
        normal_circles=[dict(c) for c in normal_circles],
    )
    job.total = profile.refine.steps
    return job


def rounds_info(folder: Path) -> dict[str, Any]:
    """The result's current round, the rounds kept in history/, its summary and corrections."""
    if not (folder / "summary.json").is_file():
        raise NotFound(f"job {folder.name} has no result (yet)")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    now = current_round(folder)
    try:
        corrections = json.loads((folder / "annotation.json").read_text(encoding="utf-8"))
        corrections = corrections.get("rounds") or []
    except (OSError, ValueError, AttributeError):
        corrections = []
    earlier = [r for r in rounds_on_disk(folder) if r < now]
    return {
        "round": now,
        "history": earlier,
        "can_undo": bool(earlier),
        "refinable": (folder / "model.pt").is_file(),
        "corrections": corrections,
        "summary": summary,
    }


def commit_round(folder: Path, staging: Path) -> None:
    """Archive the current round, then move the staged round in (summary.json last)."""
    archive_current(folder, skip=RECORDS)
    staged = sorted(p.name for p in staging.iterdir() if p.is_file())
    for name in round_files(folder, skip=RECORDS):
        if name not in staged:  # a file of the previous round this one did not write
            (folder / name).unlink(missing_ok=True)
    for name in [n for n in staged if n != "summary.json"] + ["summary.json"]:
        os.replace(staging / name, folder / name)


def undo_round(folder: Path) -> int:
    """Bring the previous round back; returns its number."""
    try:
        return history_undo(folder, skip=RECORDS)
    except ValueError:
        raise Conflict(f"nothing to undo: job {folder.name} is at its first segmentation") from None


# -- the work: a child process computes the round, the worker thread commits it ---------------


def _refine_in_child(
    messages, image_path: Path, folder: Path, staging: Path, job: dict, profile, device, threads
) -> None:
    """The child process: one correction round into `staging`, reporting on `messages`."""
    try:
        import torch

        torch.set_num_threads(threads)
        from yoho.annotation import save_annotation
        from yoho.io import read_image
        from yoho.predict import write_outputs
        from yoho.refine import refine
        from yoho.train import load_checkpoint, save_checkpoint
        from yoho.web.segment_job import _png_rgba, contour_layer

        messages.put(("phase", "reading the image, annotation and network"))
        image = read_image(image_path)
        annotation = load_annotation(folder / "annotation.json", image.shape)
        new = annotation.with_round(
            CorrectionRound(
                [_circle(c) for c in job["lesion_circles"]],
                [_circle(c) for c in job["normal_circles"]],
            )
        )
        validate_annotation(new, image.shape, source="correction")
        model, meta = load_checkpoint(folder / "model.pt")
        messages.put(("phase", "rendering the correction set"))

        def progress(step: int, total: int, loss: float) -> None:
            messages.put(("progress", step, total, loss))

        result = refine(image, new, model, profile, seed=job["seed"], device=device,
                        progress=progress, previous_mask=current_mask(folder, image.shape))  # fmt: skip
        messages.put(("phase", "writing the results"))
        staging.mkdir(parents=True, exist_ok=True)
        number = len(new.rounds)
        save_checkpoint(staging / "model.pt", result.model, {**meta, "round": number})
        save_annotation(new, staging / "annotation.json", validate=False)
        write_bytes(staging / "contour.png", _png_rgba(contour_layer(result.mask)))
        extra = {
            "image_id": job["image_id"],
            "job_id": job["target"],
            "refine_job_id": job["id"],
            "round": number,
            "previous_round": current_round(folder),
            "clicks": sum(r.clicks for r in new.rounds),
        }
        summary = write_outputs(staging, image, new, result, extra=extra)
        messages.put(("done", summary))
    except BaseException as exc:  # reported to the parent, which fails the job with it
        messages.put(("failed", type(exc).__name__, str(exc)))


def run_refine(
    store: ImageStore,
    job: RefineJob,
    progress: ProgressFn,
    should_stop: StopFn,
    device: str | None,
    phase_timeout: float,
    threads: int,
) -> dict[str, Any]:
    """The runner's work for a `RefineJob` (called by `yoho.web.segment_job.make_runner`)."""
    from yoho.web.segment_job import run_in_child

    folder = store.job_dir(job.image_id, job.target)
    staging = folder / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    if current_round(folder) != job.round - 1:
        raise RuntimeError(
            f"the result is at round {current_round(folder)} now, not {job.round - 1} as when "
            "this round was asked for; place the corrections again"
        )
    args = (
        store.image_path(job.image_id),
        folder,
        staging,
        job.snapshot(),
        get_profile(job.profile),
        device,
        threads,
    )
    try:
        summary = run_in_child(_refine_in_child, args, progress, should_stop, phase_timeout)
        commit_round(folder, staging)
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)
