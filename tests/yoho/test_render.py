"""Renderer: labels, non-overlap, edge rims, normal circles, seeding, bank ladder."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from yoho.annotation import Annotation, Circle, Roi
from yoho.letterbox import IGNORE
from yoho.render import RenderedDataset, RenderOptions, radius_ladder
from yoho.render.composite import rim_of, shuffle_tiles


def disc(shape, x, y, r):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= r * r


def test_radius_ladder_follows_the_authors():
    ladder = radius_ladder(24, 16, 64, 16, 4, 4.0)
    assert ladder[0] == 24
    assert ladder[1:] == [64, 60, 56, 52, 48, 44, 40, 36, 32, 28, 20, 16]
    assert radius_ladder(16, 16, 64, 16, 4, 4.0) == [
        16,
        64,
        60,
        56,
        52,
        48,
        44,
        40,
        36,
        32,
        28,
        24,
        20,
    ]
    assert max(radius_ladder(10, 16, 64, 16, 4, 4.0)) == 40  # magnification capped at ×4
    with pytest.raises(ValueError):
        radius_ladder(10, 16, 64, 16, 0, 4.0)


@pytest.fixture(scope="module")
def dataset(synthetic, synthetic_annotation):
    image, _ = synthetic
    return RenderedDataset(image, synthetic_annotation, size=128, length=40, seed=7)


def test_labels_only_take_three_values(dataset):
    for i in range(len(dataset)):
        sample = dataset[i]
        assert set(np.unique(sample["seg"].numpy())) <= {0, 1, IGNORE}
        assert set(np.unique(sample["edge"].numpy())) <= {0, 1, IGNORE}
        assert sample["image"].shape == (3, 128, 128)
        assert float(sample["image"].min()) >= 0.0 and float(sample["image"].max()) <= 1.0


def test_patches_do_not_overlap_and_edges_lie_on_lesion_rims(dataset):
    h, w = dataset.roi.shape
    total_patches = 0
    for i in range(len(dataset) - 1):
        image, seg, edge, placements = dataset.render(i)
        total_patches += len(placements)
        assert len(placements) >= 1
        for a in range(len(placements)):
            for b in range(a + 1, len(placements)):
                pa, pb = placements[a], placements[b]
                assert np.hypot(pa.x - pb.x, pa.y - pb.y) >= pa.radius + pb.radius + 1
        masks = [disc((h, w), p.x, p.y, p.radius) for p in placements]
        assert not np.any(np.sum(masks, axis=0) > 1)
        # Every edge pixel is on the rim of a pasted lesion (learnt-class) patch: labelled
        # lesion, inside such a patch, and next to a non-lesion pixel (two patches may touch at
        # a point, hence "within 2 px" rather than "adjacent").
        lesion = seg == 1
        to_outside = distance_transform_edt(np.pad(lesion, 1))[1:-1, 1:-1]
        in_target = np.zeros((h, w), bool)
        for p, m in zip(placements, masks, strict=True):
            if p.target:
                in_target |= disc((h, w), p.x, p.y, p.radius + 1)  # triangle corners round out
                if (
                    2 * p.radius + 2 < p.x < w - 2 * p.radius - 2
                    and 2 * p.radius < p.y < h - 2 * p.radius
                ):
                    assert (edge[m] == 1).any(), "a lesion patch inside the image has a rim"
        assert lesion[edge == 1].all()
        assert in_target[edge == 1].all()
        assert (to_outside[edge == 1] <= 2).all()
    assert total_patches >= 8 * (len(dataset) - 1) * 0.9


def test_disc_edges_are_exactly_the_rim(synthetic, synthetic_annotation):
    image, _ = synthetic
    ds = RenderedDataset(
        image,
        synthetic_annotation,
        size=128,
        length=12,
        seed=3,
        options=RenderOptions(triangle_probability=0),
    )
    yy, xx = np.mgrid[0:128, 0:128]
    for i in range(len(ds) - 1):
        _, seg, edge, placements = ds.render(i)
        ys, xs = np.nonzero(edge == 1)
        for y, x in zip(ys, xs, strict=True):
            ok = [
                p.radius - 1.5 <= np.hypot(x - p.x, y - p.y) <= p.radius + 1e-6
                for p in placements
                if p.target
            ]
            assert any(ok)


def test_edge_rim_is_one_pixel_wide():
    mask = disc((41, 41), 20, 20, 12)
    rim = rim_of(mask)
    assert rim.sum() > 0 and (rim <= mask).all()
    inner = mask & ~rim
    assert not rim_of(inner)[rim].any()


def test_last_sample_is_the_original_with_clicked_discs(dataset, synthetic_annotation):
    image, seg, edge, placements = dataset.render(len(dataset) - 1)
    assert placements == [] and np.array_equal(image, dataset.image)
    for c in dataset.annotation.lesion_circles:
        assert seg[int(round(c.y)), int(round(c.x))] == 1
    assert not (edge == 1).any()
    roi = dataset.roi
    assert (seg[roi & (seg != 1)] == IGNORE).all() or (seg[roi & (seg != 1)] != 1).all()


def test_same_seed_same_sample_other_seed_other_sample(synthetic, synthetic_annotation):
    image, _ = synthetic
    a = RenderedDataset(image, synthetic_annotation, size=96, length=10, seed=1)
    b = RenderedDataset(image, synthetic_annotation, size=96, length=10, seed=1)
    c = RenderedDataset(image, synthetic_annotation, size=96, length=10, seed=2)
    for i in (3, 0, 5):  # order does not matter: each index has its own generator
        for key in ("image", "seg", "edge"):
            assert np.array_equal(a[i][key].numpy(), b[i][key].numpy())
    assert not np.array_equal(a[3]["image"].numpy(), c[3]["image"].numpy())


def make_two_tissue_image():
    """Left half lesion-like (bright), right half normal (dark red); ROI on the left."""
    image = np.zeros((120, 120, 3), np.uint8)
    image[:, :60] = (220, 200, 190)
    image[:, 60:] = (150, 40, 40)
    roi = np.array([[0, 0], [64, 0], [64, 119], [0, 119]], float)
    return image, roi


def test_normal_circles_are_pasted_as_background():
    image, roi = make_two_tissue_image()
    ann = Annotation(
        width=120,
        height=120,
        roi=Roi(polygons=[roi]),
        lesion_circles=[Circle(30, 60, 12)],
        normal_circles=[Circle(95, 60, 12)],
    )
    ds = RenderedDataset(
        image, ann, size=120, length=30, seed=0, options=RenderOptions(triangle_probability=0)
    )
    seen_normal_in_roi = 0
    for i in range(len(ds) - 1):
        img, seg, edge, placements = ds.render(i)
        for p in placements:
            if 2 <= p.x < 118 and 2 <= p.y < 118:
                colour = img[p.y, p.x]
                assert seg[p.y, p.x] == (1 if p.target else 0)
                if not p.target:
                    assert colour[0] < 180  # pixels come from the normal (dark) tissue
                    assert edge[p.y, p.x] == 0
                    seen_normal_in_roi += int(ds.roi[p.y, p.x])
    assert seen_normal_in_roi > 0, "normal patches pasted into the ROI must label it 0"


def test_complement_learns_normal_tissue_and_frame_is_not_lesion():
    image, roi = make_two_tissue_image()
    image[:10] = 0  # a black frame strip
    lesion_side = np.array([[0, 20], [40, 20], [40, 110], [0, 110]], float)
    frame = np.array([[0, 0], [119, 0], [119, 119], [0, 119]], float)
    ann = Annotation(
        width=120,
        height=120,
        roi=Roi(polygons=[frame], holes=[lesion_side]),
        lesion_circles=[Circle(20, 60, 10)],
        normal_circles=[Circle(95, 60, 12)],
        complement=True,
    )
    ds = RenderedDataset(image, ann, size=120, length=5, seed=0)
    _, seg, _, _ = ds.render(len(ds) - 1)
    assert seg[60, 95] == 1 and seg[60, 20] == 0  # learnt class is the normal tissue
    assert (seg[:10] == 1).all()  # the black frame counts as "not lesion"
    assert seg[60, 30] == 0  # outside the ROI: the lesion core


def test_switches_change_rendering(synthetic, synthetic_annotation):
    image, _ = synthetic
    plain = RenderedDataset(image, synthetic_annotation, size=96, length=10, seed=4)
    fancy = RenderedDataset(
        image,
        synthetic_annotation,
        size=96,
        length=10,
        seed=4,
        options=RenderOptions(flip=True, colour_jitter=0.2, feather=1.0, rotate_triangles=True),
    )
    assert not np.array_equal(plain[2]["image"].numpy(), fancy[2]["image"].numpy())
    for i in range(9):
        assert set(np.unique(fancy[i]["seg"].numpy())) <= {0, 1, IGNORE}


def test_placement_gives_up_instead_of_hanging(synthetic, synthetic_annotation):
    image, _ = synthetic
    ds = RenderedDataset(
        image,
        synthetic_annotation,
        size=64,
        length=3,
        seed=0,
        options=RenderOptions(min_patches=500, max_tries=5),
    )
    _, _, _, placements = ds.render(0)
    assert 0 < len(placements) < 500


def test_outside_patches_are_cut_from_outside_the_roi_and_labelled_other_class():
    image, roi = make_two_tissue_image()
    ann = Annotation(
        width=120, height=120, roi=Roi(polygons=[roi]), lesion_circles=[Circle(30, 60, 12)]
    )
    options = RenderOptions(outside_patches=1.0, triangle_probability=0)
    ds = RenderedDataset(image, ann, size=120, length=20, seed=0, options=options)
    assert ds.bank.outside and all(not d.target for s in ds.bank.outside for d in s)
    pasted = 0
    for i in range(len(ds) - 1):
        img, seg, edge, placements = ds.render(i)
        for p in placements:
            assert not p.target
            if 2 <= p.x < 118 and 2 <= p.y < 118:
                pasted += 1
                assert img[p.y, p.x, 0] < 180  # normal (dark) tissue from outside the ROI
                assert seg[p.y, p.x] == 0 and edge[p.y, p.x] == 0
    assert pasted > 20
    # Switched off (the paper), the bank has no outside patches.
    assert not RenderedDataset(image, ann, size=120, length=2, seed=0).bank.outside


def test_shuffled_tiles_keep_every_pixel_with_its_own_label():
    # A label that can be read back from each pixel: the image's red value is 10 × the label
    # (0, 1; 25 for IGNORE), so a tile moved without its labels would be caught.
    rng = np.random.default_rng(3)
    seg = rng.choice(np.array([0, 1, IGNORE], np.uint8), size=(50, 70))
    image = np.zeros((50, 70, 3), np.uint8)
    image[..., 0] = np.where(seg == IGNORE, 25, seg * 10)
    image[..., 1] = np.arange(70)[None, :]  # position, to see that tiles moved
    edge = (seg == 1).astype(np.uint8)
    out_img, out_seg, out_edge = shuffle_tiles(image, seg, edge, 0.2, np.random.default_rng(0))
    assert np.array_equal(out_img[..., 0], np.where(out_seg == IGNORE, 25, out_seg * 10))
    assert np.array_equal(out_edge, (out_seg == 1).astype(np.uint8))
    side = 10  # 0.2 × 50: a 5 × 7 grid, nothing left over
    assert not np.array_equal(out_img[..., 1], image[..., 1])
    # Tiles move whole (turned by k·90°): each output tile is one input tile, turned.
    tiles = {image[y : y + side, x : x + side].tobytes() for y in range(0, 50, side)
             for x in range(0, 70, side)}  # fmt: skip
    for y in range(0, 50, side):
        for x in range(0, 70, side):
            tile = out_img[y : y + side, x : x + side]
            assert any(np.rot90(tile, -k).tobytes() in tiles for k in range(4))
    # The strip beyond the grid stays in place (tiles of round(0.2 × 47) = 9 px: 5 × 7 of them).
    odd = shuffle_tiles(image[:47, :66], seg[:47, :66], edge[:47, :66], 0.2,
                        np.random.default_rng(0))  # fmt: skip
    assert np.array_equal(odd[0][:, 63:], image[:47, 63:66])
    assert np.array_equal(odd[1][45:], seg[45:47, :66])
    assert not np.array_equal(odd[0][:45, :63], image[:45, :63])


def test_shuffled_backgrounds_hide_where_normal_tissue_lies(synthetic, synthetic_annotation):
    image, _ = synthetic
    kwargs = dict(size=96, length=12, seed=5)
    plain = RenderedDataset(image, synthetic_annotation, **kwargs)
    shuffled = RenderedDataset(
        image, synthetic_annotation, options=RenderOptions(shuffle_background=1.0), **kwargs
    )
    plain_seg = plain.render(0)[1]
    moved = 0
    for i in range(len(shuffled) - 1):
        img, seg, edge, placements = shuffled.render(i)
        assert set(np.unique(seg)) <= {0, 1, IGNORE}
        # The ROI's ignored pixels no longer sit where the ROI is.
        roi = shuffled.roi
        moved += int((seg[roi] != IGNORE).mean() > 0.3)
        for p in placements:  # patches are pasted on the shuffled background, labelled
            assert seg[p.y, p.x] == (1 if p.target else 0)
    assert moved >= 8
    # The last sample is still the untouched original, and the switch off keeps the stream.
    assert np.array_equal(shuffled.render(11)[1], plain.render(11)[1])
    assert np.array_equal(
        RenderedDataset(image, synthetic_annotation,
                        options=RenderOptions(shuffle_background=0.0), **kwargs).render(0)[1],
        plain_seg,
    )  # fmt: skip
