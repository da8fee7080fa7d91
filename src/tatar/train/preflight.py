"""Checks a training stage runs before any model or processor is loaded.

Everything here fails with a one-line ValueError/FileNotFoundError naming the config file and
key, the file or the device: the records files and their images (present and readable), the
device the TRL arguments ask for, the training arguments themselves (TRL's own validation,
built with the overrides of the command line), and the model to start from (a folder, or a hub id
that is cached or can be downloaded).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tatar.train.config import TrainConfig

# Image files whose header is opened per source before training starts; more are only checked
# for existence (opening 100k headers costs minutes on network storage).
MAX_HEADER_CHECKS = 20000


def check_device(where: str, args: dict) -> None:
    """The device the stage's TRL arguments need is present (CUDA for bf16/fp16/vLLM)."""
    import torch

    if args.get("use_cpu") or torch.cuda.is_available():
        return
    for key in ("bf16", "fp16", "use_vllm"):
        if args.get(key):
            raise ValueError(
                f"{where}.{key}: true needs a CUDA GPU and this machine has none "
                "(torch.cuda.is_available() is False); for a CPU run set use_cpu: true and "
                "bf16: false (as configs/tiny-cpu.yaml does)"
            )


def check_images(records: Sequence, where: str, *, max_headers: int = MAX_HEADER_CHECKS) -> None:
    """Every record's image exists and the first `max_headers` open as images (header only)."""
    from PIL import Image, UnidentifiedImageError

    for i, r in enumerate(records):
        path = Path(r.image)
        if i >= max_headers:
            continue
        try:
            with Image.open(path) as im:
                im.size  # noqa: B018 - the header is parsed on open; size proves it
        except FileNotFoundError:
            raise
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ValueError(f"{where}: cannot read image {path}: {exc}") from None


def check_stage_args(cfg: TrainConfig, stage: str, args_fn, **overrides) -> None:
    """Build the stage's TRL arguments once (TRL's own validation) and check the device."""
    where = f"{cfg.path}: {stage}"
    merged = {**(cfg.sft.args if stage == "sft" else cfg.grpo.args), **overrides}
    check_device(where, merged)
    from tatar.train.config import missing_reporters

    missing = missing_reporters(list(merged.get("report_to") or []))
    if missing:
        raise ValueError(
            f"{where}.report_to: {missing[0]} is not installed; pip install -e '.[{missing[0]}]'"
        )
    try:
        args_fn(cfg, "/nonexistent-output-dir", **overrides)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {str(exc).splitlines()[0]}") from None


def preflight(cfg: TrainConfig, stage: str, args_fn, **overrides) -> list:
    """Run every check of a stage and return its training records (read once)."""
    from tatar.train.records import load_records

    check_stage_args(cfg, stage, args_fn, **overrides)
    sources = cfg.data.train if stage == "sft" else cfg.data.grpo
    records = load_records(sources, cfg.run_dir)
    check_images(records, f"{cfg.path}: data.{'train' if stage == 'sft' else 'grpo'}")
    return records
