"""Atomic file writes, the resumable per-sample JSONL store used by evaluation, folder locks."""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(
    path: str | os.PathLike, write, *, binary: bool = False, shared: bool = False
) -> Path:
    """Call `write(handle)` on a temporary file in the same folder, fsync, move it into place.

    A reader never sees a half-written file. `shared`: the file gets the permissions a plain
    `open` would (0666 less the umask) instead of mkstemp's owner-only 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    if shared:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
    try:
        handle = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with handle as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to a temporary file in the same folder, then move it into place."""
    return atomic_write(path, lambda fh: fh.write(text))


def _clean(value):
    # JSON has no NaN: write null (readers get None).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def atomic_write_json(path: str | os.PathLike, data) -> Path:
    return atomic_write_text(path, json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n")


def check_run_info(
    out_dir: str | os.PathLike, run_info: dict, *, overwrite: bool = False, holds: str = "results"
) -> None:
    """Refuse to mix two different runs in one output folder, then record this one's run.json.

    An existing run.json that differs from `run_info` (model, generation settings, ...) is a
    one-line error naming the keys that differ; `overwrite` skips the check.
    """
    out_dir = Path(out_dir)
    path = out_dir / "run.json"
    if path.exists() and not overwrite:
        try:
            old = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{path}: unreadable ({getattr(exc, 'msg', exc)}); remove it or use --overwrite"
            ) from None
        if not isinstance(old, dict):
            raise ValueError(f"{path}: not a run description; remove it or use --overwrite")
        diff = sorted(k for k in set(old) | set(run_info) if old.get(k) != run_info.get(k))
        if diff:
            raise ValueError(
                f"{out_dir} holds {holds} of a different run (differs in: {', '.join(diff)}); "
                "use another --out or --overwrite"
            )
    atomic_write_json(path, run_info)


class JsonlStore:
    """Append-only JSONL of records keyed by ``id``; a rerun reads what is done and skips it.

    Each batch is appended with one write, flushed and fsynced. A damaged line (cut short by a
    crash, or edited by hand) is never dropped silently: `read` names it (``file:line``) through
    `warn`, leaves it out of the records so that its item is computed again, and rewrites the
    file without it. A line that is valid JSON but not a record (no ``id``) is refused: the file
    is not a results file.

    Parameters
    ----------
    path : the JSONL file.
    validate : optional check of one record; returns a problem (str) or None. A record with a
        problem is treated like a damaged line.
    warn : where the messages about damaged lines go (default: standard error).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        validate: Callable[[dict], str | None] | None = None,
        warn: Callable[[str], None] | None = None,
    ):
        self.path = Path(path)
        self.validate = validate
        self.warn = warn or _warn_stderr
        self.damaged: list[str] = []  # the messages of the last `read`

    def read(self) -> dict[str, dict]:
        """The latest record per ``id``; damaged lines are named, dropped and recomputed."""
        self.damaged = []
        if not self.path.exists():
            return {}
        records: dict[str, dict] = {}
        kept: list[bytes] = []
        with self.path.open("rb") as fh:
            for n, raw in enumerate(fh, 1):
                problem = None
                if not raw.endswith(b"\n"):
                    problem = "incomplete last line (an interrupted write)"
                elif not raw.strip():
                    problem = "empty line"
                else:
                    try:
                        rec = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        problem = f"not valid JSON ({getattr(exc, 'msg', exc)})"
                    except RecursionError:
                        problem = "not valid JSON (nested too deeply)"
                    else:
                        if not isinstance(rec, dict) or "id" not in rec:
                            raise ValueError(
                                f"{self.path}:{n}: a line without an 'id' field; not a results "
                                "file (use another output folder, or --overwrite)"
                            )
                        if self.validate is not None:
                            problem = self.validate(rec)
                if problem:
                    self.damaged.append(f"{self.path}:{n}: {problem}; its item is computed again")
                    continue
                records[str(rec["id"])] = rec
                kept.append(raw)
        if self.damaged:
            for message in self.damaged:
                self.warn(message)
            # The damaged lines go, so that the next read does not report them again.
            atomic_write_text(self.path, b"".join(kept).decode("utf-8"))
        return records

    def append(self, records: Iterable[dict]) -> None:
        lines = "".join(json.dumps(_clean(r), ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())


LOCK_NAME = ".tatar.lock"
_held: dict[Path, tuple[int, int]] = {}  # folder -> (fd, depth): re-entrant within a process


@contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder for as long as the block runs.

    Two processes writing one folder would interleave their results (and the last writer's
    reports would win), so a second one stops at once with a ValueError naming the folder. The
    lock is an advisory ``flock`` on ``<folder>/.tatar.lock``: the kernel releases it when the
    holder exits, however it exits, so a killed run never leaves a stale lock behind. Nested use
    on the same folder in one process is allowed.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not an output folder")
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield folder
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ValueError(
            f"{folder}: another run is writing to this folder; wait for it to finish or use "
            "another output folder"
        ) from None
    _held[key] = (fd, 1)
    try:
        yield folder
    finally:
        del _held[key]
        os.close(fd)  # closing the descriptor releases the lock
