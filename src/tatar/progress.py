"""Progress of long jobs: a rich bar on a terminal, plain lines when output goes to a file.

A live bar redraws one line in place, which a log file or a job system cannot show: there the
job would print nothing for minutes. So when standard output or standard error is not a
terminal, progress is written as plain lines to standard error, one every `every_percent`
percent or `every_s` seconds (whichever comes first), and one when a task completes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO


def interactive() -> bool:
    """True when both standard output and standard error are terminals."""
    return all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    started: float
    last_line: float
    last_percent: int


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class PlainProgress:
    """The subset of `rich.progress.Progress` the TATAR jobs use, printing plain lines.

    Parameters
    ----------
    every_percent : print when the completed share crosses a multiple of this.
    every_s : print at least this often while work goes on.
    stream : where the lines go (default: standard error at the time of printing).
    clock : seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        *,
        every_percent: int = 10,
        every_s: float = 30.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.every_percent = max(1, int(every_percent))
        self.every_s = every_s
        self.stream = stream
        self.clock = clock
        self.tasks: dict[int, _Task] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def _percent(self, t: _Task) -> int:
        return int(100 * t.completed / t.total) if t.total else 0

    def _line(self, t: _Task, fields: dict[str, Any]) -> None:
        now = self.clock()
        elapsed = now - t.started
        if t.total:
            text = f"{t.description}: {t.completed:g}/{t.total:g} ({self._percent(t)}%)"
        else:
            text = f"{t.description}: {t.completed:g} done"
        text += f", {_duration(elapsed)} elapsed"
        if t.total and 0 < t.completed < t.total and elapsed > 0:
            rate = t.completed / elapsed
            text += f", about {_duration((t.total - t.completed) / rate)} left"
        status = fields.get("status")
        if status:
            text += f" ({status})"
        self._print(text)
        t.last_line = now
        t.last_percent = self._percent(t)

    def add_task(
        self, description: str, total: float | None = None, completed: float = 0, **fields: Any
    ) -> int:
        now = self.clock()
        t = _Task(description, total, completed, now, now, 0)
        t.last_percent = self._percent(t)
        task_id = len(self.tasks)
        self.tasks[task_id] = t
        if total and completed:
            self._line(t, fields)  # a resumed job: say where it starts
        return task_id

    def update(
        self,
        task_id: int,
        *,
        advance: float = 0,
        completed: float | None = None,
        total: float | None = None,
        **fields: Any,
    ) -> None:
        t = self.tasks[task_id]
        if total is not None:
            t.total = total
        if completed is not None:
            t.completed = completed
        t.completed += advance
        done = bool(t.total) and t.completed >= t.total
        step = self._percent(t) // self.every_percent > t.last_percent // self.every_percent
        late = self.clock() - t.last_line >= self.every_s
        if done or step or late:
            self._line(t, fields)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)


class _Silent(PlainProgress):
    def _print(self, text: str) -> None:
        pass


def progress_bar(*columns: Any, enabled: bool = True, **plain: Any):
    """A rich `Progress` (on standard error) on a terminal, else a `PlainProgress`.

    `columns` are the rich columns; `plain` goes to `PlainProgress`. Nothing is shown when
    `enabled` is false.
    """
    if not enabled:
        return _Silent()
    if not interactive():
        return PlainProgress(**plain)
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*columns, console=Console(stderr=True), transient=False)
