"""Stage 2: GRPO with asymmetric rewards, on TRL's own GRPOTrainer.

Dataset rows carry ``prompt`` (`tatar.prompts.build_messages(task)`, identical to SFT and
evaluation), ``image``, ``task``, ``solution`` (ground truth on 0-100) and ``group`` (the row
index: one id per prompt/image, unique across processes). The rewards come from
`tatar.rewards` (preset and overrides from ``grpo.rewards``); the ranking terms are computed over
the generation batch of all processes (`tatar.train.global_rewards.globalize`), and per-task
figures are logged every step (`TaskMetrics`).

Sampling is explicit: temperature 1.0, top_k 0 (off), top_p 1.0 and repetition penalty 1.0 are
always passed to generation, so a checkpoint's near-greedy generation_config cannot make a
group's completions identical. vLLM rollouts are TRL's own (``use_vllm: true``,
``vllm_mode: colocate`` or ``server``).
"""

from __future__ import annotations

from pathlib import Path

from tatar.rewards import RewardSettings
from tatar.train.config import TrainConfig, trl_kwargs


class GRPOTransform:
    """`datasets` transform: rows of `records_dataset` -> GRPO examples (images loaded)."""

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        from tatar.generation import load_image
        from tatar.prompts import build_messages

        return {
            "prompt": [build_messages(t) for t in batch["task"]],
            "image": [load_image(p) for p in batch["image"]],
            "task": list(batch["task"]),
            "solution": [float(s) for s in batch["solution"]],
            "group": [int(i) for i in batch["index"]],
        }


def grpo_rewards(settings: RewardSettings):
    """(reward functions for the trainer, their weights, the TaskMetrics that wraps them)."""
    from tatar.rewards import reward_functions
    from tatar.train.global_rewards import BATCH_LEVEL, TaskMetrics, globalize

    funcs, weights = reward_functions(settings)
    funcs = [globalize(f) if f.__name__ in BATCH_LEVEL else f for f in funcs]
    metrics = TaskMetrics(funcs, weights)
    return metrics.funcs, weights, metrics


def grpo_args(cfg: TrainConfig, output_dir: str | Path, **overrides):
    """The `trl.GRPOConfig` of a config (TATAR-managed fields set here; `overrides` last)."""
    from trl import GRPOConfig

    from tatar.rewards import reward_functions

    kwargs = trl_kwargs(GRPOConfig, cfg.grpo.args, overrides)
    _, weights = reward_functions(cfg.grpo.rewards)
    kwargs.update(
        output_dir=str(output_dir),
        remove_unused_columns=False,  # task / solution / group reach the rewards
        reward_weights=weights,
    )
    if cfg.model.init_kwargs:
        kwargs["model_init_kwargs"] = dict(cfg.model.init_kwargs)
    return GRPOConfig(**kwargs)


def init_model(cfg: TrainConfig, *, trial: bool = False) -> str:
    """The model GRPO starts from: this run's SFT result, the base model, or a given folder.

    A trial SFT model (``--max-steps``) is accepted only by a trial GRPO run.
    """
    from tatar.train.model import base_model
    from tatar.train.rundir import final_dir, is_complete, trial_final

    if cfg.grpo.init == "sft":
        sft_trial = trial_final(cfg, "sft")
        if sft_trial and not trial:
            raise ValueError(
                f"{final_dir(cfg, 'sft')} is a trial SFT run ({sft_trial['global_step']} steps); "
                f"finish SFT first (`tatar sft --config {cfg.path}` without --max-steps), or "
                "give GRPO --max-steps for a trial of its own"
            )
        if sft_trial:
            return str(final_dir(cfg, "sft"))
        if not is_complete(cfg, "sft"):
            raise FileNotFoundError(
                f"GRPO starts from the SFT model, and {final_dir(cfg, 'sft')} does not exist: run "
                f"`tatar sft --config {cfg.path}` first (or set grpo.init: base)"
            )
        return str(final_dir(cfg, "sft"))
    if cfg.grpo.init == "base":
        return base_model(cfg)
    return cfg.grpo.init


