"""The interactive baselines (ROI alone, GrabCut, random walker, trainable) on synthetic images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.segmentation import random_walker as skimage_random_walker

from yoho.annotation import Annotation, Circle, Roi
from yoho.baselines import (
    BASELINES,
    grabcut,
    random_walker,
    roi_alone,
    run_baseline,
    trainable,
)
from yoho.metrics import dice
from yoho.physician import simulate_annotation
from yoho.postprocess import circles_mask, resize_mask, scaled_size
from yoho.synthetic import synthetic_endoscopy


@pytest.fixture(scope="module")
def case():
    image, gt = synthetic_endoscopy(size=128, seed=5)
    return image, gt, simulate_annotation(image, gt)


def test_roi_alone_is_the_roi(case):
    image, gt, ann = case
    mask = roi_alone(image, ann)
    assert np.array_equal(mask, ann.roi_mask())
    assert mask[gt].all()  # the oracle ROI contains the lesion: recall 1


@pytest.mark.parametrize("name", ["grabcut", "random_walker", "trainable"])
def test_interactive_baselines_beat_the_roi(case, name):
    image, gt, ann = case
    mask = run_baseline(name, image, ann)
    assert mask.shape == gt.shape and mask.dtype == bool
    assert dice(mask, gt) > dice(roi_alone(image, ann), gt) + 0.05
    assert dice(mask, gt) > 0.85
    # Seeds are honoured: lesion circles are lesion, outside the ROI is not.
    assert mask[circles_mask(ann.lesion_circles, gt.shape)].all()
    assert not mask[~ann.roi_mask()].any()
    # Deterministic.
    assert np.array_equal(mask, run_baseline(name, image, ann))


def test_random_walker_crop_equals_the_full_image(case):
    image, gt, ann = case
    labels = np.zeros(gt.shape, np.int32)
    labels[~ann.roi_mask() | circles_mask(ann.normal_circles, gt.shape)] = 2
    labels[circles_mask(ann.lesion_circles, gt.shape)] = 1
    full = skimage_random_walker(
        image.astype(np.float64) / 255, labels, beta=130, mode="cg_j", tol=1e-3, channel_axis=-1
    )
    agree = (random_walker(image, ann) == (full == 1)).mean()
    assert agree > 0.999  # equal up to the iterative solver's tolerance


def test_random_walker_probability_is_the_walkers_mask_softly(case):
    from yoho.baselines import random_walker_probability

    image, gt, ann = case
    prob = random_walker_probability(image, ann)
    assert prob.dtype == np.float32 and prob.shape == gt.shape
    assert prob.min() >= 0 and prob.max() <= 1
    assert (prob[circles_mask(ann.lesion_circles, gt.shape)] == 1).all()
    assert (prob[~ann.roi_mask()] == 0).all()
    assert ((prob > 0.5) == random_walker(image, ann)).mean() > 0.999
    between = (prob > 0.05) & (prob < 0.95)
    assert between.any()  # a probability, not a relabelled mask


def test_complement_roles_are_swapped():
    # A lesion filling most of the frame: the ROI covers the normal tissue.
    image, gt = synthetic_endoscopy(size=96, seed=2, lesion_scale=0.95)
    ann = simulate_annotation(image, gt)
    assert ann.complement
    assert np.array_equal(roi_alone(image, ann), ~ann.roi_mask())
    for name in ("grabcut", "random_walker", "trainable"):
        mask = run_baseline(name, image, ann)
        assert mask[~ann.roi_mask()].all()  # outside the complement ROI is lesion
        assert dice(mask, gt) > 0.8


def test_unknown_baseline_and_bad_annotation(case):
    image, _, ann = case
    with pytest.raises(ValueError, match="unknown baseline 'snake'"):
        run_baseline("snake", image, ann)
    wrong = dataclasses.replace(ann, width=ann.width + 1)
    with pytest.raises(ValueError, match="annotation is for a"):
        grabcut(image, wrong)


def test_grabcut_with_only_lesion_seeds_on_a_flat_image():
    image = np.full((40, 40, 3), 120, np.uint8)
    image[10:30, 10:30] = (200, 60, 60)
    square = np.array([[5, 5], [34, 5], [34, 34], [5, 34]], float)
    ann = Annotation(40, 40, Roi(polygons=[square]), lesion_circles=[Circle(20, 20, 4)])
    gt = np.zeros((40, 40), bool)
    gt[10:30, 10:30] = True
    assert dice(grabcut(image, ann), gt) > 0.9
    assert dice(random_walker(image, ann), gt) > 0.9
    assert dice(trainable(image, ann), gt) > 0.9
    assert set(BASELINES) == {"roi", "grabcut", "random_walker", "trainable"}


def test_trainable_learns_texture_from_the_clicks_alone():
    # Lesion and normal tissue share their mean colour and differ only in texture: colour
    # models cannot separate them, multiscale texture features can.
    rng = np.random.default_rng(0)
    image = np.full((96, 96, 3), 128, np.uint8)
    noise = rng.integers(-60, 61, (96, 96, 1))
    gt = np.zeros((96, 96), bool)
    gt[28:68, 28:68] = True
    image = np.where(gt[..., None], np.clip(128 + noise, 0, 255), image).astype(np.uint8)
    square = np.array([[14, 14], [81, 14], [81, 81], [14, 81]], float)
    ann = Annotation(
        96, 96, Roi(polygons=[square]),
        lesion_circles=[Circle(40, 40, 6), Circle(56, 56, 6)],
        normal_circles=[Circle(20, 76, 4)],
    )  # fmt: skip
    mask = trainable(image, ann)
    assert mask[gt].all()  # every lesion pixel found from three clicks
    assert dice(mask, gt) > 0.75  # the coarse features blur into a thin ring around it
    assert dice(mask, gt) > dice(random_walker(image, ann), gt)
    assert np.array_equal(mask, trainable(image, ann))  # seeded: deterministic


def test_trainable_works_at_a_reduced_size_on_large_frames(case):
    image, gt, ann = case
    assert scaled_size((1080, 1920), 600_000) == (1033, 581)  # 0.6 MP, the aspect kept
    assert scaled_size((100, 100), 600_000) is None
    assert scaled_size((1080, 1920), None) is None
    mask = trainable(image, ann, max_pixels=image.shape[0] * image.shape[1] // 4)
    assert mask.shape == gt.shape
    assert dice(mask, gt) > 0.8


def test_resize_mask_keeps_labels_binary():
    mask = np.zeros((9, 12), bool)
    mask[3:6, 4:8] = True
    small = resize_mask(mask, (6, 4))  # (width, height)
    assert small.shape == (4, 6) and small.dtype == bool
    assert small[2, 2:4].all() and not small[0].any()
    assert np.array_equal(resize_mask(small, (12, 9))[5], np.repeat(small[2], 2))


def test_walker_share_mixes_the_walkers_probability_into_the_post_processing(case):
    from yoho.baselines import random_walker_probability
    from yoho.postprocess import PostOptions, refine_mask

    image, gt, ann = case
    full = PostOptions(force_circles=True, fill_holes=True, keep_seeded=True, grabcut_refine=True)
    walker = random_walker_probability(image, ann)
    rng = np.random.default_rng(0)
    network = rng.uniform(0, 1, gt.shape).astype(np.float32)  # a map unlike the walker's
    fused = refine_mask(network, ann, dataclasses.replace(full, walker_share=0.75), image=image)
    by_hand = refine_mask((0.25 * network + 0.75 * walker).astype(np.float32), ann, full,
                          image=image)  # fmt: skip
    np.testing.assert_array_equal(fused, by_hand)
    alone = refine_mask(network, ann, dataclasses.replace(full, walker_share=1.0), image=image)
    np.testing.assert_array_equal(alone, refine_mask(walker, ann, full, image=image))
    assert dice(alone, gt) > 0.85 and dice(alone, gt) > dice(
        refine_mask(network, ann, full, image=image), gt
    )
    # The share alone switches the post-processing on; it needs the image, and a share.
    assert PostOptions(walker_share=0.5).active and not PostOptions().active
    with pytest.raises(ValueError, match="walker_share needs the original image"):
        refine_mask(network, ann, PostOptions(walker_share=0.5))
    with pytest.raises(ValueError, match=r"walker_share must lie in \[0, 1\], got 1.5"):
        refine_mask(network, ann, PostOptions(walker_share=1.5), image=image)


def test_walker_probability_on_a_scaled_copy_keeps_the_seeds_and_the_answer():
    from yoho.baselines import random_walker_probability

    image, gt = synthetic_endoscopy(size=320, seed=3)
    ann = simulate_annotation(image, gt)
    full = random_walker_probability(image, ann)
    np.testing.assert_array_equal(random_walker_probability(image, ann, max_pixels=320**2), full)
    small = random_walker_probability(image, ann, max_pixels=20_000)  # solved at 141 x 141
    assert small.dtype == np.float32 and small.shape == full.shape
    assert (small[circles_mask(ann.lesion_circles, gt.shape)] == 1).all()
    assert (small[~ann.roi_mask()] == 0).all()
    assert dice(small > 0.5, full > 0.5) > 0.95 and dice(small > 0.5, gt) > 0.85


def test_the_walkers_guide_channel_stops_the_walk_at_the_maps_edge():
    # An image without edges (faint noise): the plain walker's 0.5 line lies halfway between
    # the two circles. A guide map with a step at x = 20 (what the network would call lesion
    # on its left) stops the walk there, so the guided walker's lesion is the step's left side.
    from yoho.baselines import random_walker_probability
    from yoho.postprocess import PostOptions, refine_mask

    rng = np.random.default_rng(0)
    image = np.clip(120 + rng.normal(0, 2, (40, 60, 3)), 0, 255).astype(np.uint8)
    frame = np.array([[0, 0], [59, 0], [59, 39], [0, 39]], float)
    ann = Annotation(60, 40, Roi(polygons=[frame]), lesion_circles=[Circle(8, 20, 3)],
                     normal_circles=[Circle(51, 20, 3)])  # fmt: skip
    left = np.zeros((40, 60), bool)
    left[:, :20] = True
    guide = left.astype(np.float32)
    plain = random_walker_probability(image, ann)
    guided = random_walker_probability(image, ann, guide=guide, guide_weight=5.0)
    assert abs(int((plain > 0.5).sum(axis=1).mean()) - 30) <= 3  # halfway between the circles
    assert dice(guided > 0.5, left) > 0.98 and dice(plain > 0.5, left) < 0.85
    np.testing.assert_array_equal(
        random_walker_probability(image, ann, guide=guide, guide_weight=0.0), plain
    )
    # In the post-processing the guide is the network's own map: walker_guide switches it on.
    mask = refine_mask(guide, ann, PostOptions(walker_share=1.0, walker_guide=5.0), image=image)
    assert dice(mask, left) > 0.98
    with pytest.raises(ValueError, match="walker_guide must be >= 0"):
        refine_mask(guide, ann, PostOptions(walker_share=1.0, walker_guide=-1.0), image=image)
    with pytest.raises(ValueError, match="the walker's guide is"):
        random_walker_probability(image, ann, guide=guide[:, :30], guide_weight=5.0)


def test_the_leak_check_takes_grabcuts_mask_from_the_clicks_when_the_walk_is_far_larger(case):
    # `leak_ratio`: the post-processing runs a second time from a flat 0.4 map (GrabCut from
    # the clicks alone) and that mask is the result when the walker's is more than
    # `leak_ratio` times its area; with fewer than three lesion circles the check is off, and
    # with a complement ROI it always takes GrabCut's mask.
    from yoho.postprocess import LEAK_FLAT, PostOptions, refine_mask

    image, gt, ann = case
    assert len(ann.lesion_circles) == 3
    post = PostOptions(force_circles=True, fill_holes=True, keep_seeded=True, grabcut_refine=True,
                       walker_share=1.0, sure_high=0.7, sure_low=0.3)  # fmt: skip
    zero = np.zeros(gt.shape, np.float32)
    walk = refine_mask(zero, ann, post, image=image)
    clicks = refine_mask(np.full(gt.shape, LEAK_FLAT, np.float32), ann,
                         dataclasses.replace(post, walker_share=0.0), image=image)  # fmt: skip
    ratio = walk.sum() / clicks.sum()
    assert 0.8 < ratio < 1.6  # here the walk found the lesion: the check leaves it
    np.testing.assert_array_equal(
        refine_mask(zero, ann, dataclasses.replace(post, leak_ratio=1.6), image=image), walk
    )
    details = {}
    fired = refine_mask(zero, ann, dataclasses.replace(post, leak_ratio=ratio / 2), image=image,
                        details=details)  # fmt: skip
    np.testing.assert_array_equal(fired, clicks)
    assert details["leak_check"] == {
        "fired": True, "area_ratio": pytest.approx(ratio, abs=1e-4), "limit": ratio / 2,
        "complement": False,
    }  # fmt: skip
    two = dataclasses.replace(ann, lesion_circles=ann.lesion_circles[:2])
    np.testing.assert_array_equal(
        refine_mask(zero, two, dataclasses.replace(post, leak_ratio=ratio / 2), image=image),
        refine_mask(zero, two, post, image=image),
    )
    for bad, message in [(float("nan"), "leak_ratio must be >= 0"), (-1.0, "must be >= 0")]:
        with pytest.raises(ValueError, match=message):
            refine_mask(zero, ann, dataclasses.replace(post, leak_ratio=bad), image=image)
    with pytest.raises(ValueError, match="it needs grabcut_refine"):
        refine_mask(zero, ann, PostOptions(walker_share=1.0, leak_ratio=1.6), image=image)


def test_with_a_complement_roi_the_leak_check_always_takes_grabcuts_mask():
    # The ROI marks the normal tissue: the walk's lesion seeds are all of the image outside it,
    # against one or two normal circles inside, so the walk is not trusted whatever its area.
    from yoho.postprocess import LEAK_FLAT, PostOptions, refine_mask

    image, gt = synthetic_endoscopy(size=96, seed=2, lesion_scale=0.95)
    ann = simulate_annotation(image, gt)
    assert ann.complement
    post = PostOptions(force_circles=True, fill_holes=True, keep_seeded=True, grabcut_refine=True,
                       walker_share=1.0, sure_high=0.7, sure_low=0.3)  # fmt: skip
    zero = np.zeros(gt.shape, np.float32)
    clicks = refine_mask(np.full(gt.shape, LEAK_FLAT, np.float32), ann,
                         dataclasses.replace(post, walker_share=0.0), image=image)  # fmt: skip
    details = {}
    checked = refine_mask(zero, ann, dataclasses.replace(post, leak_ratio=1.6), image=image,
                          details=details)  # fmt: skip
    np.testing.assert_array_equal(checked, clicks)
    assert details["leak_check"]["fired"] and details["leak_check"]["complement"]
    assert checked[~ann.roi_mask()].all()  # outside the complement ROI is still lesion


@pytest.mark.shared_data
def test_the_leak_check_rescues_a_walk_past_a_faint_edge_on_a_development_image(shared_data):
    # EndoTect development image 02c9cc1e (outside every evaluation subset) at margin 0.5 with
    # three lesion circles: the walker on the image alone, through `cpu_guided`'s steps,
    # spreads to 1.8x GrabCut's mask from the clicks (Dice 0.68); the check gives GrabCut's
    # mask (Dice 0.93). No network: the walker stands in for the guided walk.
    from yoho.evaluation.settings import ProtocolSetting, image_seed
    from yoho.io import read_image, read_mask
    from yoho.postprocess import refine_mask
    from yoho.profiles import get_profile

    folder = shared_data / "seg" / "endotect2020_polyp"
    name = "02c9cc1e-349a-4689-bfb4-b7df1f44ca53.jpg"
    image = read_image(folder / "images" / name)
    gt = read_mask(folder / "masks" / name.replace(".jpg", ".png"), image.shape)
    ann = simulate_annotation(image, gt, ProtocolSetting(0.5, 3).oracle(image_seed(name)))
    post = dataclasses.replace(get_profile("cpu_guided").post, walker_guide=0.0)
    assert post.leak_ratio == 1.6
    zero = np.zeros(gt.shape, np.float32)
    checked = dice(refine_mask(zero, ann, post, image=image), gt)
    unchecked = dice(refine_mask(zero, ann, dataclasses.replace(post, leak_ratio=0.0),
                                 image=image), gt)  # fmt: skip
    assert unchecked < 0.75 and checked > 0.9


def _roi_case(ramp: np.ndarray, ys: tuple[int, ...]):
    # An image without edges (faint noise), an ROI over its left 81 columns, lesion circles at
    # its left end (x = 8, y in `ys`), no normal circle: the walk's only normal seeds are
    # outside the ROI. The network's map is `ramp` along x.
    rng = np.random.default_rng(0)
    image = np.clip(120 + rng.normal(0, 2, (40, 100, 3)), 0, 255).astype(np.uint8)
    roi = np.array([[0, 0], [80, 0], [80, 39], [0, 39]], float)
    lesion = [Circle(8, y, 3) for y in ys]
    ann = Annotation(100, 40, Roi(polygons=[roi]), lesion_circles=lesion, normal_circles=[])
    return image, ann, np.repeat(ramp.astype(np.float32)[None, :], 40, axis=0)


def _loose_roi_case(circles: int = 3):
    # The network's map: lesion on the left, fading to sure normal tissue from x = 54 on.
    ramp = np.clip(1.0 - np.arange(100) / 60.0, 0.0, 1.0)
    return _roi_case(ramp, (10, 20, 30)[:circles])


def test_network_normal_seeds_are_the_maps_sure_normal_far_from_the_lesion_circles():
    from yoho.postprocess import SEED_CLEARANCE, network_normal_seeds

    _, ann, prob = _loose_roi_case()
    prob[:, 30:32] = 0.0  # a thin low band (the ramp also stays low outside the ROI)
    seeds = network_normal_seeds(prob, ann, 0.1)
    roi = ann.roi_mask()
    assert seeds.any() and not seeds[~roi].any()
    assert (prob[seeds] < 0.1).all()
    near = circles_mask([Circle(c.x, c.y, SEED_CLEARANCE * c.r) for c in ann.lesion_circles],
                        prob.shape)  # fmt: skip
    assert not (seeds & near).any()
    assert not seeds[:, :54].any()  # the 2-px band is eroded away
    # Eroded by 3 px inside the low region (x > 54) and inside the ROI's edge (x = 80).
    cols = np.flatnonzero(seeds.any(axis=0))
    assert cols.min() == 58 and cols.max() == 77, (cols.min(), cols.max())
    assert not network_normal_seeds(prob, ann, 0.0).any()
    assert not network_normal_seeds(prob, dataclasses.replace(ann, complement=True), 0.1).any()


def test_the_networks_sure_normal_stops_a_walk_that_floods_a_loose_roi():
    # Without the seeds the guided walk's lesion reaches halfway to the ROI's edge (x = 44);
    # the network's sure normal tissue (map < 0.1 from x = 54) seeds the walk as normal and
    # holds the lesion well short of it. The control (no guide) is unchanged: the seeds are the
    # network's. One circle is unchanged by default (three lesion circles are needed), held
    # with `network_seeds_min_circles` 1.
    from yoho.baselines import random_walker_probability
    from yoho.postprocess import PostOptions, network_normal_seeds, refine_mask

    image, ann, prob = _loose_roi_case()
    post = PostOptions(walker_share=1.0, walker_guide=1.0)
    free = refine_mask(prob, ann, post, image=image)
    details = {}
    seeded = refine_mask(prob, ann, dataclasses.replace(post, network_seeds=0.1), image=image,
                         details=details)  # fmt: skip
    seeds = network_normal_seeds(prob, ann, 0.1)
    assert details["network_seeds"] == {"pixels": int(seeds.sum()), "below": 0.1}
    assert not (seeded & seeds).any()
    edge_free = np.flatnonzero(free.any(axis=0)).max()
    edge_seeded = np.flatnonzero(seeded.any(axis=0)).max()
    assert edge_free >= 40 and edge_seeded <= edge_free - 8, (edge_free, edge_seeded)
    control = dataclasses.replace(post, walker_guide=0.0)
    np.testing.assert_array_equal(
        refine_mask(prob, ann, dataclasses.replace(control, network_seeds=0.1), image=image),
        refine_mask(prob, ann, control, image=image),
    )
    image1, ann1, prob1 = _loose_roi_case(circles=1)
    free1 = refine_mask(prob1, ann1, post, image=image1)
    np.testing.assert_array_equal(
        refine_mask(prob1, ann1, dataclasses.replace(post, network_seeds=0.1), image=image1),
        free1,
    )
    # From one circle on (`network_seeds_min_circles` 1) the seeds hold the one-circle walk too.
    one = dataclasses.replace(post, network_seeds=0.1, network_seeds_min_circles=1)
    details1 = {}
    seeded1 = refine_mask(prob1, ann1, one, image=image1, details=details1)
    seeds1 = network_normal_seeds(prob1, ann1, 0.1)
    assert details1["network_seeds"] == {"pixels": int(seeds1.sum()), "below": 0.1}
    assert seeds1.any() and not (seeded1 & seeds1).any()
    edge_free1 = np.flatnonzero(free1.any(axis=0)).max()
    edge_seeded1 = np.flatnonzero(seeded1.any(axis=0)).max()
    assert edge_seeded1 <= edge_free1 - 8, (edge_free1, edge_seeded1)
    with pytest.raises(ValueError, match="network_seeds_min_circles must be >= 1"):
        refine_mask(prob1, ann1, dataclasses.replace(one, network_seeds_min_circles=0),
                    image=image1)  # fmt: skip
    with pytest.raises(ValueError, match="extra normal seeds are"):
        random_walker_probability(image, ann, extra_normal=seeds[:, :50])
    for bad in (float("nan"), -0.1, 1.5):
        with pytest.raises(ValueError, match="network_seeds must lie in"):
            refine_mask(prob, ann, dataclasses.replace(post, network_seeds=bad), image=image)


def _one_circle_soft_map_case(circles: int = 1):
    # The network's map a soft blob: sure lesion (>= 0.9) up to x = 33, fading to 0 at x = 60.
    ramp = np.clip((60 - np.arange(100)) / 30.0, 0.0, 1.0)
    return _roi_case(ramp, (20, 10, 30)[:circles])


def test_network_lesion_seeds_are_the_maps_sure_lesion_joined_to_a_circle():
    from yoho.postprocess import network_lesion_seeds

    _, ann, prob = _one_circle_soft_map_case()
    prob[:, 65:75] = 1.0  # a sure region of its own, away from the circle
    seeds = network_lesion_seeds(prob, ann, 0.9)
    assert seeds.any() and (prob[seeds] >= 0.9).all() and not seeds[~ann.roi_mask()].any()
    assert not seeds[:, 60:].any()  # the region not joined to the circle gives no seed
    # Eroded by 3 px: the sure region ends at x = 33, the seeds at x = 30.
    assert np.flatnonzero(seeds.any(axis=0)).max() == 30
    assert not network_lesion_seeds(prob, ann, 0.0).any()
    assert not network_lesion_seeds(prob, dataclasses.replace(ann, complement=True), 0.9).any()


def test_the_networks_sure_lesion_carries_a_one_circle_walk_out_to_it():
    # One small circle is a weak source: the guided walk's lesion stops at x = 42. With the
    # network's sure lesion (x <= 30 after erosion) as seeds it reaches further. Three circles
    # are left as they are (the clicks already spread over the lesion), and so is the control.
    from yoho.baselines import random_walker_probability
    from yoho.postprocess import PostOptions, network_lesion_seeds, refine_mask

    post = PostOptions(walker_share=1.0, walker_guide=10.0)
    seeded = dataclasses.replace(post, network_lesion_seeds=0.9)
    image, ann, prob = _one_circle_soft_map_case()
    free = refine_mask(prob, ann, post, image=image)
    details = {}
    carried = refine_mask(prob, ann, seeded, image=image, details=details)
    seeds = network_lesion_seeds(prob, ann, 0.9)
    assert details["network_lesion_seeds"] == {"pixels": int(seeds.sum()), "above": 0.9}
    assert carried[seeds].all()
    edge_free = np.flatnonzero(free.any(axis=0)).max()
    edge_carried = np.flatnonzero(carried.any(axis=0)).max()
    assert edge_carried >= edge_free + 8, (edge_free, edge_carried)
    control = dataclasses.replace(seeded, walker_guide=0.0)
    np.testing.assert_array_equal(
        refine_mask(prob, ann, control, image=image),
        refine_mask(prob, ann, dataclasses.replace(post, walker_guide=0.0), image=image),
    )
    image3, ann3, prob3 = _one_circle_soft_map_case(circles=3)
    np.testing.assert_array_equal(
        refine_mask(prob3, ann3, seeded, image=image3), refine_mask(prob3, ann3, post, image=image3)
    )
    with pytest.raises(ValueError, match="extra lesion seeds are"):
        random_walker_probability(image, ann, extra_lesion=seeds[:, :50])
    for bad in (float("nan"), -0.1, 1.5):
        with pytest.raises(ValueError, match="network_lesion_seeds must lie in"):
            refine_mask(prob, ann, dataclasses.replace(post, network_lesion_seeds=bad), image=image)
