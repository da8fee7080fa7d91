"""Trainer callbacks shared by both stages: the run log, the curves, a compact console line."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback

from tatar.outputs import atomic_write_text
from tatar.train.curves import plot_curves


def _clean(entry: dict) -> dict:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()
    }


class RunLogCallback(TrainerCallback):
    """Keeps ``log_history.jsonl`` (every log entry) and ``curves.png`` of a stage up to date.

    The JSONL is rewritten atomically from the Trainer state at every log, so after a resume it
    holds the history restored from the checkpoint plus the new steps, never duplicates. The
    curves are drawn at every checkpoint and at the end (drawing takes a fraction of a second).
    """

    def __init__(self, folder: Path, stage: str, title: str = ""):
        self.folder = Path(folder)
        self.stage = stage
        self.title = title

    def _write_log(self, state) -> None:
        lines = "".join(json.dumps(_clean(e)) + "\n" for e in state.log_history)
        atomic_write_text(self.folder / "log_history.jsonl", lines)

    def _plot(self, state) -> None:
        plot_curves(
            self.folder / "curves.png", state.log_history, stage=self.stage, title=self.title
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            self._write_log(state)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._plot(state)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._write_log(state)
            self._plot(state)


class ConsoleLogCallback(TrainerCallback):
    """One short line per log on the main process (the Trainer's own dict print is long)."""

    def __init__(self, keys: tuple[str, ...], prefix: str):
        self.keys = keys
        self.prefix = prefix

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        parts = [f"step {state.global_step}/{state.max_steps}"]
        for k in self.keys:
            v = logs.get(k)
            if isinstance(v, (int, float)):
                parts.append(f"{k.replace('task/', '')} {v:.4g}")
        if len(parts) > 1:
            print(f"[{self.prefix}] " + "  ".join(parts), flush=True)