def grpo_dataset(cfg: TrainConfig, records=None):
    from tatar.train.records import load_records, records_dataset, task_counts

    if records is None:
        records = load_records(cfg.data.grpo, cfg.run_dir)
    dataset = records_dataset(records, cfg.data)
    counts = task_counts(dataset)
    dataset.set_transform(GRPOTransform())
    return dataset, counts


def build_grpo_trainer(
    cfg: TrainConfig,
    *,
    model=None,
    model_path: str | None = None,
    progress: bool = True,
    records=None,
    **overrides,
):
    """A GRPOTrainer for `cfg` writing to ``<run_dir>/grpo`` (nothing is trained yet)."""
    from trl import GRPOTrainer

    from tatar.train.callbacks import RunLogCallback
    from tatar.train.model import apply_runtime, load_model, load_processor, peft_config
    from tatar.train.rundir import stage_dir
    from tatar.train.sft import _check_world_size

    apply_runtime(cfg)
    model_path = model_path or init_model(cfg)
    processor = load_processor(model_path, cfg.processor)
    dataset, counts = grpo_dataset(cfg, records)
    funcs, _, metrics = grpo_rewards(cfg.grpo.rewards)
    folder = stage_dir(cfg, "grpo")
    if not progress:
        overrides.setdefault("disable_tqdm", True)
    args = grpo_args(cfg, folder, **overrides)
    trainer = GRPOTrainer(
        model=model if model is not None else load_model(cfg, model_path),
        reward_funcs=funcs,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config(cfg),
        callbacks=[RunLogCallback(folder, "grpo", title=f"GRPO - {cfg.path.name}")],
    )
    trainer.tatar_info = {"model": model_path, "rows": len(dataset), "tasks": counts}
    trainer.tatar_metrics = metrics
    _check_world_size(cfg, trainer)
    return trainer, processor


def run_grpo(
    cfg: TrainConfig, *, overwrite: bool = False, progress: bool = True, **overrides
) -> Path:
    """Train stage 2 into ``<run_dir>/grpo`` and return the final model folder (resumable).

    Trial runs (`max_steps` among the overrides) behave as in `tatar.train.sft.run_sft`.
    """
    from tatar.train.model import train_and_save
    from tatar.train.preflight import check_stage_args, preflight
    from tatar.train.rundir import (
        final_dir,
        is_complete,
        prepare_run_dir,
        trial_final,
    )

    check_stage_args(cfg, "grpo", grpo_args, **overrides)
    trial = overrides.get("max_steps") is not None
    folder = prepare_run_dir(cfg, "grpo", overwrite=overwrite)
    if is_complete(cfg, "grpo"):
        print(f"GRPO already finished: {final_dir(cfg, 'grpo')} (use --overwrite to train again)")
        return final_dir(cfg, "grpo")
    done = trial_final(cfg, "grpo")
    if done and trial and overrides["max_steps"] <= done["global_step"]:
        print(
            f"GRPO trial run of {done['global_step']} steps already done: "
            f"{final_dir(cfg, 'grpo')} (rerun without --max-steps, or with a larger one, to continue)"
        )
        return final_dir(cfg, "grpo")
    start = init_model(cfg, trial=trial)
    records = preflight(cfg, "grpo", grpo_args, **overrides)
    trainer, processor = build_grpo_trainer(
        cfg, model_path=start, progress=progress, records=records, **overrides
    )
    info = trainer.tatar_info
    a = trainer.args
    if trainer.accelerator.is_main_process:
        print(
            f"GRPO: {info['model']} on {info['rows']} prompts (IQA {info['tasks']['iqa']}, IAA "
            f"{info['tasks']['iaa']}); rewards {[f.__name__ for f in trainer.reward_funcs]} "
            f"(preset {cfg.raw.get('grpo', {}).get('rewards', {}).get('preset', 'paper')}); "
            f"G={a.num_generations}, beta {a.beta}, epsilon {a.epsilon}, lr {a.learning_rate}, "
            f"sampling temperature {a.temperature} top_k {a.top_k} top_p {a.top_p}; "
            f"run folder {folder}",
            flush=True,
        )
    return train_and_save(trainer, processor, cfg, "grpo", folder, info, trial)
