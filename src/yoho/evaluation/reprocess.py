"""Post-processing ablations for free: re-threshold YOHO's saved probabilities.

The runner saves each YOHO lesion probability (8-bit PNG). Switching the post-processing or
the ROI clip off, or moving the threshold, needs no retraining: this module recomputes the
masks and metrics from those files and adds them to the store as methods labelled
`<yoho label> [<variant>]`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from yoho.annotation import load_annotation
from yoho.evaluation.dataset import Item
from yoho.evaluation.runner import method_dir
from yoho.evaluation.store import ResultStore
from yoho.io import read_image, read_mask, read_probability
from yoho.metrics import all_metrics
from yoho.postprocess import PostOptions, refine_mask
from yoho.profiles import get_profile

__all__ = ["VARIANTS", "reprocess"]

_FULL = PostOptions(force_circles=True, fill_holes=True, keep_seeded=True, grabcut_refine=True)
_GUIDED = replace(get_profile("cpu_guided").post, calibrate=False)
# `cpu_shuffled_seeded`'s steps: `_GUIDED` with the network's seeds from one circle on and its
# sure lesion as lesion seeds (its network differs, not its other steps).
_SEEDED = replace(get_profile("cpu_shuffled_seeded").post, calibrate=False)

# name -> (post-processing, ROI clip, threshold); "full" is what `cpu_tuned` does. The two
# "flat" controls replace the network's map by a constant: the same post-processing then
# starts GrabCut from the ROI as probable normal (0.4) or probable lesion (0.6) tissue, which
# tells how much of the result the trained network contributes.
FLAT = {"control_flat_0.4": 0.4, "control_flat_0.6": 0.6}
VARIANTS: dict[str, tuple[PostOptions, bool, float]] = {
    # ¼ network map + ¾ random-walker probability from the same clicks (what `cpu_fused` does),
    # and its control: the walker's probability alone through the same post-processing, which
    # tells what the network adds to the fusion.
    "fuse_random_walker": (
        replace(_FULL, walker_share=get_profile("cpu_fused").post.walker_share),
        True,
        0.5,
    ),
    "control_random_walker": (replace(_FULL, walker_share=1.0), True, 0.5),
    # The walker on the image and the network's map through `cpu_guided`'s post-processing
    # (its guide weight and GrabCut thresholds; the saved map is already calibrated), and its
    # control: the same post-processing from the walker on the image alone.
    "guide_random_walker": (_GUIDED, True, 0.5),
    "guide_control_random_walker": (replace(_GUIDED, walker_guide=0.0), True, 0.5),
    # `cpu_guided` without its check against a walk that spread past the lesion (leak_ratio),
    # and the same for its control.
    "guide_no_leak_check": (replace(_GUIDED, leak_ratio=0.0), True, 0.5),
    "guide_control_no_leak_check": (replace(_GUIDED, walker_guide=0.0, leak_ratio=0.0), True, 0.5),
    # `cpu_guided` without the network's confident normal tissue as walker seeds
    # (network_seeds): the default before they came in.
    "guide_no_network_seeds": (replace(_GUIDED, network_seeds=0.0), True, 0.5),
    # ... and with them from one lesion circle on (`network_seeds_min_circles` 1), not three;
    # then also with the network's sure lesion joined to the circle as lesion seeds of a walk
    # from one or two circles (`network_lesion_seeds`).
    "guide_network_seeds_one_circle": (
        replace(_GUIDED, network_seeds_min_circles=1),
        True,
        0.5,
    ),
    "guide_network_lesion_seeds": (_SEEDED, True, 0.5),  # what `cpu_shuffled_seeded` does
    # The same three with GrabCut's colour models started from a deterministic split of each
    # side's pixels instead of k-means++ (`grabcut_start`): the control keeps its share fair.
    "guide_grabcut_split": (replace(_GUIDED, grabcut_start="split"), True, 0.5),
    "guide_control_grabcut_split": (
        replace(_GUIDED, walker_guide=0.0, grabcut_start="split"),
        True,
        0.5,
    ),
    "guide_network_lesion_seeds_grabcut_split": (
        replace(_SEEDED, grabcut_start="split"),
        True,
        0.5,
    ),
    # GrabCut's sure lesion raised on the guided walker's map, sure normal kept: with three
    # lesion circles the walker calls much of a loose ROI lesion with confidence.
    "guide_sure_0.8_0.3": (replace(_GUIDED, sure_high=0.8), True, 0.5),
    "guide_sure_0.9_0.3": (replace(_GUIDED, sure_high=0.9), True, 0.5),
    # GrabCut's sure normal lowered, sure lesion kept: with one lesion circle in a tight ROI the
    # walker's map falls below 0.3 over the lesion's rim, and the band forbids it to GrabCut.
    "guide_sure_0.7_0.2": (replace(_GUIDED, sure_low=0.2), True, 0.5),
    "guide_sure_0.7_0.1": (replace(_GUIDED, sure_low=0.1), True, 0.5),
    "guide_sure_0.7_0.05": (replace(_GUIDED, sure_low=0.05), True, 0.5),
    "control_flat_0.4": (_FULL, True, 0.5),
    "control_flat_0.6": (_FULL, True, 0.5),
    "full": (_FULL, True, 0.5),
    "no_grabcut_refine": (replace(_FULL, grabcut_refine=False), True, 0.5),
    "no_postprocess": (PostOptions(), True, 0.5),
    "no_postprocess+no_roi_clip": (PostOptions(), False, 0.5),
    "no_force_circles": (replace(_FULL, force_circles=False), True, 0.5),
    "no_fill_holes": (replace(_FULL, fill_holes=False), True, 0.5),
    "no_keep_seeded": (replace(_FULL, keep_seeded=False), True, 0.5),
    "grabcut_sure_0.7_0.3": (replace(_FULL, sure_high=0.7, sure_low=0.3), True, 0.5),
    "grabcut_sure_0.9_0.1": (replace(_FULL, sure_high=0.9, sure_low=0.1), True, 0.5),
}


def reprocess(
    store: ResultStore,
    items: list[Item],
    out_dir: Path,
    setting: str,
    method: str,
    variants: list[str],
    mask_threshold: int = 127,
) -> int:
    """Add one row per (image, variant) recomputed from the saved probabilities.

    Returns the number of rows added; rows already in the store are not recomputed.
    """
    folder = method_dir(out_dir, setting, method, "probability")
    rows = []
    for item in items:
        path = folder / f"{item.name}.png"
        todo = [v for v in variants if not store.done(item.name, setting, f"{method} [{v}]")]
        if not path.is_file() or not todo:
            continue  # no probability saved, or every variant done (resumable)
        image = read_image(item.image)
        gt = read_mask(item.mask, image.shape, threshold=mask_threshold)
        ann = load_annotation(Path(out_dir) / "annotations" / setting / f"{item.name}.json")
        prob = read_probability(path, image.shape)
        for variant in todo:
            post, clip, threshold = VARIANTS[variant]
            source = np.full_like(prob, FLAT[variant]) if variant in FLAT else prob
            mask = refine_mask(source, ann, post, threshold, clip, image)
            row = {
                "image": item.name,
                "setting": setting,
                "method": f"{method} [{variant}]",
                "kind": "yoho-reprocessed",
                "seconds": float("nan"),
                **all_metrics(mask, gt),
                "error": "",
            }
            rows.append(row)
    store.add(rows)
    return len(rows)
