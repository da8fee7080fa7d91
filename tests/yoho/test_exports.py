"""Exports of the lesion mask (polygons, GeoJSON, labelme, DICOM-SEG), each round-tripped to a
raster, the overlay's legend, DICOM input, and the permissions of written files."""

from __future__ import annotations

import json
import os
import stat

import cv2
import numpy as np
import pytest

from yoho.annotation import labelme_roi, load_annotation
from yoho.exports import (
    NOT_DICOM_NOTE,
    from_geojson,
    from_labelme,
    from_lesion_annotation,
    mask_polygons,
    rasterize_polygons,
    read_dicom_seg,
    write_exports,
)
from yoho.io import read_image, write_bytes, write_json, write_png
from yoho.metrics import dice
from yoho.overlay import draw_overlay, overlay_with_legend
from yoho.synthetic import write_dicom


def _masks(synthetic) -> dict[str, np.ndarray]:
    _, lesion = synthetic
    h, w = 120, 160
    ring = np.zeros((h, w), np.uint8)
    cv2.circle(ring, (80, 60), 45, 1, -1)
    cv2.circle(ring, (80, 60), 20, 0, -1)  # a hole ...
    cv2.circle(ring, (80, 60), 8, 1, -1)  # ... with an island in it
    cv2.rectangle(ring, (5, 5), (25, 18), 1, -1)  # and a second component
    blobs = np.zeros((h, w), np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(12):
        x, y, r = rng.integers(10, 150), rng.integers(10, 110), rng.integers(3, 14)
        cv2.circle(blobs, (int(x), int(y)), int(r), 1, -1)
    return {"lesion": lesion, "ring": ring.astype(bool), "blobs": blobs.astype(bool)}


@pytest.fixture
def masks(synthetic):
    return _masks(synthetic)


def test_polygons_round_trip_to_the_same_raster(masks):
    for name, mask in masks.items():
        polygons = mask_polygons(mask)
        back = rasterize_polygons(polygons, *mask.shape)
        assert dice(back, mask) >= 0.99, name
    ring = mask_polygons(masks["ring"])
    assert sorted(len(holes) for _, holes in ring) == [0, 0, 1]  # rectangle, island, ring
    assert rasterize_polygons(mask_polygons(np.zeros((20, 20), bool)), 20, 20).sum() == 0


def test_every_export_round_trips(tmp_path, synthetic, synthetic_annotation, masks):
    image, _ = synthetic
    mask = masks["lesion"]
    written = write_exports(tmp_path, mask, synthetic_annotation, image_name="img.png")
    assert written["dicom_seg"] == NOT_DICOM_NOTE  # a PNG input gets a note, not a SEG
    assert not (tmp_path / "lesion_seg.dcm").exists()

    # The project's annotation JSON: a version-1 reader loads it (the field is optional) ...
    path = tmp_path / written["annotation"]
    ann = load_annotation(path, image.shape)
    assert ann.lesion_circles == synthetic_annotation.lesion_circles
    data = json.loads(path.read_text())
    assert data["image"] == "img.png" and data["format"] == "yoho-annotation"
    # ... and its lesion polygons give the mask back.
    assert dice(rasterize_polygons(from_lesion_annotation(data), *mask.shape), mask) >= 0.99

    geo = json.loads((tmp_path / written["geojson"]).read_text())
    assert geo["type"] == "FeatureCollection"
    feature = geo["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"]["label"] == "lesion"
    for rings in feature["geometry"]["coordinates"]:
        assert all(r[0] == r[-1] and len(r) >= 4 for r in rings)  # closed rings
    assert dice(rasterize_polygons(from_geojson(geo), *mask.shape), mask) >= 0.99

    labelme = json.loads((tmp_path / written["labelme"]).read_text())
    assert (labelme["imageWidth"], labelme["imageHeight"]) == (mask.shape[1], mask.shape[0])
    assert labelme["imagePath"] == "img.png" and labelme["imageData"] is None
    assert dice(rasterize_polygons(from_labelme(labelme), *mask.shape), mask) >= 0.99
    # labelme's outlines are what `yoho import-labelme --label lesion` reads as an ROI.
    roi, (height, width), _ = labelme_roi(tmp_path / written["labelme"], label="lesion")
    assert (height, width) == mask.shape
    assert dice(roi.rasterize(height, width), mask) >= 0.99


def test_holes_survive_geojson_and_labelme(tmp_path, synthetic_annotation, masks):
    mask = masks["ring"]
    ann = synthetic_annotation.scaled(mask.shape[1], mask.shape[0])
    written = write_exports(tmp_path, mask, ann)
    geo = json.loads((tmp_path / written["geojson"]).read_text())
    labelme = json.loads((tmp_path / written["labelme"]).read_text())
    data = json.loads((tmp_path / written["annotation"]).read_text())
    for polygons in (from_geojson(geo), from_labelme(labelme), from_lesion_annotation(data)):
        back = rasterize_polygons(polygons, *mask.shape)
        assert dice(back, mask) >= 0.99
        assert not back[60, 80 - 14]  # inside the hole
        assert back[60, 80]  # the island


def test_empty_mask_exports(tmp_path, synthetic_annotation):
    mask = np.zeros(synthetic_annotation.shape, bool)
    written = write_exports(tmp_path, mask, synthetic_annotation)
    geo = json.loads((tmp_path / written["geojson"]).read_text())
    assert geo["features"] == []
    assert json.loads((tmp_path / written["labelme"]).read_text())["shapes"] == []


def test_dicom_input_is_read_and_gets_a_dicom_seg(tmp_path, synthetic, synthetic_annotation):
    pytest.importorskip("highdicom")
    pydicom = pytest.importorskip("pydicom")

    image, mask = synthetic
    source = write_dicom(tmp_path / "frame.dcm", image)
    assert np.array_equal(read_image(tmp_path / "frame.dcm"), image)
    write_dicom(tmp_path / "grey.dcm", image, "MONOCHROME2")
    grey = read_image(tmp_path / "grey.dcm")
    assert grey.shape == image.shape and np.array_equal(grey[:, :, 1], image[:, :, 0])

    out = tmp_path / "out"
    written = write_exports(out, mask, synthetic_annotation, source=tmp_path / "frame.dcm")
    assert written["dicom_seg"] == "lesion_seg.dcm"
    back = read_dicom_seg(out / "lesion_seg.dcm")
    assert dice(back, mask) >= 0.99
    seg = pydicom.dcmread(out / "lesion_seg.dcm")
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.PatientID == "P1" and seg.SegmentSequence[0].SegmentLabel == "lesion"
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_broken_dicom_file_is_one_clear_error(tmp_path):
    (tmp_path / "bad.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    with pytest.raises(ValueError, match="bad.dcm: not a readable DICOM image"):
        read_image(tmp_path / "bad.dcm")


def test_overlay_has_a_legend_below_the_picture(synthetic, synthetic_annotation):
    image, mask = synthetic
    plain = draw_overlay(image, mask, gt=mask, roi=synthetic_annotation.roi_mask())
    picture = overlay_with_legend(image, mask, synthetic_annotation, gt=mask, profile="tiny")
    h, w = image.shape[:2]
    assert picture.shape[1] == w and picture.shape[0] > h
    strip = picture[h:]
    assert (strip != strip[0, 0]).any(axis=2).mean() > 0.03  # text and keys drawn
    for colour in ((0, 255, 0), (255, 220, 0), (255, 60, 60), (60, 200, 255)):
        assert (np.abs(strip.astype(int) - colour).sum(axis=2) < 40).any(), colour
    # The picture part is the overlay itself, circles added.
    assert dice((picture[:h] != image).any(axis=2), (plain != image).any(axis=2)) > 0.5
    wide = overlay_with_legend(np.zeros((400, 1200, 3), np.uint8), mask[:1, :1].repeat(400, 0)
                               .repeat(1200, 1) & False)  # fmt: skip
    assert wide.shape[0] - 400 < 200  # a wide image: one row of keys, short footer


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        for path in (
            write_bytes(tmp_path / "a.bin", b"x"),
            write_json(tmp_path / "b.json", {"a": 1}),
            write_png(tmp_path / "c.png", np.zeros((8, 8), bool)),
        ):
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
            write_bytes(path, b"again")  # replaced atomically, same permissions
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".*.tmp")), "atomic writes leave no temporary file"
