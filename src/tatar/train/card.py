"""What a finished stage records in its ``final/`` folder: ``tatar_stage.json`` and a model card.

``tatar_stage.json`` says which stage made the model, from which base model and data, with which
rewards, after how many optimizer steps of how many planned, and whether it was a trial run
(``--max-steps``). A trial is never taken as the finished stage: rerunning the command without
``--max-steps`` (or with a longer one) continues from the last checkpoint. ``README.md`` is the
same information for people (TRL's own card, written into the stage folder, names no base model).
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from tatar import __version__
from tatar.train.config import TrainConfig

STAGE_FILE = "tatar_stage.json"
STAGE_NAMES = {"sft": "SFT with asymmetric thought dropout", "grpo": "GRPO with asymmetric rewards"}


def source_commit() -> str:
    """The git commit of the code that trained (``<sha>`` or ``<sha>-dirty``), or "unknown"."""
    repo = Path(__file__).resolve().parents[3]
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def stage_record(
    cfg: TrainConfig,
    stage: str,
    *,
    start_model: str,
    base_model: str,
    global_step: int,
    planned_steps: int,
    trial: bool,
    rows: int,
    tasks: dict,
) -> dict:
    resolved = cfg.resolved()
    return {
        "stage": stage,
        "trial": trial,
        "global_step": int(global_step),
        "planned_steps": int(planned_steps),
        "start_model": start_model,
        "base_model": base_model,
        "config": str(cfg.path),
        "data": resolved["data"]["train" if stage == "sft" else "grpo"],
        "rows": rows,
        "tasks": tasks,
        "thought_dropout": resolved["sft"]["thought_dropout"] if stage == "sft" else None,
        "rewards": resolved["grpo"]["rewards"] if stage == "grpo" else None,
        "peft": resolved["peft"],
        "processor": resolved["processor"],
        "commit": source_commit(),
        "tatar_version": __version__,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def read_stage(folder: Path) -> dict | None:
    """The stage record of a ``final/`` folder, or None (none, or unreadable)."""
    path = Path(folder) / STAGE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def model_card(record: dict) -> str:
    """A model card (README.md) from a stage record."""
    stage = record["stage"]
    data = "\n".join(f"- `{json.dumps(s)}`" for s in record["data"]) or "- (none)"
    rewards = record.get("rewards")
    extra = (
        f"- Thought dropout (probability of removing `<think>`): {record['thought_dropout']}\n"
        if stage == "sft"
        else f"- Rewards: `{json.dumps(rewards)}`\n"
    )
    trial = (
        "**Trial run** (`--max-steps`): not the finished stage.\n\n" if record.get("trial") else ""
    )
    return f"""---
library_name: transformers
pipeline_tag: image-text-to-text
base_model: {record["base_model"]}
tags: [tatar, image-quality-assessment, image-aesthetics-assessment, {stage}]
---

# TATAR {stage.upper()} model

{trial}Scores image quality (IQA) and aesthetics (IAA) on 0-100, answering
`<think>...</think><answer>73.42</answer>`. Stage: {STAGE_NAMES[stage]}.
Paper: *One Model, Two Minds: Task-Conditioned Reasoning for Unified Image Quality and Aesthetic
Assessment*, arXiv:2603.19779.

- Base model: `{record["base_model"]}`
- Trained from: `{record["start_model"]}`
- Steps: {record["global_step"]} of {record["planned_steps"]} planned
- Rows: {record["rows"]} (IQA {record["tasks"].get("iqa", 0)}, IAA {record["tasks"].get("iaa", 0)})
{extra}- LoRA: {"merged into the weights, " + json.dumps(record["peft"]) if record["peft"] else "no (full fine-tune)"}
- Processor pixel limits: {record["processor"]}
- Config: `{record["config"]}`
- Code: TATAR {record["tatar_version"]}, commit `{record["commit"]}`
- Finished: {record["finished"]}

## Data

{data}

## Use

```bash
tatar score --model <this folder> photo.jpg --task both
tatar eval --model <this folder> --dataset koniq10k --image-root DIR --out runs/eval
```
"""
