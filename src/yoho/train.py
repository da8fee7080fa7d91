"""Over-fit training of one network on the rendered set of one image."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from yoho.annotation import Annotation
from yoho.io import write_bytes
from yoho.losses import yoho_loss
from yoho.model.net import EdgeUNet, ModelConfig, build_model
from yoho.profiles import Profile, check_averaging, get_profile
from yoho.render.dataset import RenderedDataset
from yoho.threads import available_cores

__all__ = [
    "TrainingCancelled",
    "TrainResult",
    "resolve_device",
    "train",
    "save_checkpoint",
    "load_checkpoint",
]

ProgressFn = Callable[[int, int, float], None]
StopFn = Callable[[], bool]


class TrainingCancelled(RuntimeError):
    """Raised when the `should_stop` hook asks training to stop."""


@dataclass
class TrainResult:
    model: EdgeUNet
    losses: list[float] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0
    device: str = "cpu"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`None`/"auto" → CUDA, else Apple MPS, else CPU; anything else is passed to torch."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None


def loader_workers(requested: int) -> int:
    """DataLoader workers for a profile's `workers` (-1: the available cores but one, ≤ 16)."""
    if requested >= 0:
        return requested
    return max(0, min(16, available_cores() - 1))


def _autocast(device: torch.device, enabled: bool):
    """bf16 (or fp16) autocast on CUDA; on CPU and MPS autocast rarely speeds up training."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def _batches(length: int, batch: int, steps: int, epochs: int, seed: int) -> list[list[int]]:
    """Index lists for every step: a fresh seeded permutation per epoch, drop-last style."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        order: list[int] = []
        while len(order) < steps * batch:  # a short set is walked more than once per epoch
            order += torch.randperm(length, generator=gen).tolist()
        out += [order[i * batch : (i + 1) * batch] for i in range(steps)]
    return out


def _set_encoder_frozen(model: EdgeUNet, frozen: bool) -> None:
    model.encoder.requires_grad_(not frozen)


def train(
    image: np.ndarray,
    annotation: Annotation,
    profile: str | Profile = "cpu",
    seed: int = 0,
    device: str | torch.device | None = None,
    encoder_weights: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainResult:
    """Train the edge-enhanced UNet on the rendered set of one image.

    Parameters
    ----------
    image, annotation : the original RGB image and its (validated) annotation.
    profile : a profile name or `Profile`.
    seed : seeds the network initialisation, the rendering and the batch order. On CPU the
        same seed gives the same network bit for bit.
    device : "cpu", "cuda", "mps", or None for the best available.
    encoder_weights : local ImageNet state dict (or "imagenet" to let torchvision download).
    progress : called after every step as progress(step, total_steps, loss).
    should_stop : polled before every step; when it returns True, TrainingCancelled is raised.
    """
    prof = get_profile(profile)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    dataset = RenderedDataset(
        image, annotation, prof.input_size, prof.length, seed=seed, options=prof.render
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(prof.model, encoder_weights)
    pretrained = encoder_weights is not None
    channels_last = prof.channels_last and dev.type == "cuda"
    model = model.to(dev, memory_format=torch.channels_last if channels_last else None)
    batches = _batches(len(dataset), prof.batch_size, prof.steps_per_epoch, prof.epochs, seed)
    workers = loader_workers(prof.workers) if dev.type == "cuda" else 0
    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
    )
    autocast, scaler = _autocast(dev, prof.amp)
    # An average of the weights (BatchNorm statistics included) smooths out the last noisy steps
    # of a short schedule, so that two runs whose rounding differs (thread counts) end closer;
    # the average is the network that is returned. Either exponential over the whole run or
    # plain over the last steps: an exponential one long enough to steady the masks still gave
    # the young weights of mid-run a third of its weight (docs/yoho_evaluation.md).
    check_averaging(prof)  # a profile passed in directly was never registered
    averaged, average_from = None, 0
    if prof.ema_decay:
        averaged = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(prof.ema_decay), use_buffers=True
        )
    elif prof.average_last:
        averaged = AveragedModel(model, use_buffers=True)  # the running mean
        average_from = max(0, prof.total_steps - prof.average_last)
    result = TrainResult(model=model, device=str(dev), setup_seconds=time.perf_counter() - t0)

    total = prof.total_steps
    phase_of_epoch = [i for i, p in enumerate(prof.phases) for _ in range(p.epochs)]
    epoch = -1
    optimiser = scheduler = None
    for step, batch in enumerate(loader):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"training stopped by request at step {step}/{total}")
        if step % prof.steps_per_epoch == 0:
            if scheduler is not None:
                scheduler.step()
            epoch += 1
            phase = prof.phases[phase_of_epoch[epoch]]
            if epoch == 0 or phase_of_epoch[epoch] != phase_of_epoch[epoch - 1]:
                frozen = phase.freeze_encoder and pretrained
                _set_encoder_frozen(model, frozen)
                params = [p for p in model.parameters() if p.requires_grad]
                optimiser = torch.optim.Adam(params, lr=phase.lr)
                scheduler = torch.optim.lr_scheduler.StepLR(optimiser, 1, gamma=prof.lr_gamma)
        model.train()
        if phase.freeze_encoder and pretrained:
            model.encoder.eval()  # frozen means frozen: BatchNorm statistics too
        x = batch["image"].to(dev, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        seg = batch["seg"].to(dev, non_blocking=True).long()
        edge = batch["edge"].to(dev, non_blocking=True).long()
        with autocast:
            output = model(x)
        loss, parts = yoho_loss(output, seg, edge, prof.loss)
        optimiser.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
        else:
            loss.backward()
            optimiser.step()
        if averaged is not None and step >= average_from:
            averaged.update_parameters(model)
        value = float(loss.detach())
        if not np.isfinite(value):
            raise FloatingPointError(f"training diverged at step {step + 1} (loss {value})")
        result.losses.append(value)
        result.parts.append(parts)
        if progress is not None:
            progress(step + 1, total, value)
    if averaged is not None:
        result.model = model = averaged.module
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result


def save_checkpoint(path: str | os.PathLike, model: EdgeUNet, meta: dict | None = None) -> Path:
    """Write the network (state dict, its config and `meta`) atomically."""
    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"model": state, "config": model.config.to_dict(), "meta": meta or {}}, buffer)
    return write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> tuple[EdgeUNet, dict]:
    """Read a checkpoint written by `save_checkpoint`: (model in eval mode, meta)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        config = dict(data["config"])
        for key in ("decoder_channels", "side_channels"):
            config[key] = tuple(config[key])
        model = EdgeUNet(ModelConfig(**config))
        model.load_state_dict(data["model"])
    except Exception as exc:  # torch.load raises many types (pickle, zip, struct) on junk
        raise ValueError(f"{path}: not a YOHO checkpoint ({exc})") from None
    model.eval()
    return model, dict(data.get("meta") or {})
