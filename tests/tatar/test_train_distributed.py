"""The Thurstone reward over the generation batch of every process: 2 CPU processes (torchrun,
gloo) get exactly their slice of the single-process global computation and both see every IAA
group; and a real 2-process GRPOTrainer step on the tiny checkpoint."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tatar.rewards import reward_functions
from tatar.train.global_rewards import task_summary

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

WORKER = Path(__file__).with_name("train_dist_worker.py")


def _worker_module():
    spec = importlib.util.spec_from_file_location("train_dist_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(WORKER),
        *map(str, args),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_two_processes_get_their_slice_of_the_global_thurstone_reward(tmp_path):
    torchrun("rewards", tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    worker = _worker_module()
    batch = worker.global_batch()
    assert [r["rows"] for r in ranks] == [worker.SPLIT, len(batch["task"]) - worker.SPLIT]

    funcs, weights = reward_functions("paper")
    columns = {k: batch[k] for k in ("task", "solution", "group")}
    for fn in funcs:
        single = fn(completions=batch["completions"], **columns)
        both = ranks[0]["values"][fn.__name__] + ranks[1]["values"][fn.__name__]
        np.testing.assert_allclose(both, single, rtol=0, atol=1e-12, err_msg=fn.__name__)

    # without the gather, each process would rank only its own images: different values
    thurstone = funcs[2]
    own = slice(0, worker.SPLIT)
    alone = thurstone(
        completions=batch["completions"][own], **{k: v[own] for k, v in columns.items()}
    )
    assert not np.allclose(alone, ranks[0]["values"]["iaa_thurstone"])

    # both ranks saw all 6 IAA groups, and logged the same global per-task figures
    n_iaa_groups = len(
        {g for g, t in zip(batch["group"], batch["task"], strict=True) if t == "iaa"}
    )
    assert n_iaa_groups == 6
    for r in ranks:
        assert r["logged"]["batch/iaa_thurstone/iaa_groups"] == [6.0]
    assert ranks[0]["logged"] == ranks[1]["logged"]
    expected = task_summary(
        batch["task"],
        batch["completions"],
        [len(x) for x in batch["ids"]],
        {fn.__name__: fn(completions=batch["completions"], **columns) for fn in funcs},
        weights,
    )
    for key, value in expected.items():
        assert ranks[0]["logged"][key] == [pytest.approx(value)], key


def test_two_process_grpo_step_on_the_tiny_checkpoint(tiny_model_dir, tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "run_dir": str(tmp_path / "run"),
                "model": {"path": str(tiny_model_dir)},
                "data": {
                    "train": [
                        {"toy": {"train_iqa": 4, "train_iaa": 4, "test_iqa": 0, "test_iaa": 0}}
                    ]
                },
                "grpo": {
                    "init": "base",
                    "use_cpu": True,
                    "bf16": False,
                    "gradient_checkpointing": False,
                    "num_generations": 4,
                    "per_device_train_batch_size": 8,  # x 2 processes = 16 completions, 4 images
                    "max_completion_length": 8,
                    "max_steps": 1,
                    "save_strategy": "no",
                    "beta": 0.0,
                },
                "launch": {"num_processes": 2, "cpu_threads": 1},
            }
        )
    )
    torchrun("grpo", tmp_path / "out", config)
    ranks = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    calls = [[c for c in r["seen"] if c["name"] == "iaa_thurstone"] for r in ranks]
    assert [len(c) for c in calls] == [1, 1]
    local = [c[0] for c in calls]
    assert [len(c["group"]) for c in local] == [8, 8]  # each process scores its own 8 ...
    all_groups = local[0]["group"] + local[1]["group"]
    iaa = {
        g
        for g, t in zip(all_groups, local[0]["task"] + local[1]["task"], strict=True)
        if t == "iaa"
    }
    log = ranks[0]["log_history"][0]
    assert log["batch/iaa_thurstone/iaa_groups"] == len(iaa)  # ... ranked against all images
    counts = sum(log.get(f"task/{t}/count", 0) for t in ("iqa", "iaa"))
    assert counts == 16
