"""An exclusive lock on an output folder, so that two runs never write the same results file.

Two `yoho evaluate` runs into one `--out` would each rewrite `results.csv` from what they read
at start, and the last writer's file would silently drop the other run's rows. The lock is an
advisory `flock` on `<folder>/.yoho.lock`: the kernel releases it when the process ends, however
it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from yoho.io import check_output_folder

__all__ = ["FolderLocked", "folder_lock", "locks_out_folder", "LOCK_NAME"]

LOCK_NAME = ".yoho.lock"


class FolderLocked(ValueError):
    """Another process holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "") -> Iterator[Path]:
    """Hold the lock of `folder` (created if needed) for the duration of the block.

    Raises FolderLocked, naming the folder and the run that holds it, when another process
    (or another open of the lock in this one) has it.
    """
    folder = check_output_folder(folder)
    path = folder / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held open while locked)
    try:
        try:
            _lock(handle)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FolderLocked(
                f"{folder}: another run is writing to this folder ({holder}); wait for it to "
                "finish or choose another output folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        label = what or " ".join(
            os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)
        )
        handle.write(f"{label[:200]} (pid {os.getpid()})\n")
        handle.flush()
        try:
            yield folder
        finally:
            _unlock(handle)
    finally:
        handle.close()


def locks_out_folder(func):
    """Decorator for a command whose keyword argument `out` is its output folder."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with folder_lock(kwargs["out"]):
            return func(*args, **kwargs)

    return wrapper


try:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

except ImportError:  # Windows: the same exclusive, non-blocking lock on the file's first byte
    import msvcrt

    def _lock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
