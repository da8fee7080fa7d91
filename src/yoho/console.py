"""A rich progress bar for training, shared by the CLI, the demo and the benchmark."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["training_bar"]


@contextlib.contextmanager
def training_bar(description: str, total: int) -> Iterator[Callable[[int, int, float], None]]:
    """Context manager yielding a `progress(step, total, loss)` callback that drives a bar."""
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
