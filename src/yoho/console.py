"""Progress for long jobs, shared by the CLI, the demo and the benchmark.

On a terminal: a rich progress bar. When stdout is not a terminal (a log file, a job system,
a pipe), a bar would print nothing until the end, so plain lines are printed instead, one every
`PLAIN_PERCENT` % of the work or every `PLAIN_SECONDS` seconds, whichever comes first.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["training_bar", "items_bar", "PlainProgress", "PLAIN_PERCENT", "PLAIN_SECONDS"]

PLAIN_PERCENT = 10.0
PLAIN_SECONDS = 30.0


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """Prints `description: done/total (p%), elapsed, left [text]` lines at a steady pace.

    A line is printed when the work passed the next multiple of `percent`, or `seconds` after
    the previous line, and always at the end.
    """

    def __init__(
        self,
        description: str,
        total: int,
        unit: str = "",
        percent: float = PLAIN_PERCENT,
        seconds: float = PLAIN_SECONDS,
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description, self.total, self.unit = description, max(int(total), 0), unit
        self.percent, self.seconds = percent, seconds
        self.echo = echo or (lambda line: print(line, flush=True))
        self.clock = clock
        self.start = self.last_time = clock()
        self.next_mark = percent

    def update(self, completed: int, total: int | None = None, text: str = "") -> None:
        if total is not None:
            self.total = max(int(total), 0)
        now = self.clock()
        share = 100.0 * completed / self.total if self.total else 100.0
        finished = completed >= self.total
        if not (finished or share >= self.next_mark or now - self.last_time >= self.seconds):
            return
        while self.next_mark <= share:
            self.next_mark += self.percent
        self.last_time = now
        elapsed = now - self.start
        left = ""
        if 0 < completed < self.total:
            left = f", about {_clock(elapsed * (self.total - completed) / completed)} left"
        unit = f" {self.unit}" if self.unit else ""
        line = f"{self.description}: {completed}/{self.total}{unit} ({math.floor(share)}%), "
        line += f"{_clock(elapsed)} elapsed{left}"
        self.echo(line + (f" - {text}" if text else ""))


def _terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def training_bar(description: str, total: int) -> Iterator[Callable[[int, int, float], None]]:
    """Context manager yielding a `progress(step, total, loss)` callback that shows progress."""
    if not _terminal():
        plain = PlainProgress(description, total, "steps")

        def plain_progress(step: int, steps: int, loss: float) -> None:
            plain.update(step, steps, f"loss {loss:.4f}")

        yield plain_progress
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task(description, total=total, loss=float("nan"))

        def progress(step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps, loss=loss)

        yield progress


@contextlib.contextmanager
def items_bar(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """Context manager yielding `advance(text)`: one more item done, `text` about it."""
    if not _terminal():
        plain = PlainProgress(description, total, "")
        done = 0

        def plain_advance(text: str = "") -> None:
            nonlocal done
            done += 1
            plain.update(done, text=text)

        yield plain_advance
        return
    columns = (
        TextColumn(f"[bold]{description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total, last="")

        def advance(text: str = "") -> None:
            bar.update(task, advance=1, last=text)

        yield advance
