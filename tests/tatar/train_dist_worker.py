"""Worker launched by tests/tatar/test_train_distributed.py under torchrun (2 CPU processes, gloo).

``rewards OUT``: every process takes its (unequal) share of one fixed global generation batch,
calls the GRPO reward functions exactly as TRL does and writes what it got back and what it
logged to ``OUT/rank<k>.json``.

``grpo OUT CONFIG``: one real GRPOTrainer step of the given config on 2 processes; each process
writes the reward calls it saw to ``OUT/rank<k>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

# 8 groups of 4 completions (6 IAA images, 2 IQA); process 0 gets the first 14 rows, process 1
# the other 18, so one IAA group straddles the two processes.
GROUP_SIZE = 4
SPLIT = 14


def global_batch(seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    tasks = ["iaa", "iaa", "iqa", "iaa", "iaa", "iqa", "iaa", "iaa"]
    completions, task, solution, group, ids = [], [], [], [], []
    for g, t in enumerate(tasks):
        gt = float(np.round(rng.uniform(5, 95), 2))
        for k in range(GROUP_SIZE):
            pred = gt + rng.normal(0, 15)
            if (g, k) in {(1, 2), (6, 0)}:
                text = "<think>\nno score here\n</think>\n<answer>good</answer>"
            elif k % 2:
                text = f"<think>\nBalanced framing, muted colour.\n</think>\n<answer>{pred:.2f}</answer>"
            else:
                text = f"<answer>{pred:.2f}</answer>"
            completions.append(text)
            task.append(t)
            solution.append(gt)
            group.append(100 + g)
            ids.append(list(range(3 + len(text) // 5)))
    return {
        "completions": completions,
        "task": task,
        "solution": solution,
        "group": group,
        "ids": ids,
    }


def rewards(out: Path) -> None:
    from accelerate import PartialState

    from tatar.rewards import RewardSettings
    from tatar.train.grpo import grpo_rewards

    state = PartialState(cpu=True)
    batch = global_batch()
    own = slice(0, SPLIT) if state.process_index == 0 else slice(SPLIT, None)
    local = {k: v[own] for k, v in batch.items()}
    funcs, weights, _ = grpo_rewards(RewardSettings.preset("paper"))
    logged: dict[str, list[float]] = {}
    values = {}
    for fn in funcs:
        values[fn.__name__] = fn(
            prompts=[[{"role": "user", "content": "x"}]] * len(local["task"]),
            completions=[[{"role": "assistant", "content": c}] for c in local["completions"]],
            completion_ids=local["ids"],
            task=local["task"],
            solution=local["solution"],
            group=local["group"],
            image=[None] * len(local["task"]),
            trainer_state=None,
            log_extra=lambda *a: None,
            log_metric=lambda name, value: logged.setdefault(name, []).append(value),
        )
    result = {
        "rank": state.process_index,
        "rows": len(local["task"]),
        "values": values,
        "logged": logged,
    }
    (out / f"rank{state.process_index}.json").write_text(json.dumps(result))
    state.wait_for_everyone()


def grpo(out: Path, config: Path) -> None:
    from accelerate import PartialState

    from tatar.train.config import load_config
    from tatar.train.grpo import build_grpo_trainer

    cfg = load_config(config)
    trainer, _ = build_grpo_trainer(cfg, progress=False)
    seen = []
    for i, fn in enumerate(trainer.reward_funcs):

        def spy(fn=fn, **kwargs):
            result = fn(**kwargs)
            seen.append(
                {
                    "name": fn.__name__,
                    "group": list(kwargs["group"]),
                    "task": list(kwargs["task"]),
                    "values": list(result),
                }
            )
            return result

        spy.__name__ = fn.__name__
        trainer.reward_funcs[i] = spy
    trainer.train()
    rank = PartialState().process_index
    result = {"rank": rank, "seen": seen, "log_history": trainer.state.log_history}
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if mode == "rewards":
        rewards(out)
    else:
        grpo(out, Path(sys.argv[3]))
    from tatar.train.model import shutdown_distributed

    shutdown_distributed()
    # About one run in ten, a gloo/DDP helper thread aborts the interpreter's teardown on CPU
    # ("terminate called without an active exception") after all results are written; what
    # this test checks is in OUT, so the worker leaves without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
