"""The public entry point: progress, cancellation, determinism, checkpoints, over-fitting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from yoho.metrics import dice
from yoho.physician import simulate_annotation
from yoho.pipeline import TrainingCancelled, segment
from yoho.predict import predict_target_probability
from yoho.profiles import (
    DEFAULT_PROFILE,
    Phase,
    Profile,
    get_profile,
    profile_names,
    register_profile,
)
from yoho.synthetic import synthetic_endoscopy
from yoho.train import load_checkpoint, resolve_device, save_checkpoint


def test_tiny_run_reports_progress_and_returns_a_mask(synthetic, synthetic_annotation):
    image, gt = synthetic
    calls = []
    result = segment(
        image, synthetic_annotation, "tiny", seed=0, progress=lambda *a: calls.append(a)
    )
    total = get_profile("tiny").total_steps
    assert [c[0] for c in calls] == list(range(1, total + 1))
    assert all(c[1] == total and np.isfinite(c[2]) for c in calls)
    assert result.mask.shape == gt.shape and result.mask.dtype == bool
    assert result.probability.shape == gt.shape
    assert result.probability.min() >= 0.0 and result.probability.max() <= 1.0
    assert len(result.curve) == total
    assert set(result.timings) == {"setup", "train", "predict", "total"}
    # ROI clip on: nothing outside the ROI.
    assert not (result.mask & ~synthetic_annotation.roi_mask()).any()


def test_same_seed_gives_the_same_result(synthetic, synthetic_annotation):
    image, _ = synthetic
    a = segment(image, synthetic_annotation, "tiny", seed=3)
    b = segment(image, synthetic_annotation, "tiny", seed=3)
    c = segment(image, synthetic_annotation, "tiny", seed=4)
    assert a.curve == b.curve
    assert np.array_equal(a.probability, b.probability)
    assert a.curve != c.curve


def test_cancellation(synthetic, synthetic_annotation):
    image, _ = synthetic
    seen = []

    def stop() -> bool:
        seen.append(1)
        return len(seen) > 3

    with pytest.raises(TrainingCancelled, match="step 3/"):
        segment(image, synthetic_annotation, "tiny", should_stop=stop)


def test_bad_inputs(synthetic, synthetic_annotation):
    image, _ = synthetic
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        segment(image, synthetic_annotation, "fast")
    with pytest.raises(ValueError, match="annotation is for a 128x128 image"):
        segment(image[:100], synthetic_annotation, "tiny")
    with pytest.raises(ValueError, match="uint8 RGB"):
        segment(image[..., 0], synthetic_annotation, "tiny")


def test_checkpoint_round_trip(tmp_path, synthetic, synthetic_annotation):
    image, _ = synthetic
    result = segment(image, synthetic_annotation, "tiny", keep_model=True)
    path = save_checkpoint(tmp_path / "model.pt", result.model, {"profile": "tiny"})
    model, meta = load_checkpoint(path)
    assert meta == {"profile": "tiny"}
    size = get_profile("tiny").input_size
    again = predict_target_probability(model, image, size)
    assert np.allclose(again, result.probability, atol=1e-6)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pt: not a YOHO checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def assert_differs_only_in(profile, base, *fields):
    """`profile` is `base` with `fields` changed (and its own name and description)."""
    assert all(getattr(profile, f) != getattr(base, f) for f in fields)
    restored = {f: getattr(base, f) for f in fields}
    renamed = dataclasses.replace(profile, name=base.name, description=base.description, **restored)
    assert renamed == base


def test_profiles_registry():
    assert {"paper", "cpu", "tiny"} <= set(__import__("yoho.profiles").profiles.PROFILES)
    paper = get_profile("paper")
    assert paper.total_steps == 1500 and paper.batch_size == 32 and paper.input_size == 256
    assert paper.length == 1600 and paper.phases[0] == Phase(20, 1e-3, True)
    # The default: `cpu`'s network and rates, 5 epochs of 15 steps (75, not `cpu`'s 100), and
    # the random-walker fusion; the network itself is the same as `cpu_calibrated`'s.
    fused, calibrated = get_profile("cpu_fused"), get_profile("cpu_calibrated")
    assert fused.total_steps == 75 and calibrated.total_steps == 100
    assert fused.model == calibrated.model and fused.phases == calibrated.phases
    assert fused.post.walker_share == 0.75 and calibrated.post.walker_share == 0.0
    # Since then: the same network; the walker walks on the image and the network's map.
    guided = get_profile(DEFAULT_PROFILE)
    assert guided.name == "cpu_guided" and guided.total_steps == 75
    assert guided.model == fused.model and guided.phases == fused.phases
    assert guided.post == dataclasses.replace(
        fused.post,
        walker_share=1.0,
        walker_guide=10.0,
        sure_high=0.7,
        sure_low=0.3,
        leak_ratio=1.6,
        network_seeds=0.1,
    )
    # `cpu_shuffled` is the default with half of its composites on a shuffled background:
    # nothing else differs, so its every4 comparison with `cpu_guided` isolates that change.
    shuffled = get_profile("cpu_shuffled")
    assert shuffled.render.shuffle_background == 0.5 and guided.render.shuffle_background == 0
    assert_differs_only_in(shuffled, guided, "render")
    # `cpu_shuffled_ema` is `cpu_shuffled` whose network is the moving average of its weights.
    averaged = get_profile("cpu_shuffled_ema")
    assert averaged.ema_decay == 0.95 and shuffled.ema_decay is None
    assert averaged.average_last is None
    assert_differs_only_in(averaged, shuffled, "ema_decay")
    # `cpu_shuffled_anneal` is `cpu_shuffled` whose learning rate cools faster (× 0.6 per epoch).
    annealed = get_profile("cpu_shuffled_anneal")
    assert annealed.lr_gamma == 0.6 and shuffled.lr_gamma == 0.8
    assert annealed.ema_decay is None and annealed.average_last is None
    assert_differs_only_in(annealed, shuffled, "lr_gamma")
    # `cpu_shuffled_seeded` is `cpu_shuffled_anneal` whose network also seeds one-circle walks.
    seeded = get_profile("cpu_shuffled_seeded")
    assert_differs_only_in(seeded, annealed, "post")
    assert seeded.post == dataclasses.replace(
        annealed.post, network_seeds_min_circles=1, network_lesion_seeds=0.9
    )
    assert annealed.post.network_seeds_min_circles == 3 and annealed.post.network_lesion_seeds == 0
    # Its every4 rules were first recomputed from saved (already calibrated) maps by this variant.
    from yoho.evaluation.reprocess import VARIANTS

    assert VARIANTS["guide_network_lesion_seeds"][0] == dataclasses.replace(
        seeded.post, calibrate=False
    )
    # GrabCut's split start (the steady-GrabCut round) is a switch that no profile takes.
    assert {get_profile(name).post.grabcut_start for name in profile_names()} == {"kmeans"}
    assert VARIANTS["guide_grabcut_split"][0] == dataclasses.replace(
        VARIANTS["guide_random_walker"][0], grabcut_start="split"
    )
    custom = dataclasses.replace(get_profile("tiny"), name="tiny-test-copy")
    register_profile(custom)
    assert get_profile("tiny-test-copy") is custom
    with pytest.raises(ValueError, match="already exists"):
        register_profile(custom)
    with pytest.raises(ValueError, match="no training step"):
        register_profile(dataclasses.replace(custom, name="empty", phases=()))
    assert isinstance(paper, Profile)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("quantum")


def test_complement_image_is_segmented_by_inversion():
    image, gt = synthetic_endoscopy(size=96, seed=5, lesion_scale=0.9)
    ann = simulate_annotation(image, gt)
    assert ann.complement
    result = segment(image, ann, "tiny", seed=0)
    assert result.complement
    roi = ann.roi_mask()
    # With the ROI clip, everything outside the complement ROI (the lesion core) is lesion.
    assert result.mask[~roi].all()


@pytest.mark.slow
def test_overfit_on_a_synthetic_image_reaches_dice_09():
    image, gt = synthetic_endoscopy(size=192, seed=11)
    ann = simulate_annotation(image, gt)
    result = segment(image, ann, DEFAULT_PROFILE, seed=0)
    assert dice(result.mask, gt) >= 0.9
