"""A small in-process job queue: worker threads run segmentation jobs one at a time each.

Why not Ray or Celery: the web tool runs on the clinician's own machine and serves one person;
an in-process queue needs no extra service, and one job at a time per worker is exactly the
behaviour wanted (training uses every core; two at once would only slow both down). Scale-out
over many images is `yoho.evaluate`'s business and uses Ray.

A job moves queued → running → done | failed | cancelled. Each change bumps `Job.version`; the
server-sent-event stream sends a snapshot whenever the version moved. A runner that raises is
reported as failed and the worker goes on with the next job.
"""

from __future__ import annotations

import logging
import math
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yoho.pipeline import TrainingCancelled
from yoho.web.errors import Busy, Conflict, NotFound
from yoho.web.store import now

__all__ = ["Job", "JobQueue", "TERMINAL", "new_job_id"]

log = logging.getLogger("yoho.web")

TERMINAL = frozenset({"done", "failed", "cancelled"})
ProgressFn = Callable[[int, int, float], None]
StopFn = Callable[[], bool]
Runner = Callable[["Job", ProgressFn, StopFn], dict]
ChangeFn = Callable[[dict[str, Any]], None]


def new_job_id() -> str:
    return secrets.token_hex(8)


@dataclass
class Job:
    """State of one segmentation job (mutated only under the queue's lock)."""

    id: str
    image_id: str
    profile: str
    seed: int = 0
    state: str = "queued"
    step: int = 0
    total: int = 0
    loss: float | None = None
    error: str | None = None
    created: str = field(default_factory=now)
    started: str | None = None
    finished: str | None = None
    cancel_requested: bool = False
    summary: dict[str, Any] | None = None
    position: int = 0  # jobs ahead of this one while queued
    version: int = 0
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image_id": self.image_id,
            "profile": self.profile,
            "seed": self.seed,
            "state": self.state,
            "step": self.step,
            "total": self.total,
            "loss": self.loss,
            "error": self.error,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "cancel_requested": self.cancel_requested,
            "summary": self.summary,
            "position": self.position,
            "version": self.version,
        }


class JobQueue:
    """Runs jobs on `workers` threads in submission order.

    runner(job, progress, should_stop) does the work and returns a summary dict;
    on_change(snapshot) is called (outside the lock) after every change of state, to persist it;
    progress steps only bump the version (they are not persisted).
    """

    def __init__(
        self,
        runner: Runner,
        workers: int = 1,
        max_pending: int = 32,
        on_change: ChangeFn | None = None,
        keep: int = 500,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.runner = runner
        self.max_pending = max_pending
        self.on_change = on_change
        self.keep = keep
        self._jobs: dict[str, Job] = {}
        self._pending: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Condition()
        self._persist_lock = threading.Lock()
        self._persisted: dict[str, int] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"yoho-web-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    # -- client side ---------------------------------------------------------------------------

    def submit(self, job: Job) -> dict[str, Any]:
        with self._lock:
            if self._closed:
                raise Conflict("the server is shutting down")
            waiting = sum(j.state == "queued" for j in self._jobs.values())
            if waiting >= self.max_pending:
                raise Busy(f"{waiting} jobs are already waiting; try again when one has finished")
            self._jobs[job.id] = job
            self._forget_old()
            self._renumber()
            job.version += 1
            snap = job.snapshot()
        self._changed(snap)
        self._pending.put(job.id)
        return snap

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def snapshot(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.snapshot()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.snapshot() for j in self._jobs.values()]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once, or ask a running one to stop at its next step."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"no active job {job_id}")
            if job.state in TERMINAL:
                return job.snapshot()
            job.cancel_requested = True
            job._cancel.set()
            if job.state == "queued":
                self._finish(job, "cancelled", error=None)
                self._renumber()
            job.version += 1
            snap = job.snapshot()
        self._changed(snap)
        return snap

    def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Block until the job is finished (or `timeout` seconds passed); its snapshot."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                job = self._jobs.get(job_id)
                if job is None or job.state in TERMINAL:
                    return None if job is None else job.snapshot()
                left = deadline - time.monotonic()
                if left <= 0:
                    return job.snapshot()
                self._lock.wait(left)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel everything and stop the workers."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.state not in TERMINAL:
                    job.cancel_requested = True
                    job._cancel.set()
        for _ in self._threads:
            self._pending.put(None)
        for thread in self._threads:
            thread.join(timeout)

    # -- worker side ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job_id = self._pending.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.state != "queued":
                    continue  # cancelled while waiting
                if self._closed:
                    self._finish(job, "cancelled", error="the server shut down")
                    job.version += 1
                    runnable = False
                else:
                    job.state = "running"
                    job.started = now()
                    self._renumber()
                    job.version += 1
                    runnable = True
                snap = job.snapshot()
            self._changed(snap)
            if runnable:
                self._run(job)

    def _run(self, job: Job) -> None:
        def progress(step: int, total: int, loss: float) -> None:
            with self._lock:
                # A diverged loss (NaN, inf) is not valid JSON; the page shows "no loss".
                loss = float(loss)
                job.step, job.total = int(step), int(total)
                job.loss = loss if math.isfinite(loss) else None
                job.version += 1
                self._lock.notify_all()

        state, error, summary = "done", None, None
        try:
            summary = self.runner(job, progress, job._cancel.is_set)
        except TrainingCancelled:
            state = "cancelled"
        except Exception as exc:  # a failed job must never take the server down
            log.exception("job %s for image %s failed", job.id, job.image_id)
            state, error = "failed", f"{type(exc).__name__}: {exc}"
        with self._lock:
            job.summary = summary
            self._finish(job, state, error)
            job.version += 1
            snap = job.snapshot()
        self._changed(snap)

    # -- helpers (called with the lock held, except _changed) ---------------------------------

    def _finish(self, job: Job, state: str, error: str | None) -> None:
        job.state = state
        job.error = error
        job.finished = now()
        self._lock.notify_all()

    def _renumber(self) -> None:
        ahead = sum(j.state == "running" for j in self._jobs.values())
        for job in self._jobs.values():  # dicts keep submission order
            if job.state == "queued":
                job.position = ahead
                ahead += 1
            else:
                job.position = 0

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state in TERMINAL]
        for key in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[key]
            self._persisted.pop(key, None)

    def _changed(self, snap: dict[str, Any]) -> None:
        if self.on_change is None:
            return
        # Records are written outside the state lock, so two threads may race here: the
        # version decides, and an older snapshot never overwrites a newer one.
        with self._persist_lock:
            if snap["version"] <= self._persisted.get(snap["id"], -1):
                return
            self._persisted[snap["id"]] = snap["version"]
            try:
                self.on_change(snap)
            except Exception:  # persisting a record must not stop the queue
                log.exception("could not record the state of job %s", snap["id"])
