"""The run folder: one per training config, holding both stages.

::

    <run_dir>/
      config.yaml            the config file as given, and config.resolved.json (what shaped the run)
      base-model/            the tiny checkpoint when model.path is "tiny"
      toy/                   synthetic data when a toy source is configured
      sft/  grpo/            one folder per stage:
        checkpoint-<step>/   Trainer checkpoints (rerunning the command resumes from the last one)
        log_history.jsonl    every logged step (loss, rewards per task, KL, ...)
        curves.png           training curves
        final/               the trained model + processor, written at the end (GRPO starts here),
                             with tatar_stage.json (steps done / planned, trial or not) and
                             README.md (model card: base model, data, stage, rewards, commit)

A rerun into a folder made with a different config is refused (``--overwrite`` discards it),
except changes to the GRPO settings before the GRPO stage has started.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tatar.outputs import atomic_write_json, atomic_write_text
from tatar.train.config import TrainConfig, without_aliases

STAGES = ("sft", "grpo")


def stage_dir(cfg: TrainConfig, stage: str) -> Path:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
    return cfg.run_dir / stage


def final_dir(cfg: TrainConfig, stage: str) -> Path:
    return stage_dir(cfg, stage) / "final"


def is_complete(cfg: TrainConfig, stage: str) -> bool:
    """The stage's final model exists and is not a trial run (``--max-steps``)."""
    from tatar.train.card import read_stage

    folder = final_dir(cfg, stage)
    if not (folder / "config.json").is_file():
        return False
    record = read_stage(folder)
    return record is None or not record.get("trial", False)


def trial_final(cfg: TrainConfig, stage: str) -> dict | None:
    """The stage record of a trial run's final model, or None."""
    from tatar.train.card import read_stage

    folder = final_dir(cfg, stage)
    record = read_stage(folder) if (folder / "config.json").is_file() else None
    return record if record and record.get("trial") else None


def last_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-<step>`` folder (by step), or None."""
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def prepare_run_dir(cfg: TrainConfig, stage: str, *, overwrite: bool = False) -> Path:
    """Create the run folder (or check that it belongs to this config) and the stage folder.

    With `overwrite`, the stage's earlier outputs are removed (and, for SFT, the GRPO stage that
    was built on them).
    """
    run = cfg.run_dir
    resolved = json.loads(json.dumps(cfg.resolved(), default=str))
    saved = run / "config.resolved.json"
    if saved.is_file() and not overwrite:
        try:
            old = json.loads(saved.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{saved}: unreadable ({exc.msg}); use --overwrite") from None
        for stage_key in ("sft", "grpo"):
            if isinstance(old.get(stage_key), dict):
                old[stage_key] = without_aliases(old[stage_key])
        diff = _differences(old, resolved)
        # Retuning GRPO after SFT is the usual workflow: GRPO-only changes are accepted while
        # the GRPO stage has not started (nothing trained so far depends on them).
        grpo_only = all(d.startswith(("grpo.", "data.grpo")) for d in diff)
        grpo_started = is_complete(cfg, "grpo") or last_checkpoint(stage_dir(cfg, "grpo"))
        if diff and not (grpo_only and not grpo_started):
            shown = ", ".join(diff[:6]) + (", ..." if len(diff) > 6 else "")
            raise ValueError(
                f"{run} holds a run made with a different config (differs in: {shown}); "
                "use another --run-dir or --overwrite"
            )
    if overwrite:
        doomed = STAGES[STAGES.index(stage) :]
        for s in doomed:
            shutil.rmtree(stage_dir(cfg, s), ignore_errors=True)
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / "config.yaml", cfg.path.read_text(encoding="utf-8"))
    atomic_write_json(saved, resolved)
    folder = stage_dir(cfg, stage)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
