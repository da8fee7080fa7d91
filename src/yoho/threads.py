"""How many CPU threads torch uses: chosen on purpose, never left to torch's default.

torch starts one OpenMP thread per physical core and lets idle threads spin. Two such jobs on
one machine fight for the same cores and each may run 5–15× slower than alone. Every YOHO
command therefore sets the thread count (`--threads`, default: the cores this process may
use less the cores other processes keep busy right now, or `OMP_NUM_THREADS` when the user set
it), and the command line asks OpenMP to let idle threads sleep (`OMP_WAIT_POLICY=PASSIVE`,
unless the user chose a policy), so a busy machine slows a job by its share of the cores.
Leaving the other job's cores alone matters on small machines: beside another job spinning
on both of 2 cores, a 2-thread `cpu_guided` run took 2.2× its time alone, a 1-thread run 1.9×
(bench/yoho_speed.py --busy; OpenMP's barriers wait for threads the other job has descheduled).

Parallel reductions add in an order that depends on the thread count, so two thread counts
give networks that differ in the last bits and, after a hundred steps, in their masks. The
calibration of `yoho.postprocess` keeps the *quality* the same; `thread_invariant_math` (the
profile switch `thread_invariant`, `--reproducible` on the command line) makes the bits the
same: oneDNN (whose convolution gradients split their sums by thread) is switched off, so
convolutions run as im2col + MKL GEMM, and MKL runs in strict conditional-numerical-
reproducibility mode (`MKL_CBWR=AUTO,STRICT`: GEMM results independent of the thread count).
MKL reads that variable when it first runs, so it is set by the command line at start-up;
a library user who set nothing gets it set here before the first training step.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings

__all__ = [
    "available_cores",
    "busy_cores_of_others",
    "default_threads",
    "set_threads",
    "configure_cpu_runtime",
    "thread_invariant_math",
]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a cgroup)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def busy_cores_of_others(interval: float = 0.3) -> float:
    """How many of this process's cores other processes keep busy, measured over `interval` s.

    The CPU time the machine spent on the cores of this process's affinity mask, less this
    process's own, per second (psutil). 0.0 where it cannot be measured (no psutil, no
    per-core times on this system).
    """
    try:
        import psutil
    except ImportError:
        return 0.0
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = None
    me = psutil.Process()

    def busy() -> float:
        per_cpu = psutil.cpu_times(percpu=True)
        chosen = [per_cpu[i] for i in cpus if i < len(per_cpu)] if cpus else per_cpu
        idle = sum(t.idle + getattr(t, "iowait", 0.0) for t in chosen)
        return sum(sum(t) for t in chosen) - idle

    def own() -> float:
        t = me.cpu_times()
        return t.user + t.system

    try:
        start, own_start, t0 = busy(), own(), time.perf_counter()
        time.sleep(interval)
        elapsed = time.perf_counter() - t0
        others = (busy() - start) - (own() - own_start)
    except (OSError, psutil.Error):
        return 0.0
    return max(0.0, others / max(elapsed, 1e-6))


def default_threads() -> int:
    """`OMP_NUM_THREADS` when set to a positive integer, else the available cores less those
    other processes keep busy now (rounded, at least 1)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    cores = available_cores()
    return max(1, cores - int(busy_cores_of_others() + 0.5))


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to `threads` (None: `default_threads()`); returns it."""
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads!r}")
    import torch

    torch.set_num_threads(threads)
    return threads


def configure_cpu_runtime() -> None:
    """Ask OpenMP to let idle threads sleep and MKL to be thread-count reproducible.

    Effective only before torch is imported (OpenMP) or first computes (MKL); the command line
    calls it first thing. Strict reproducible mode costs MKL's GEMM nothing measurable here and
    matters only where oneDNN is off (`thread_invariant_math`).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


@contextlib.contextmanager
def thread_invariant_math(enabled: bool = True):
    """Within the block, CPU results do not depend on torch's thread count (see above).

    Tested to be bit-identical on 1 and 2 threads with torch's x86 builds (MKL); elsewhere
    (no MKL, e.g. ARM) oneDNN is still switched off but bit-identity is not promised.
    """
    if not enabled:
        yield
        return
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
    import torch

    with warnings.catch_warnings():
        # flags() also re-sets oneDNN's TF32 switch, which warns on builds without Intel GPUs.
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        context = torch.backends.mkldnn.flags(enabled=False)
        context.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
            context.__exit__(None, None, None)
