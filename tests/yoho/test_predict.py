"""Prediction post-processing, letterbox, overlays and the written files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from yoho.annotation import Annotation, Circle, Roi
from yoho.io import read_image, read_mask, write_png
from yoho.letterbox import Letterbox
from yoho.predict import SegmentationResult, lesion_from_probability, write_outputs


def annotation(complement=False):
    square = np.array([[10, 10], [49, 10], [49, 49], [10, 49]], float)
    frame = np.array([[0, 0], [59, 0], [59, 59], [0, 59]], float)
    if complement:
        return Annotation(
            width=60,
            height=60,
            roi=Roi(polygons=[frame], holes=[square]),
            lesion_circles=[Circle(30, 30, 5)],
            normal_circles=[Circle(5, 5, 3)],
            complement=True,
        )
    return Annotation(
        width=60, height=60, roi=Roi(polygons=[square]), lesion_circles=[Circle(30, 30, 5)]
    )


def test_letterbox_round_trip():
    box = Letterbox(50, 100, 64)
    assert box.inner == (32, 64) and box.offset == (16, 0)
    prob = np.zeros((64, 64), np.float32)
    prob[16:48] = 1.0
    back = box.unletterbox(prob)
    assert back.shape == (50, 100) and np.all(back > 0.99)
    image = np.zeros((50, 100, 3), np.uint8)
    assert box.pad(box.resize_image(image), 128).shape == (64, 64, 3)


def test_threshold_clip_and_complement_inversion():
    prob = np.zeros((60, 60), np.float32)
    prob[20:40, 20:40] = 0.9
    prob[0:5, 0:5] = 0.8  # a false positive outside the ROI
    lesion, raw, clipped = lesion_from_probability(prob, annotation(), 0.5, roi_clip=True)
    assert raw[2, 2] and not clipped[2, 2] and clipped[30, 30]
    assert raw.sum() == 400 + 25 and clipped.sum() == 400

    # Complement: the network gives the probability of *normal* tissue.
    normal = 1.0 - prob
    lesion, raw, clipped = lesion_from_probability(normal, annotation(True), 0.5, roi_clip=True)
    assert np.allclose(lesion, prob)
    assert raw[30, 30] and not raw[10, 55]
    # Clipping keeps normal tissue inside the ROI, so the hole (lesion core) is all lesion.
    assert clipped[12:48, 12:48].all()
    with pytest.raises(ValueError, match="sizes differ"):
        lesion_from_probability(prob[:10], annotation())


def test_written_outputs(tmp_path):
    image = np.full((60, 60, 3), 120, np.uint8)
    mask = np.zeros((60, 60), bool)
    mask[20:40, 20:40] = True
    gt = np.zeros((60, 60), bool)
    gt[20:40, 22:42] = True
    result = SegmentationResult(
        mask=mask,
        raw_mask=mask,
        probability=mask.astype(np.float32),
        timings={"total": 1.0},
        curve=[1.0, 0.5, 0.25],
        profile="tiny",
        seed=0,
        device="cpu",
        complement=False,
        roi_clip=True,
    )
    summary = write_outputs(tmp_path, image, annotation(), result, gt=gt)
    saved = read_mask(tmp_path / "mask.png")
    assert np.array_equal(saved, mask)
    assert set(np.unique(read_image(tmp_path / "mask.png"))) == {0, 255}
    overlay = read_image(tmp_path / "overlay.png")
    # The picture keeps the image's size; the legend strip (colours, version, profile, date,
    # research-use notice) lies below it, never over the tissue.
    assert overlay.shape[1:] == image.shape[1:] and overlay.shape[0] > image.shape[0]
    assert not np.array_equal(overlay[:60], image)
    assert summary["exports"]["geojson"] == "lesion.geojson"
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    assert summary["area_px"] == 400
    assert summary["dice"] == pytest.approx(2 * 360 / 800)
    assert (tmp_path / "curve.png").is_file()
    assert not list(tmp_path.glob("*.tmp")), "atomic writes leave no temporary file"
    assert "leak_check" not in summary  # only where the profile's post-processing checked
    check = {"fired": True, "area_ratio": 2.1, "limit": 1.6}
    result.post = {"leak_check": check}
    assert write_outputs(tmp_path / "b", image, annotation(), result)["leak_check"] == check


def test_io_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.png: not a readable image"):
        read_image(tmp_path / "junk.png")
    write_png(tmp_path / "m.png", np.zeros((10, 12), bool))
    with pytest.raises(ValueError, match="mask is 12x10 but the image is 10x10"):
        read_mask(tmp_path / "m.png", (10, 10))
