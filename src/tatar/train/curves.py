"""Training curves from a stage's log history (matplotlib, Agg canvas).

SFT: loss, token accuracy, learning rate. GRPO: reward per task (total and each reward
function), completion length per task (words and tokens), share of completions with
``<think>``, parse failures per task, and the KL to the reference model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from tatar.plots import _save

TASK_COLOURS = {"iqa": "tab:blue", "iaa": "tab:orange"}


def _series(history: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for entry in history:
        v = entry.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v) and "step" in entry:
            xs.append(entry["step"])
            ys.append(float(v))
    return xs, ys


def _panel(
    ax, history, keys: Sequence[tuple[str, str, dict]], title: str, ylabel: str = ""
) -> bool:
    drawn = False
    for key, label, style in keys:
        xs, ys = _series(history, key)
        if xs:
            ax.plot(xs, ys, label=label, **{"lw": 1.2, **style})
            drawn = True
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25)
    if drawn:
        ax.legend(fontsize=6, frameon=False)
    else:
        ax.text(
            0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, fontsize=8
        )
    return drawn


def _reward_names(history: Sequence[dict]) -> list[str]:
    names = set()
    for entry in history:
        for k in entry:
            parts = k.split("/")
            if len(parts) == 4 and parts[0] == "task" and parts[2] == "rewards":
                names.add(parts[3])
    return sorted(names)


def grpo_panels(history: Sequence[dict]) -> list[tuple[str, str, list[tuple[str, str, dict]]]]:
    panels = []
    for task in ("iqa", "iaa"):
        c = TASK_COLOURS[task]
        keys = [(f"task/{task}/reward", "total (weighted)", {"color": c, "lw": 2})]
        styles = ["--", ":", "-.", (0, (1, 3)), (0, (5, 2, 1, 2))]
        for i, name in enumerate(_reward_names(history)):
            keys.append(
                (f"task/{task}/rewards/{name}", name, {"color": c, "ls": styles[i % len(styles)]})
            )
        panels.append((f"{task.upper()} rewards", "reward", keys))
    panels.append(
        (
            "completion length per task",
            "words / tokens",
            [
                (f"task/{t}/{m}", f"{t.upper()} {m.split('_')[-1]}", {"color": c, "ls": ls})
                for t, c in TASK_COLOURS.items()
                for m, ls in (("completion_words", "-"), ("completion_tokens", "--"))
            ],
        )
    )
    panels.append(
        (
            "<think> share and parse failures",
            "fraction",
            [
                (f"task/{t}/{m}", f"{t.upper()} {m}", {"color": c, "ls": ls})
                for t, c in TASK_COLOURS.items()
                for m, ls in (("think_share", "-"), ("parse_failure", ":"))
            ],
        )
    )
    panels.append(("KL to the reference", "KL", [("kl", "kl", {"color": "tab:green"})]))
    panels.append(
        (
            "reward (all)",
            "reward",
            [("reward", "reward", {"color": "k"}), ("reward_std", "std", {"color": "0.5"})],
        )
    )
    return panels


def sft_panels(history: Sequence[dict]) -> list[tuple[str, str, list[tuple[str, str, dict]]]]:
    return [
        ("loss (completion tokens)", "loss", [("loss", "train", {"color": "tab:blue"})]),
        ("token accuracy", "accuracy", [("mean_token_accuracy", "train", {"color": "tab:blue"})]),
        ("learning rate", "lr", [("learning_rate", "lr", {"color": "0.3"})]),
    ]


def plot_curves(
    path: str | os.PathLike, history: Sequence[dict], *, stage: str, title: str = ""
) -> Path:
    """Write the training-curves PNG of one stage (``stage``: 'sft' or 'grpo')."""
    panels = grpo_panels(history) if stage == "grpo" else sft_panels(history)
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.0 * cols, 3.0 * rows))
    for i, (name, ylabel, keys) in enumerate(panels):
        _panel(fig.add_subplot(rows, cols, i + 1), history, keys, name, ylabel)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))
