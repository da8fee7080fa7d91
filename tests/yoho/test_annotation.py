"""Annotation schema: round trip, labelme import, and every validation error."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from yoho.annotation import (
    Annotation,
    Circle,
    Roi,
    annotation_from_dict,
    default_radius_range,
    labelme_roi,
    load_annotation,
    save_annotation,
    validate_annotation,
)

SQUARE = np.array([[20, 20], [80, 20], [80, 80], [20, 80]], float)


def make(**changes) -> Annotation:
    fields = dict(
        width=100,
        height=100,
        roi=Roi(polygons=[SQUARE]),
        lesion_circles=[Circle(50, 50, 10)],
        normal_circles=[Circle(90, 90, 5)],
    )
    fields.update(changes)
    return Annotation(**fields)


def test_default_radius_range_matches_the_authors():
    assert default_radius_range(480, 480) == (16, 64)
    r_min, r_max = default_radius_range(529, 622)
    assert r_min % 2 == 0 and r_max == 4 * r_min and r_min >= 622 / 256 * 8


def test_save_and_load_round_trip(tmp_path):
    ann = make(annotator="tester", protocol={"name": "manual"})
    path = save_annotation(ann, tmp_path / "a.json")
    data = json.loads(path.read_text())
    assert data["format"] == "yoho-annotation" and data["version"] == 2
    assert data["lesion_circles"] == [{"x": 50, "y": 50, "r": 10}]
    back = load_annotation(path, (100, 100, 3))
    assert back.lesion_circles == ann.lesion_circles
    assert back.normal_circles == ann.normal_circles
    assert np.array_equal(back.roi_mask(), ann.roi_mask())
    assert back.annotator == "tester" and back.protocol == {"name": "manual"}


def test_roi_mask_file_round_trip(tmp_path):
    mask = np.zeros((100, 100), bool)
    mask[10:70, 15:75] = True
    ann = make(roi=Roi(mask=mask))
    path = save_annotation(ann, tmp_path / "b.json")
    assert (tmp_path / "b_roi.png").is_file()
    assert json.loads(path.read_text())["roi"] == {"mask": "b_roi.png"}
    assert np.array_equal(load_annotation(path).roi_mask(), mask)


def test_holes_are_subtracted():
    hole = np.array([[40, 40], [60, 40], [60, 60], [40, 60]], float)
    roi = Roi(polygons=[SQUARE], holes=[hole]).rasterize(100, 100)
    assert roi[30, 30] and not roi[50, 50] and not roi[5, 5]


def test_a_lasso_that_crosses_itself_keeps_all_it_encloses():
    # A five-pointed star drawn in one stroke crosses itself; the even-odd rule left its centre
    # (and a figure eight's overlap) empty. The web tool's canvas fills it (nonzero rule).
    angles = np.pi / 2 + np.arange(5) * 4 * np.pi / 5
    star = np.stack([50 + 40 * np.cos(angles), 50 - 40 * np.sin(angles)], axis=1)
    roi = Roi(polygons=[star]).rasterize(100, 100)
    assert roi[50, 50] and roi[15, 50] and not roi[95, 5]
    # A lasso drawn round twice: even-odd left the inner disc (crossed twice) empty.
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    twice = np.concatenate(
        [np.stack([50 + r * np.cos(t), 50 + r * np.sin(t)], 1) for r in (40, 30)]
    )
    roi = Roi(polygons=[twice]).rasterize(100, 100)
    assert roi[50, 50] and roi[50, 85] and not roi[5, 5]
    # A simple polygon is filled exactly as before, a hole drawn as a crossing loop is whole.
    square = Roi(polygons=[SQUARE]).rasterize(100, 100)
    assert square.sum() == 61 * 61
    holed = Roi(polygons=[SQUARE], holes=[star * 0.3 + 35]).rasterize(100, 100)
    assert not holed[50, 50] and holed[25, 25]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(lesion_circles=[Circle(95, 50, 10)]), "outside the 100x100 image"),
        (dict(lesion_circles=[Circle(50, 50, 0)]), "radius must be positive"),
        (
            dict(roi=Roi(polygons=[np.array([[200, 200], [300, 200], [300, 300]], float)])),
            "ROI is empty",
        ),
        (dict(lesion_circles=[Circle(10, 10, 5)]), "lesion circle must lie inside the ROI"),
        (dict(lesion_circles=[]), "at least one circle is needed in lesion_circles"),
        (dict(complement=True), "lesion circle must lie outside"),
        (
            dict(
                complement=True,
                lesion_circles=[Circle(10, 10, 5)],
                normal_circles=[Circle(90, 90, 5)],
            ),
            "normal circle must lie inside the ROI",
        ),
        (
            dict(complement=True, lesion_circles=[Circle(10, 10, 5)], normal_circles=[]),
            "normal_circles",
        ),
        (dict(r_min=30, r_max=10), "r_min <= r_max"),
    ],
)
def test_validation_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        validate_annotation(make(**changes), source="a.json")


def test_complement_annotation_with_circles_on_the_right_sides_is_valid():
    ann = make(
        complement=True, lesion_circles=[Circle(10, 10, 5)], normal_circles=[Circle(50, 50, 8)]
    )
    roi = validate_annotation(ann)
    assert roi[50, 50] and not roi[10, 10]
    assert ann.target_circles == [Circle(50, 50, 8)]


def test_wrong_image_size_is_reported_with_both_sizes(tmp_path):
    path = save_annotation(make(), tmp_path / "a.json")
    with pytest.raises(
        ValueError, match=r"a.json: annotation is for a 100x100 image but the image is 120x90"
    ):
        load_annotation(path, (90, 120, 3))


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_annotation(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        load_annotation(bad)
    data = make().to_dict()
    for key, value, message in [
        ("version", 99, "unsupported annotation version"),
        ("image_size", {"width": 0, "height": 10}, "positive integers"),
        ("roi", {"polygons": []}, "ROI is empty"),
        ("lesion_circles", [{"x": 1, "y": 2}], r"\{x, y, r\}"),
    ]:
        broken = copy.deepcopy(data)
        broken[key] = value
        with pytest.raises(ValueError, match=message):
            annotation_from_dict(broken, source="x.json")


def test_labelme_import(tmp_path):
    labelme = {
        "version": "5.0.1",
        "shapes": [
            {
                "label": "roi",
                "points": [[20, 20], [80, 20], [80, 80], [20, 80]],
                "shape_type": "polygon",
            },
            {"label": "other", "points": [[0, 0], [5, 5]], "shape_type": "rectangle"},
        ],
        "imagePath": "img.png",
        "imageHeight": 100,
        "imageWidth": 100,
    }
    path = tmp_path / "lm.json"
    path.write_text(json.dumps(labelme))
    roi, shape, image = labelme_roi(path, label="roi")
    assert shape == (100, 100) and image == "img.png"
    assert np.array_equal(roi.rasterize(100, 100), Roi(polygons=[SQUARE]).rasterize(100, 100))
    roi_all, _, _ = labelme_roi(path)
    assert len(roi_all.polygons) == 2
    with pytest.raises(ValueError, match="no polygon with label 'lesion'"):
        labelme_roi(path, label="lesion")
    (tmp_path / "notlm.json").write_text("{}")
    with pytest.raises(ValueError, match="not a labelme file"):
        labelme_roi(tmp_path / "notlm.json")


def test_scaled_annotation_keeps_geometry():
    ann = make()
    half = ann.scaled(50, 50)
    assert half.lesion_circles[0].r == pytest.approx(5)
    assert half.lesion_circles[0].x == pytest.approx(24.75)
    assert half.roi_mask().sum() == pytest.approx(ann.roi_mask().sum() / 4, rel=0.1)
