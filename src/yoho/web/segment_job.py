"""What one web job does: train on the image, segment it, write the files the page shows.

The work runs in a child process (spawned, not forked: the server has threads, and torch's
state does not survive a fork), for two reasons:

- cancel reaches every phase. The training loop could poll for a cancel between steps, but
  reading the image, building the patch bank, rendering and predicting cannot be
  interrupted from inside; a process can be ended in any of them.
- a job stuck in one phase (no progress for `phase_timeout` seconds) is stopped and fails
  with the phase named, and the one-worker queue moves on to the next job.

The child reports ("phase", name), ("progress", step, total, loss), then ("done", summary) or
("failed", exception type, message) on a queue; the parent relays progress to the job.
"""

from __future__ import annotations

import builtins
import multiprocessing
import queue
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from yoho.io import write_bytes
from yoho.overlay import PRED
from yoho.web.jobs import Job, ProgressFn, StopFn
from yoho.web.store import ImageStore

__all__ = ["contour_layer", "make_runner", "JobStuck", "PHASE_TIMEOUT"]

PHASE_TIMEOUT = 900.0  # seconds without any progress in one phase before a job is stopped
POLL_SECONDS = 0.1


class JobStuck(RuntimeError):
    """A job made no progress in one phase for longer than the limit."""


def contour_layer(mask: np.ndarray, thickness: int | None = None) -> np.ndarray:
    """RGBA picture of the mask's contour (opaque) over a light tint, transparent elsewhere.

    The page draws it over the image with the opacity the user picks; the tint is light so that
    the tissue under the lesion stays visible.
    """
    height, width = mask.shape
    if thickness is None:
        thickness = max(2, round(max(height, width) / 250))
    layer = np.zeros((height, width, 4), np.uint8)
    layer[mask] = (*PRED, 70)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(layer, contours, -1, (*PRED, 255), thickness, lineType=cv2.LINE_AA)
    return layer


def _png_rgba(layer: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(layer, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("PNG encoding of the contour layer failed")
    return encoded.tobytes()


def _segment_in_child(
    messages, image_path: Path, folder: Path, profile, seed: int, device, threads: int, extra
) -> None:
    """The child process: every step of the job, reporting on `messages`."""
    try:
        import torch

        torch.set_num_threads(threads)
        from yoho.annotation import load_annotation
        from yoho.io import read_image
        from yoho.pipeline import segment
        from yoho.predict import write_outputs

        messages.put(("phase", "reading the image and annotation"))
        image = read_image(image_path)
        annotation = load_annotation(folder / "annotation.json", image.shape)
        messages.put(("phase", "rendering the training set"))

        def progress(step: int, total: int, loss: float) -> None:
            messages.put(("progress", step, total, loss))

        result = segment(
            image, annotation, profile, seed=seed, device=device, progress=progress,
            keep_model=True,
        )  # fmt: skip
        messages.put(("phase", "writing the results"))
        # The network stays with the result: correction rounds go on from it (refine_job.py).
        from yoho.train import save_checkpoint

        save_checkpoint(
            folder / "model.pt", result.model, {"profile": result.profile, "seed": seed}
        )
        write_bytes(folder / "contour.png", _png_rgba(contour_layer(result.mask)))
        summary = write_outputs(folder, image, annotation, result, extra=extra)
        messages.put(("done", summary))
    except BaseException as exc:  # reported to the parent, which fails the job with it
        messages.put(("failed", type(exc).__name__, str(exc)))


def _rebuild(name: str, message: str) -> Exception:
    """The child's exception in the parent: same built-in type where there is one."""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:
            pass
    return RuntimeError(f"{name}: {message}")


def run_in_child(
    target,
    args: tuple,
    progress: ProgressFn,
    should_stop: StopFn,
    phase_timeout: float = PHASE_TIMEOUT,
) -> dict[str, Any]:
    """Run `target(messages, *args)` in a spawned process, relaying its messages.

    Raises TrainingCancelled when `should_stop()` turns true (the process is ended, whatever
    phase it is in), JobStuck when no message arrived for `phase_timeout` seconds, and the
    child's own error when it failed.
    """
    from yoho.pipeline import TrainingCancelled

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    child = context.Process(target=target, args=(messages, *args), daemon=True)
    child.start()
    phase, last = "starting", time.monotonic()
    try:
        while True:
            if should_stop():
                raise TrainingCancelled(f"cancelled while {phase}")
            try:
                message = messages.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not child.is_alive() and messages.empty():
                    raise RuntimeError(
                        f"the job's process ended unexpectedly (exit code {child.exitcode}) "
                        f"while {phase}"
                    ) from None
                if time.monotonic() - last > phase_timeout:
                    raise JobStuck(
                        f"no progress for {phase_timeout:g} s while {phase}; the job was stopped"
                    ) from None
                continue
            last = time.monotonic()
            kind = message[0]
            if kind == "phase":
                phase = message[1]
            elif kind == "progress":
                step, total, loss = message[1:]
                phase = "training" if step < total else "predicting"
                progress(step, total, loss)
            elif kind == "done":
                return message[1]
            elif kind == "failed":
                raise _rebuild(message[1], message[2])
    finally:
        if child.is_alive():
            child.terminate()
            child.join(5)
            if child.is_alive():
                child.kill()
        child.join(5)
        messages.cancel_join_thread()
        messages.close()


def make_runner(
    store: ImageStore,
    device: str | None = None,
    phase_timeout: float = PHASE_TIMEOUT,
    threads: int | None = None,
):
    """The job runner for `JobQueue`: segments the job's image with the job's annotation.

    `threads`: torch threads of every job; None measures them when each job starts
    (`yoho.threads.default_threads`), because a server runs for days and the machine's other
    work comes and goes (a second worker's job counts as other work too).
    """
    from yoho.profiles import get_profile
    from yoho.threads import default_threads

    def run(job: Job, progress: ProgressFn, should_stop: StopFn) -> dict:
        job_threads = threads or default_threads()
        if getattr(job, "kind", "segment") == "refine":  # a correction round (refine_job.py)
            from yoho.web.refine_job import run_refine

            return run_refine(store, job, progress, should_stop, device, phase_timeout, job_threads)
        folder = store.job_dir(job.image_id, job.id)
        image_path = store.image_path(job.image_id)
        # The profile object itself travels: one registered in this process only (a test's,
        # a notebook's) is unknown to the child by name.
        profile = get_profile(job.profile)
        extra = {"image_id": job.image_id, "job_id": job.id, "round": 0}
        args = (image_path, folder, profile, job.seed, device, job_threads, extra)
        return run_in_child(_segment_in_child, args, progress, should_stop, phase_timeout)

    return run
