"""Learnability on CPU: can the tiny model learn IQA and IAA from pixels through SFT, then GRPO?

Synthetic images (`tatar.train.toy`) whose IQA score is a known function of the strength of one
degradation chain (contrast loss, blur, noise, JPEG) and whose IAA score is a known function of
palette saturation and subject placement. The tiny Qwen2.5-VL (vision width 128) is trained
from random weights with the project's own SFT (thought dropout IQA 0.8 / IAA 0.0) and GRPO
(paper rewards) stages, and evaluated greedily on held-out images after each stage.

Goal (issue): after SFT, SRCC >= 0.7 on IQA; GRPO improves it; under 20 minutes here.

Run: .venv/bin/python bench/tatar_toy.py [--out DIR] [--fresh] (see --help for the knobs)
(writes bench/results/tatar_toy.json; the run folder keeps logs, curves and scatter plots)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tatar_toy.json"


def config(
    run_dir: Path,
    sft_epochs: int,
    train_iqa: int,
    grpo_steps: int,
    grpo_lr: float,
    accumulation: int,
) -> dict:
    cpu = {"use_cpu": True, "bf16": False, "gradient_checkpointing": False}
    return {
        "run_dir": str(run_dir),
        # A vision tower wider than the default tiny one: the IQA cues are fine detail.
        "model": {
            "path": "tiny",
            "tiny": {"vision_hidden_size": 128, "vision_intermediate_size": 256},
        },
        "processor": {"min_pixels": 3136, "max_pixels": 12544},
        "data": {
            "train": [
                {
                    "toy": {
                        "train_iqa": train_iqa,
                        "train_iaa": 400,
                        "test_iqa": 100,
                        "test_iaa": 100,
                    }
                }
            ],
            "iqa_fraction": 0.5,
            "seed": 0,
        },
        "sft": {
            "thought_dropout": {"iqa": 0.8, "iaa": 0.0},
            "num_train_epochs": sft_epochs,
            "per_device_train_batch_size": 16,
            "learning_rate": 2e-3,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 10,
            "save_steps": 100,
            "logging_steps": 5,
            "seed": 0,
            **cpu,
        },
        "grpo": {
            "init": "sft",
            "rewards": {"preset": "paper"},
            "num_generations": 8,
            "per_device_train_batch_size": 16,
            "gradient_accumulation_steps": accumulation,
            "max_steps": grpo_steps,
            "learning_rate": grpo_lr,
            "beta": 0.001,
            "max_completion_length": 96,
            "save_steps": 20,
            "logging_steps": 5,
            "seed": 0,
            **cpu,
        },
        "launch": {"cpu_threads": 1},
    }


def evaluate_stage(model: Path, run_dir: Path, name: str) -> dict:
    from tatar.datasets import load_labels
    from tatar.evaluate import evaluate
    from tatar.generation import GenerationSettings, HFBackend

    toy = run_dir / "toy"
    held_out = [
        load_labels(toy / f"test_{t}.jsonl", name=f"toy-{t}", task=t, scale="0:100", image_root=toy)
        for t in ("iqa", "iaa")
    ]
    results = evaluate(
        lambda: HFBackend(model),
        held_out,
        run_dir / f"eval-{name}",
        GenerationSettings(max_new_tokens=100, batch_size=16),
        model=str(model),
        n_resamples=0,
        overwrite=True,
        progress=False,
    )
    out = {}
    for r in results:
        m = r.metrics
        task = r.dataset.task
        out[task] = {
            "srcc": round(m["scored"]["srcc"], 4),
            "plcc": round(m["scored"]["plcc"], 4),
            "parse_failure_rate": m["parse_failure_rate"],
            "n": m["n"],
        }
        print(
            f"after {name}: {task.upper()} SRCC {m['scored']['srcc']:.3f} PLCC {m['scored']['plcc']:.3f}"
            f" (parse failures {100 * m['parse_failure_rate']:.0f}%)",
            flush=True,
        )
    return out


def stage_seconds(run_dir: Path, stage: str) -> float:
    """The Trainer's train_runtime of a finished stage (its last log entry)."""
    lines = (run_dir / stage / "log_history.jsonl").read_text().splitlines()
    return float(json.loads(lines[-1])["train_runtime"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-tatar-toy")
    parser.add_argument("--sft-epochs", type=int, default=5)
    parser.add_argument("--train-iqa", type=int, default=1200, help="IQA training images")
    parser.add_argument("--grpo-steps", type=int, default=40)
    parser.add_argument("--grpo-lr", type=float, default=1e-5)
    parser.add_argument(
        "--grpo-accumulation",
        type=int,
        default=8,
        help="micro-batches (16 completions = 2 images each) per GRPO step",
    )
    parser.add_argument(
        "--fresh-grpo", action="store_true", help="retrain GRPO (keep a finished SFT stage)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--fresh", action="store_true", help="retrain both stages (default: reuse finished ones)"
    )
    args = parser.parse_args()

    import torch

    from tatar.train.config import load_config
    from tatar.train.grpo import run_grpo
    from tatar.train.sft import run_sft

    run_dir = args.out.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "bench.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            config(
                run_dir,
                args.sft_epochs,
                args.train_iqa,
                args.grpo_steps,
                args.grpo_lr,
                args.grpo_accumulation,
            ),
            sort_keys=False,
        )
    )
    cfg = load_config(cfg_path)
    if args.fresh_grpo:
        shutil.rmtree(run_dir / "grpo", ignore_errors=True)

    # A rerun reuses finished stages (the run folder is resumable); the stage times are the
    # trainers' own train_runtime, so they are the same whether a stage ran now or before.
    sft_model = run_sft(cfg, overwrite=args.fresh, progress=True)
    t_sft = stage_seconds(run_dir, "sft")
    t1 = time.perf_counter()
    after_sft = evaluate_stage(sft_model, run_dir, "sft")
    t_eval = time.perf_counter() - t1
    grpo_model = run_grpo(cfg, overwrite=args.fresh, progress=True)
    t_grpo = stage_seconds(run_dir, "grpo")
    t2 = time.perf_counter()
    after_grpo = evaluate_stage(grpo_model, run_dir, "grpo")
    t_eval += time.perf_counter() - t2
    total = t_sft + t_grpo + t_eval

    history = [
        json.loads(x) for x in (run_dir / "grpo" / "log_history.jsonl").read_text().splitlines()
    ]
    rewards = {
        k: [round(h[k], 4) for h in history if k in h]
        for k in ("task/iqa/rewards/score_gaussian", "task/iaa/rewards/iaa_thurstone", "kl")
    }
    result = {
        "after_sft": after_sft,
        "after_grpo": after_grpo,
        "goal_iqa_srcc_after_sft_ge_0.7": after_sft["iqa"]["srcc"] >= 0.7,
        "grpo_improves_iqa_srcc": after_grpo["iqa"]["srcc"] > after_sft["iqa"]["srcc"],
        "seconds": {
            "sft": round(t_sft, 1),
            "grpo": round(t_grpo, 1),
            "evaluations": round(t_eval, 1),
            "total": round(total, 1),
        },
        "grpo_logged": rewards,
        "config": cfg.raw,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            # other work on the machine inflates the wall times (not the SRCC/PLCC)
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "run_dir": str(run_dir),
    }
    print(
        f"SFT {t_sft:.0f} s, GRPO {t_grpo:.0f} s, total with evaluations {total:.0f} s; "
        f"IQA SRCC {after_sft['iqa']['srcc']:.3f} -> {after_grpo['iqa']['srcc']:.3f}, "
        f"IAA SRCC {after_sft['iaa']['srcc']:.3f} -> {after_grpo['iaa']['srcc']:.3f}"
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=args.results.parent, suffix=".tmp", delete=False
    ) as f:
        json.dump(result, f, indent=2)
    os.replace(f.name, args.results)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
