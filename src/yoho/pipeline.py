"""The single public entry point: one image and its annotation in, one lesion mask out.

Used by the CLI, the evaluation runner and the web tool. Each call trains its own network on
the given image only (nothing is shared between images) and applies it to that image.
"""

from __future__ import annotations

import os
import time

import numpy as np

from yoho.annotation import Annotation, validate_annotation
from yoho.postprocess import refine_mask
from yoho.predict import SegmentationResult, lesion_from_probability, predict_target_probability
from yoho.profiles import DEFAULT_PROFILE, Profile, get_profile
from yoho.roi_crop import crop_for_training, paste_probability
from yoho.threads import thread_invariant_math
from yoho.train import ProgressFn, StopFn, TrainingCancelled, resolve_device, train

__all__ = ["segment", "SegmentationResult", "TrainingCancelled"]


def segment(
    image: np.ndarray,
    annotation: Annotation,
    profile: str | Profile = DEFAULT_PROFILE,
    seed: int = 0,
    device: str | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    weights: str | os.PathLike | None = None,
    roi_clip: bool | None = None,
    keep_model: bool = False,
) -> SegmentationResult:
    """Segment the lesion of one image from its annotation.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    annotation : the physician's input (validated against the image here).
    profile : profile name (default `cpu_guided`; "paper", "cpu", "tiny", or a registered
        one) or a `Profile`.
    seed : makes the run reproducible (bit for bit on CPU).
    device : "cpu", "cuda", "mps" or None (best available).
    progress : progress(step, total_steps, loss), called after each training step.
    should_stop : polled before each step; True cancels with `TrainingCancelled`.
    weights : ImageNet encoder weights, a local file (or "imagenet": explicit download).
    roi_clip : override the profile's ROI clipping of the prediction.
    keep_model : return the trained network in the result (otherwise it is dropped).

    Returns
    -------
    SegmentationResult with the mask, the lesion probability, timings and the loss curve.
    """
    prof = get_profile(profile)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"image must be an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}"
        )
    validate_annotation(annotation, image.shape)
    annotation = annotation.merged()  # correction rounds count like the first circles
    dev = resolve_device(device)
    invariant = thread_invariant_math(prof.thread_invariant and dev.type == "cpu")
    with invariant:
        return _segment(image, annotation, prof, seed, dev, progress, should_stop, weights,
                        roi_clip, keep_model)  # fmt: skip


def predict_lesion(model, image, annotation, work_image, box, prof, dev, roi_clip):
    """(lesion probability, raw mask, final mask, ROI clip used, post-processing details) of a
    trained network (the details: what `refine_mask` decided, e.g. its leak check).

    The network sees `work_image` (the whole image, or the ROI crop at `box`); its map is
    pasted back, calibrated to the clicks and post-processed as the profile says. Shared by
    the first segmentation and every correction round (`yoho.refine`).
    """
    target = predict_target_probability(
        model, work_image, prof.input_size, dev, tta_flip=prof.tta_flip
    )
    target = paste_probability(target, box, annotation.shape)
    clip = prof.roi_clip if roi_clip is None else roi_clip
    probability, raw, mask = lesion_from_probability(
        target,
        annotation,
        prof.threshold,
        clip,
        calibrate_image=image if prof.post.calibrate else None,
    )
    details: dict = {}
    if prof.post.active:
        mask = refine_mask(probability, annotation, prof.post, prof.threshold, clip, image,
                           details)  # fmt: skip
    return probability, raw, mask, clip, details


def _segment(image, annotation, prof, seed, dev, progress, should_stop, weights, roi_clip,
             keep_model) -> SegmentationResult:  # fmt: skip
    t0 = time.perf_counter()
    # Optionally train on the ROI's neighbourhood only (more pixels on the lesion).
    work_image, work_ann, box = crop_for_training(image, annotation, prof.roi_crop)
    trained = train(
        work_image,
        work_ann,
        prof,
        seed=seed,
        device=dev,
        encoder_weights=weights,
        progress=progress,
        should_stop=should_stop,
    )
    t1 = time.perf_counter()
    probability, raw, mask, clip, details = predict_lesion(
        trained.model, image, annotation, work_image, box, prof, dev, roi_clip
    )
    t2 = time.perf_counter()
    return SegmentationResult(
        mask=mask,
        raw_mask=raw,
        probability=probability,
        timings={
            "setup": trained.setup_seconds,
            "train": trained.seconds - trained.setup_seconds,
            "predict": t2 - t1,
            "total": t2 - t0,
        },
        curve=trained.losses,
        profile=prof.name,
        seed=seed,
        device=trained.device,
        complement=annotation.complement,
        roi_clip=clip,
        model=trained.model if keep_model else None,
        post=details,
    )
