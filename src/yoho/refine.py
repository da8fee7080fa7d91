"""Correction rounds: the physician adds circles where the mask is wrong; the network follows.

The network trained by `yoho.pipeline.segment` is kept (warm start) and trained a few more
steps (`Profile.refine`) on a small rendered set that contains every circle so far, the new
ones included; then it predicts again and the post-processing runs with all circles. A round
costs seconds, not the minute of the first training. The previous round's network is not
changed (it is copied), so a round can be undone by going back to it.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch

from yoho.annotation import Annotation, validate_annotation
from yoho.losses import yoho_loss
from yoho.model.net import EdgeUNet
from yoho.pipeline import predict_lesion
from yoho.postprocess import focus_on_clicks
from yoho.predict import SegmentationResult
from yoho.profiles import DEFAULT_PROFILE, Profile, get_profile
from yoho.render.dataset import RenderedDataset
from yoho.roi_crop import crop_for_training
from yoho.threads import thread_invariant_math
from yoho.train import ProgressFn, StopFn, TrainingCancelled, resolve_device

__all__ = ["refine"]


def refine(
    image: np.ndarray,
    annotation: Annotation,
    model: EdgeUNet,
    profile: str | Profile = DEFAULT_PROFILE,
    seed: int = 0,
    device: str | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    roi_clip: bool | None = None,
    previous_mask: np.ndarray | None = None,
) -> SegmentationResult:
    """One correction round: continue training `model` with every circle of `annotation`.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB, the image the network was trained on.
    annotation : the annotation with its correction rounds (`Annotation.with_round`); the last
        round is the one being applied. All rounds' circles are used.
    model : the network of the previous round (or of `segment(..., keep_model=True)`); it is
        copied, never changed.
    profile : the profile the network was trained with (its `refine` options are used).
    seed : seeds the round's rendered set and batch order (with the round's number).
    device, progress, should_stop, roi_clip : as for `yoho.pipeline.segment`.
    previous_mask : the mask the physician corrected (the previous round's). With the profile's
        `refine.focus`, the mask changes only near this round's circles.

    Returns
    -------
    SegmentationResult whose `model` is the refined network and `curve` the round's losses.
    """
    prof = get_profile(profile)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"image must be an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}"
        )
    validate_annotation(annotation, image.shape)
    dev = resolve_device(device)
    with thread_invariant_math(prof.thread_invariant and dev.type == "cpu"):
        return _refine(image, annotation, model, prof, seed, dev, progress, should_stop, roi_clip,
                       previous_mask)  # fmt: skip


def _refine(image, annotation, model, prof, seed, dev, progress, should_stop, roi_clip,
            previous_mask):  # fmt: skip
    t0 = time.perf_counter()
    round_seed = seed + 7919 * len(annotation.rounds)  # a fresh stream per round
    merged = annotation.merged()
    opt = prof.refine
    work_image, work_ann, box = crop_for_training(image, merged, prof.roi_crop)
    length = max(1, opt.steps * prof.batch_size)
    views = max(1, round(opt.original_share * length))
    dataset = RenderedDataset(
        work_image,
        work_ann,
        prof.input_size,
        length,
        seed=round_seed,
        options=dataclasses.replace(prof.render, original_views=views),
    )
    net = copy.deepcopy(model).to(dev)
    net.train()
    if opt.freeze_norm:
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    params = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=opt.lr)
    order = torch.randperm(length, generator=torch.Generator().manual_seed(round_seed)).tolist()
    setup = time.perf_counter() - t0
    losses: list[float] = []
    for step in range(opt.steps):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"refinement stopped by request at step {step}/{opt.steps}")
        samples = [dataset[i] for i in order[step * prof.batch_size : (step + 1) * prof.batch_size]]
        x = torch.stack([s["image"] for s in samples]).to(dev)
        seg = torch.stack([s["seg"] for s in samples]).to(dev).long()
        edge = torch.stack([s["edge"] for s in samples]).to(dev).long()
        loss, _ = yoho_loss(net(x), seg, edge, prof.loss)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        value = float(loss.detach())
        if not np.isfinite(value):
            raise FloatingPointError(f"refinement diverged at step {step + 1} (loss {value})")
        losses.append(value)
        if progress is not None:
            progress(step + 1, opt.steps, value)
    net.eval()
    t1 = time.perf_counter()
    # The round's own post-processing settings, where it has them; the profile's otherwise.
    names = ("sure_high", "sure_low", "grabcut_iterations")
    round_post = {n: getattr(opt, n) for n in names if getattr(opt, n) is not None}
    post = dataclasses.replace(prof.post, **round_post)
    probability, raw, mask, clip, details = predict_lesion(
        net, image, merged, work_image, box, dataclasses.replace(prof, post=post), dev, roi_clip
    )
    if opt.focus is not None and previous_mask is not None and annotation.rounds:
        mask = focus_on_clicks(previous_mask, mask, annotation, opt.focus)
    t2 = time.perf_counter()
    return SegmentationResult(
        mask=mask,
        raw_mask=raw,
        probability=probability,
        timings={"setup": setup, "train": t1 - t0 - setup, "predict": t2 - t1, "total": t2 - t0},
        curve=losses,
        profile=prof.name,
        seed=seed,
        device=str(dev),
        complement=annotation.complement,
        roi_clip=clip,
        model=net,
        post=details,
    )
