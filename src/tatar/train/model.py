"""Model, processor and adapter set-up shared by both stages, and the final save."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from tatar.train.config import TrainConfig


def apply_runtime(cfg: TrainConfig) -> None:
    """Process-wide settings of the config (torch CPU threads)."""
    if cfg.launch.cpu_threads:
        import torch

        torch.set_num_threads(cfg.launch.cpu_threads)


def base_model(cfg: TrainConfig) -> str:
    """The base model to start from: the configured folder / hub id, or the tiny checkpoint.

    With ``model.path: tiny`` the tiny random Qwen2.5-VL is built into ``<run_dir>/base-model``
    once (a rerun with the same spec reuses it).
    """
    if not cfg.model.is_tiny:
        from tatar.hub import resolve_model

        return str(resolve_model(cfg.model.path).path)
    from tatar.tiny_model import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(**cfg.model.tiny)
    folder = cfg.run_dir / "base-model"
    saved = folder / "tiny_model_spec.json"
    if saved.is_file() and json.loads(saved.read_text()) == asdict(spec):
        return str(folder)
    build_tiny_model(folder, spec, overwrite=True)
    return str(folder)


def load_processor(model_path: str, pixels: dict[str, int]):
    """`AutoProcessor` with the pixel limits (``{"min_pixels", "max_pixels"}``) passed at
    construction, as the image processor's `size` (not assigned afterwards, which newer
    transformers silently ignore)."""
    from transformers import AutoProcessor

    from tatar.generation import processor_pixel_kwargs

    processor = AutoProcessor.from_pretrained(
        model_path, **processor_pixel_kwargs(**pixels, model_path=model_path)
    )
    if not hasattr(processor, "image_processor"):
        raise ValueError(
            f"{model_path}: AutoProcessor returned {type(processor).__name__}, not an image-text "
            "processor (is the checkpoint's processor config missing?)"
        )
    return processor


# Where image-text models keep their vision encoder, and the names of the projector (vision ->
# language) inside or next to it, which stays trainable when the encoder is frozen.
_VISION_ATTRS = ("visual", "vision_tower", "vision_model")
_PROJECTOR_NAMES = ("merger", "multi_modal_projector", "connector")


def freeze_vision_tower(model) -> int:
    """Stop gradients into the vision encoder (the projector keeps training); return the number
    of frozen parameters. Raises ValueError when the model has no known vision encoder."""
    inner = getattr(model, "model", model)
    tower = next(
        (getattr(m, a) for m in (inner, model) for a in _VISION_ATTRS if hasattr(m, a)), None
    )
    if tower is None:
        raise ValueError(
            f"{type(model).__name__}: no vision encoder found (looked for {', '.join(_VISION_ATTRS)})"
        )
    frozen = 0
    for name, param in tower.named_parameters():
        if not any(p in name.split(".") for p in _PROJECTOR_NAMES):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def load_model(cfg: TrainConfig, model_path: str):
    """The model object to train, or the path when TRL should load it itself.

    TRL loads from the path with ``model.init_kwargs``; the model is loaded here only when it
    must be changed before training (``model.freeze_vision_tower``), the same way TRL does.
    """
    if not cfg.model.freeze_vision_tower:
        return model_path
    from trl.trainer.utils import create_model_from_path

    model = create_model_from_path(model_path, **dict(cfg.model.init_kwargs))
    freeze_vision_tower(model)
    return model


def peft_config(cfg: TrainConfig):
    """`peft.LoraConfig` from the config's ``peft`` section, or None (full fine-tune)."""
    if cfg.peft is None:
        return None
    from peft import LoraConfig

    kwargs = {"task_type": "CAUSAL_LM", **cfg.peft}
    return LoraConfig(**kwargs)


def train_and_save(trainer, processor, cfg: TrainConfig, stage: str, folder: Path, info: dict,
                   trial: bool) -> Path:  # fmt: skip
    """Train `trainer` (resuming from the last checkpoint in `folder`) and save the stage.

    The one ending shared by SFT and GRPO: the stage record (`tatar.train.card.stage_record`)
    says what was trained from what, and `save_final` writes it with the model.
    """
    from tatar.train.card import stage_record
    from tatar.train.rundir import final_dir, last_checkpoint

    checkpoint = last_checkpoint(folder)
    if checkpoint is not None and trainer.accelerator.is_main_process:
        print(f"resuming from {checkpoint}", flush=True)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    record = stage_record(
        cfg,
        stage,
        start_model=info["model"],
        base_model=cfg.model.path if not cfg.model.is_tiny else base_model(cfg),
        global_step=trainer.state.global_step,
        planned_steps=trainer.state.max_steps,
        trial=trial,
        rows=info["rows"],
        tasks=info["tasks"],
    )
    return save_final(trainer, processor, final_dir(cfg, stage), record)


def save_final(trainer, processor, folder: Path, record: dict | None = None) -> Path:
    """Write the trained model and its processor to `folder`, atomically (main process).

    A LoRA model is merged into its base first, so the next stage (or evaluation) loads a plain
    checkpoint. The folder is written next to its final place and moved in at the end. With
    `record` (`tatar.train.card.stage_record`), ``tatar_stage.json`` and the model card
    ``README.md`` are written with it.
    """
    from accelerate.utils import is_peft_model

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    acc = trainer.accelerator
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    acc.wait_for_everyone()
    model = acc.unwrap_model(trainer.model)
    if is_peft_model(model):
        merged = model.merge_and_unload()
        if acc.is_main_process:
            merged.save_pretrained(tmp)
    else:
        trainer.save_model(str(tmp))  # gathers ZeRO-3 shards; writes on the main process
    if acc.is_main_process:
        processor.save_pretrained(tmp)
        if record is not None:
            from tatar.outputs import atomic_write_json, atomic_write_text
            from tatar.train.card import STAGE_FILE, model_card

            atomic_write_json(tmp / STAGE_FILE, record)
            atomic_write_text(tmp / "README.md", model_card(record))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    acc.wait_for_everyone()
    return folder


def shutdown_distributed() -> None:
    """Wait for every process, then tear the process group down.

    Without this, a multi-process run can abort at interpreter exit ("terminate called without
    an active exception" from a communication thread) after all its work is saved, and the
    launcher then reports a failure.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
