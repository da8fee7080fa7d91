"""The evaluation's per-image jobs on Ray: one image = one Ray task.

By default a local Ray is started on this machine (`ray.init(num_cpus=..., include_dashboard=
False)`); `address` joins an existing cluster instead. Each task asks for `cpus_per_job` CPUs
(and `gpus_per_job` GPUs) and sets torch's threads to its CPU share. The driver collects the
results as tasks finish (`ray.wait`), writes them to the store at once (so an interrupted run
resumes), and drives one progress callback. A task that dies (worker crash, out of memory) is
reported as error rows for its image; the other images go on. The job function is the local
loop's (`run_image_job`), so the per-image results are the same for the same seeds.
"""

from __future__ import annotations

import os

from yoho.evaluation.runner import ImageJob, Progress, _error_rows, record, run_image_job
from yoho.evaluation.store import ResultStore

__all__ = ["run_ray", "start_ray"]


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to `address`, or start a local Ray; returns True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    # Workers must import this package from the same source tree as the driver.
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    runtime_env = {"env_vars": {"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            runtime_env=runtime_env,
            log_to_driver=False,
            configure_logging=False,
        )
    return True


def run_ray(
    jobs: list[ImageJob],
    store: ResultStore,
    progress: Progress | None = None,
    address: str | None = None,
    cpus_per_job: float = 1.0,
    gpus_per_job: float = 0.0,
    num_cpus: int | None = None,
    shutdown: bool = True,
    clicks=None,
) -> int:
    """Run the jobs as Ray tasks; returns the number of failed rows."""
    import dataclasses

    import ray

    if cpus_per_job <= 0 or gpus_per_job < 0:
        raise ValueError("cpus per job must be > 0 and gpus per job >= 0")
    started = start_ray(address, num_cpus)
    task = ray.remote(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=0)(run_image_job)
    threads = max(1, int(cpus_per_job))
    pending = {}
    for job in jobs:
        job = dataclasses.replace(job, torch_threads=job.torch_threads or threads)
        pending[task.remote(job)] = job
    failed = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            job = pending.pop(ref)
            try:
                rows = ray.get(ref)
            except Exception as exc:  # the task itself died: report its image, go on
                rows = _error_rows(job, job.methods, f"ray task failed: {type(exc).__name__}")
            record(rows, store, clicks)
            failed += sum(1 for r in rows if r["error"])
            if progress is not None:
                progress(job.item.name, rows)
    finally:
        if started and shutdown:
            ray.shutdown()
    return failed
