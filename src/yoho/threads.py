"""How many CPU threads torch uses: chosen on purpose, never left to torch's default.

torch starts one OpenMP thread per physical core and lets idle threads spin. Two such jobs on
one machine fight for the same cores and each may run 5–15× slower than alone. Every YOHO
command therefore sets the thread count (`--threads`, default: the cores this process may
use, or `OMP_NUM_THREADS` when the user set it), and the command line asks OpenMP to let idle
threads sleep (`OMP_WAIT_POLICY=PASSIVE`, unless the user chose a policy), so a busy machine
slows a job by its share of the cores.

The training result does not depend on the thread count beyond floating-point noise
(`tests/yoho/test_stability.py`), so the default may differ between machines.
"""

from __future__ import annotations

import os

__all__ = ["available_cores", "default_threads", "set_threads", "prefer_sleeping_threads"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a cgroup)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """`OMP_NUM_THREADS` when set to a positive integer, else the available cores."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return available_cores()


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to `threads` (None: `default_threads()`); returns it."""
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads!r}")
    import torch

    torch.set_num_threads(threads)
    return threads


def prefer_sleeping_threads() -> None:
    """Ask OpenMP to put idle threads to sleep; only effective before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
