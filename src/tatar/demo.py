"""`make demo` for TATAR: the whole pipeline on a tiny random checkpoint, on CPU.

1. Builds the tiny Qwen2.5-VL checkpoint, evaluates it on 8 CLIVE (IQA) and 8 PARA (IAA)
   images and shows the rewards on a few hand-written completions. The checkpoint is random, so
   its answers do not parse and it scores at chance.
2. Trains it on synthetic images (`tatar.train.toy`): a few SFT steps with asymmetric thought
   dropout, then a few GRPO steps with the paper's rewards (TRL's own trainers), and evaluates
   the result on held-out synthetic images. A few minutes of CPU training cannot make a good
   scorer; the demo shows every stage running, its logs and curves, not a result.
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_IMAGES = 8

# The training part: configs/tiny-cpu.yaml in small (the demo must not depend on the checkout's
# configs/ folder, so the config is written out here).
TRAIN_CONFIG = {
    "model": {"path": "tiny"},
    "processor": {"min_pixels": 3136, "max_pixels": 12544},
    "data": {
        "train": [{"toy": {"train_iqa": 48, "train_iaa": 48, "test_iqa": 16, "test_iaa": 16}}],
        "iqa_fraction": 0.5,
    },
    "sft": {
        "thought_dropout": {"iqa": 0.8, "iaa": 0.0},
        "max_steps": 150,
        "per_device_train_batch_size": 8,
        "learning_rate": 2e-3,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 10,
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "save_steps": 75,
        "logging_steps": 4,
        "seed": 0,
    },
    "grpo": {
        "init": "sft",
        "rewards": {"preset": "paper"},
        "num_generations": 4,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 2,
        "max_steps": 4,
        "learning_rate": 5e-5,
        "max_completion_length": 64,
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "save_steps": 2,
        "logging_steps": 1,
        "seed": 0,
    },
    "launch": {"cpu_threads": 1},
}


def _reward_table() -> str:
    from tatar.rewards import score_completions

    completions = [
        "<answer>60.00</answer>",
        "<think>\nSharp, clean exposure; slight noise in the shadows.\n</think>\n<answer>52.50</answer>",
        "<answer>around 80</answer>",
        "<think>\nBalanced composition and warm light.\n</think>\n<answer>72.00</answer>",
        "<think>\nFlat light and a cluttered frame.\n</think>\n<answer>35.00</answer>",
        "<think>\nPleasant colours, the subject is centred.\n</think>\n<answer>58.00</answer>",
    ]
    columns = {
        "task": ["iqa", "iqa", "iqa", "iaa", "iaa", "iaa"],
        "solution": [60.0, 60.0, 60.0, 70.0, 30.0, 55.0],
        "group": [0, 1, 2, 3, 4, 5],
    }
    lines = ["completion | task | gt | " + " | ".join(["format", "gaussian", "thurstone", "total"])]
    terms = score_completions(completions, "paper", **columns)
    names = ["format_reward", "score_gaussian", "iaa_thurstone", "total"]
    for i, c in enumerate(completions):
        short = c.replace("\n", " ")[-40:]
        values = " | ".join(f"{terms[n][i]:.3f}" for n in names)
        lines.append(f"...{short} | {columns['task'][i]} | {columns['solution'][i]:g} | {values}")
    return "\n".join(lines)


def _train(out_dir: Path) -> None:
    """SFT then GRPO on synthetic images, then an evaluation of both on held-out ones."""
    import json

    import yaml

    from tatar.datasets import load_labels
    from tatar.evaluate import evaluate
    from tatar.generation import GenerationSettings, HFBackend
    from tatar.train.config import load_config
    from tatar.train.grpo import run_grpo
    from tatar.train.sft import run_sft

    config = out_dir / "train.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({"run_dir": "train", **TRAIN_CONFIG}, sort_keys=False))
    cfg = load_config(config)
    t0 = time.perf_counter()
    sft_model = run_sft(cfg, overwrite=True, progress=False)
    t1 = time.perf_counter()
    grpo_model = run_grpo(cfg, overwrite=True, progress=False)
    t2 = time.perf_counter()
    print(f"SFT: {t1 - t0:.0f} s, GRPO: {t2 - t1:.0f} s (run folder {cfg.run_dir})")

    last = [
        json.loads(x) for x in (cfg.run_dir / "grpo" / "log_history.jsonl").read_text().splitlines()
    ]
    step = next((h for h in reversed(last) if any(k.startswith("task/") for k in h)), {})
    print(f"GRPO step {step.get('step')}, per task (completions of the step):")
    for task in ("iqa", "iaa"):
        keys = [k for k in sorted(step) if k.startswith(f"task/{task}/")]
        if keys:
            print(
                f"  {task.upper()}: "
                + ", ".join(f"{k.split('/', 2)[2]} {step[k]:.3g}" for k in keys)
            )

    toy = cfg.run_dir / "toy"
    held_out = [
        load_labels(
            toy / "test_iqa.jsonl", name="toy-iqa", task="iqa", scale="0:100", image_root=toy
        ),
        load_labels(
            toy / "test_iaa.jsonl", name="toy-iaa", task="iaa", scale="0:100", image_root=toy
        ),
    ]
    settings = GenerationSettings(max_new_tokens=96, batch_size=16)
    for name, model in (("SFT", sft_model), ("GRPO", grpo_model)):
        results = evaluate(
            lambda model=model: HFBackend(model),
            held_out,
            out_dir / f"eval-{name.lower()}",
            settings,
            model=str(model),
            n_resamples=0,
            overwrite=True,
            progress=False,
        )
        line = ", ".join(
            f"{r.dataset.name} SRCC {r.metrics['scored']['srcc']:.3f} "
            f"(parse failures {100 * r.metrics['parse_failure_rate']:.0f}%)"
            for r in results
        )
        print(f"after {name}: {line}")
    print(
        f"Curves: {cfg.run_dir / 'sft' / 'curves.png'}, {cfg.run_dir / 'grpo' / 'curves.png'}; "
        f"logs: */log_history.jsonl; evaluations: {out_dir / 'eval-sft'}, {out_dir / 'eval-grpo'}"
    )


def run(out_dir: Path) -> None:
    """Build the tiny checkpoint into `out_dir`/tiny-model and evaluate it into `out_dir`/eval,
    then train a fresh one in `out_dir`/train (SFT, GRPO) and evaluate it."""
    from tatar.datasets import load_dataset
    from tatar.evaluate import evaluate
    from tatar.generation import GenerationSettings, HFBackend
    from tatar.tiny_model import build_tiny_model, count_parameters

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    model_dir = out_dir / "tiny-model"
    if not (model_dir / "config.json").is_file():
        build_tiny_model(model_dir, overwrite=True)
    print(
        f"tiny checkpoint: {model_dir} ({count_parameters(model_dir):,} parameters, random weights)"
    )

    try:
        datasets = [
            load_dataset("clive", limit=DEMO_IMAGES),
            load_dataset("para", limit=DEMO_IMAGES),
        ]
    except FileNotFoundError as exc:
        # The labelled images live in the shared data folder beside the checkout; without it
        # the demo still shows training and evaluation on synthetic images.
        print(f"no labelled benchmark images here ({exc}): benchmark part skipped")
        print("\nTraining on synthetic images (SFT with thought dropout, then GRPO):")
        _train(out_dir)
        print(f"TATAR demo finished in {time.perf_counter() - t0:.0f} s")
        return
    settings = GenerationSettings(max_new_tokens=24, batch_size=8)

    def run_eval(overwrite: bool):
        return evaluate(
            lambda: HFBackend(model_dir),
            datasets,
            out_dir / "eval",
            settings,
            model=str(model_dir.resolve()),
            n_resamples=200,
            overwrite=overwrite,
            progress=False,
        )

    results = run_eval(overwrite=True)
    print((out_dir / "eval" / "summary.md").read_text())
    rerun = run_eval(overwrite=False)
    print(
        f"rerun into the same folder: {sum(r.generated for r in rerun)} images generated (resumed)"
    )
    first = results[0]
    record = (first.folder / "samples.jsonl").read_text().splitlines()[0]
    print(f"one record of {first.folder / 'samples.jsonl'}:\n  {record[:300]}...")
    print(
        "\nThe checkpoint is randomly initialised: its answers do not parse, every image is scored "
        "as the same fallback value and the correlations are undefined (n/a) - chance level. The "
        "demo shows the pipeline (prompting, batched generation, strict parsing, metrics under "
        "both parse-failure conventions, resumable outputs, plots), not a trained model."
    )
    print("\nRewards (paper preset) on hand-written completions:")
    print(_reward_table())
    print(
        f"\nOutputs: {out_dir / 'eval'} (summary.md, */metrics.json, */samples.jsonl, */scatter.png)"
    )
    print("\nTraining on synthetic images (SFT with thought dropout, then GRPO):")
    _train(out_dir)
    print(f"TATAR demo finished in {time.perf_counter() - t0:.0f} s")
