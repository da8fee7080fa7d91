"""The web job queue: order, one job at a time, cancellation, failures (no training here)."""

from __future__ import annotations

import threading
import time

import pytest

from yoho.pipeline import TrainingCancelled
from yoho.web.errors import Busy, NotFound
from yoho.web.jobs import Job, JobQueue, new_job_id


def _job(name: str = "img") -> Job:
    return Job(id=new_job_id(), image_id=name, profile="tiny")


class Recorder:
    """A runner that records start order and concurrency; 'fail' and 'slow' images misbehave."""

    def __init__(self, steps: int = 3, step_seconds: float = 0.02) -> None:
        self.steps = steps
        self.step_seconds = step_seconds
        self.order: list[str] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def __call__(self, job, progress, should_stop):
        with self.lock:
            self.order.append(job.id)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if job.image_id == "fail":
                raise ValueError("annotation.json: not valid JSON")
            if job.image_id == "slow":
                while not self.release.wait(0.01):
                    if should_stop():
                        raise TrainingCancelled("stopped")
            for step in range(1, self.steps + 1):
                if should_stop():
                    raise TrainingCancelled("stopped")
                time.sleep(self.step_seconds)
                progress(step, self.steps, 1.0 / step)
            return {"area_px": 42}
        finally:
            with self.lock:
                self.active -= 1


def test_jobs_run_one_at_a_time_in_submission_order():
    runner = Recorder()
    records = []
    queue = JobQueue(runner, workers=1, on_change=records.append)
    jobs = [_job() for _ in range(4)]
    for job in jobs:
        queue.submit(job)
    final = [queue.wait(job.id, 10) for job in jobs]
    queue.shutdown()
    assert [s["state"] for s in final] == ["done"] * 4
    assert runner.order == [job.id for job in jobs]
    assert runner.max_active == 1
    assert final[0]["step"] == 3 and final[0]["loss"] == pytest.approx(1 / 3)
    assert final[0]["summary"] == {"area_px": 42}
    # Every job was recorded queued, then running, then done, in that order.
    for job in jobs:
        states = [r["state"] for r in records if r["id"] == job.id]
        assert states == ["queued", "running", "done"]


def test_two_workers_run_two_jobs_at_once():
    runner = Recorder(steps=5, step_seconds=0.05)
    queue = JobQueue(runner, workers=2)
    jobs = [_job() for _ in range(4)]
    for job in jobs:
        queue.submit(job)
    for job in jobs:
        assert queue.wait(job.id, 10)["state"] == "done"
    queue.shutdown()
    assert runner.max_active == 2


def test_a_failed_job_is_reported_and_the_next_one_runs():
    runner = Recorder()
    queue = JobQueue(runner, workers=1)
    bad, good = _job("fail"), _job()
    queue.submit(bad)
    queue.submit(good)
    failed = queue.wait(bad.id, 10)
    done = queue.wait(good.id, 10)
    queue.shutdown()
    assert failed["state"] == "failed"
    assert failed["error"] == "ValueError: annotation.json: not valid JSON"
    assert done["state"] == "done"


def test_cancel_a_queued_job_and_a_running_one():
    runner = Recorder()
    queue = JobQueue(runner, workers=1)
    running, waiting, after = _job("slow"), _job(), _job()
    queue.submit(running)
    queue.submit(waiting)
    queue.submit(after)
    deadline = time.monotonic() + 5
    while queue.snapshot(running.id)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.snapshot(waiting.id)["position"] == 1
    assert queue.snapshot(after.id)["position"] == 2
    assert queue.cancel(waiting.id)["state"] == "cancelled"  # at once: it never started
    assert queue.snapshot(after.id)["position"] == 1
    snap = queue.cancel(running.id)
    assert snap["cancel_requested"] is True
    assert queue.wait(running.id, 10)["state"] == "cancelled"
    assert queue.wait(after.id, 10)["state"] == "done"
    queue.shutdown()
    assert waiting.id not in runner.order  # the cancelled queued job never ran
    with pytest.raises(NotFound):
        queue.cancel("0" * 16)


def test_the_queue_refuses_jobs_beyond_its_limit():
    runner = Recorder()
    queue = JobQueue(runner, workers=1, max_pending=2)
    blocker = _job("slow")
    queue.submit(blocker)
    deadline = time.monotonic() + 5
    while queue.snapshot(blocker.id)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    queue.submit(_job())
    queue.submit(_job())
    with pytest.raises(Busy, match="2 jobs are already waiting"):
        queue.submit(_job())
    runner.release.set()
    queue.shutdown()


def test_shutdown_stops_a_running_job():
    runner = Recorder()
    queue = JobQueue(runner, workers=1)
    job = _job("slow")
    queue.submit(job)
    deadline = time.monotonic() + 5
    while queue.snapshot(job.id)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    queue.shutdown(timeout=5)
    assert queue.snapshot(job.id)["state"] == "cancelled"
