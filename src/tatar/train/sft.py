"""Stage 1: SFT with asymmetric thought dropout, on TRL's own SFTTrainer.

Each record becomes a prompt-completion example: prompt = the chat-templated
`tatar.prompts.build_messages(task)` with the image, completion =
``format_completion(gt_100, rationale or None)`` followed by the template's end-of-turn token
(``<|im_end|>``), the rationale removed with the task's thought-dropout probability (per sample,
per epoch, seeded; `tatar.train.dropout`). Records without a rationale train answer-only.

The loss covers the completion and its end-of-turn token only. TRL's vision collator builds
that mask from the completion's own tokens before padding (prompts padded left, completions
right, then flushed left), so it is right whatever the padding side and row lengths; the
released collator masked ``[0, prompt_len)`` of left-padded rows and trained on the prompt tail
of every row but the longest. No SFTTrainer subclass or custom collator is needed.
"""

from __future__ import annotations

from pathlib import Path

from tatar.train.config import TrainConfig, trl_kwargs


def sft_args(cfg: TrainConfig, output_dir: str | Path, **overrides):
    """The `trl.SFTConfig` of a config (TATAR-managed fields set here; `overrides` last)."""
    from trl import SFTConfig

    kwargs = trl_kwargs(SFTConfig, cfg.sft.args, overrides)
    kwargs.update(
        output_dir=str(output_dir),
        remove_unused_columns=False,  # the transform adds the columns the collator reads
        completion_only_loss=True,
        assistant_only_loss=False,
        dataset_kwargs={"skip_prepare_dataset": True},
    )
    if cfg.model.init_kwargs:
        kwargs["model_init_kwargs"] = dict(cfg.model.init_kwargs)
    return SFTConfig(**kwargs)


def dropout_seed(cfg: TrainConfig) -> int:
    return int(cfg.sft.args.get("seed", 42))


def sft_dataset(cfg: TrainConfig, processor, *, load_images: bool = True, records=None):
    """The SFT dataset (lazy: rows are built and images loaded when read), its transform and
    the number of rows per task (`records`: already read by the preflight)."""
    from tatar.train.dropout import SFTTransform
    from tatar.train.records import load_records, records_dataset, task_counts

    if records is None:
        records = load_records(cfg.data.train, cfg.run_dir)
    dataset = records_dataset(records, cfg.data)
    counts = task_counts(dataset)
    transform = SFTTransform(
        processor, cfg.sft.thought_dropout, dropout_seed(cfg), load_images=load_images
    )
    dataset.set_transform(transform)
    return dataset, transform, counts


def _check_world_size(cfg: TrainConfig, trainer) -> None:
    n = trainer.accelerator.num_processes
    if n != cfg.launch.num_processes and trainer.accelerator.is_main_process:
        print(
            f"warning: {cfg.path.name} is written for {cfg.launch.num_processes} process(es), "
            f"running on {n}: the effective batch size differs from the config's",
            flush=True,
        )


def build_sft_trainer(
    cfg: TrainConfig, *, model=None, progress: bool = True, records=None, **overrides
):
    """An SFTTrainer for `cfg` writing to ``<run_dir>/sft`` (nothing is trained yet)."""
    from trl import SFTTrainer

    from tatar.train.callbacks import RunLogCallback
    from tatar.train.dropout import EpochCallback
    from tatar.train.model import (
        apply_runtime,
        base_model,
        load_model,
        load_processor,
        peft_config,
    )
    from tatar.train.rundir import stage_dir

    apply_runtime(cfg)
    model_path = base_model(cfg)
    processor = load_processor(model_path, cfg.processor)
    dataset, transform, counts = sft_dataset(cfg, processor, records=records)
    folder = stage_dir(cfg, "sft")
    if not progress:
        overrides.setdefault("disable_tqdm", True)
    args = sft_args(cfg, folder, **overrides)
    trainer = SFTTrainer(
        model=model if model is not None else load_model(cfg, model_path),
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config(cfg),
        callbacks=[
            EpochCallback(transform),
            RunLogCallback(folder, "sft", title=f"SFT - {cfg.path.name}"),
        ],
    )
    trainer.tatar_info = {
        "model": model_path,
        "rows": len(dataset),
        "tasks": counts,
        "end_of_turn": transform.eot,
        "thought_dropout": dict(cfg.sft.thought_dropout),
    }
    _check_world_size(cfg, trainer)
    return trainer, processor


def run_sft(
    cfg: TrainConfig, *, overwrite: bool = False, progress: bool = True, **overrides
) -> Path:
    """Train stage 1 into ``<run_dir>/sft`` and return the final model folder.

    Rerunning resumes from the last checkpoint; a finished stage is not trained again. A trial
    run (`max_steps` among the overrides) is never the finished stage: its final model is marked
    as a trial, and a rerun with a longer plan continues from its last checkpoint. Inputs are
    checked (`tatar.train.preflight`) before any model is loaded.
    """
    from tatar.train.model import train_and_save
    from tatar.train.preflight import check_stage_args, preflight
    from tatar.train.rundir import (
        final_dir,
        is_complete,
        prepare_run_dir,
        trial_final,
    )

    check_stage_args(cfg, "sft", sft_args, **overrides)
    folder = prepare_run_dir(cfg, "sft", overwrite=overwrite)
    if is_complete(cfg, "sft"):
        print(f"SFT already finished: {final_dir(cfg, 'sft')} (use --overwrite to train again)")
        return final_dir(cfg, "sft")
    trial = overrides.get("max_steps") is not None
    done = trial_final(cfg, "sft")
    if done and trial and overrides["max_steps"] <= done["global_step"]:
        print(
            f"SFT trial run of {done['global_step']} steps already done: {final_dir(cfg, 'sft')} "
            "(rerun without --max-steps, or with a larger one, to continue)"
        )
        return final_dir(cfg, "sft")
    records = preflight(cfg, "sft", sft_args, **overrides)
    trainer, processor = build_sft_trainer(cfg, progress=progress, records=records, **overrides)
    info = trainer.tatar_info
    if trainer.accelerator.is_main_process:
        print(
            f"SFT: {info['model']} on {info['rows']} rows (IQA {info['tasks']['iqa']}, IAA "
            f"{info['tasks']['iaa']}), thought dropout {info['thought_dropout']}, targets end "
            f"with {info['end_of_turn']!r}; run folder {folder}",
            flush=True,
        )
    return train_and_save(trainer, processor, cfg, "sft", folder, info, trial)
