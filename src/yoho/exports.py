"""The lesion mask in the formats other tools re-open: polygons, GeoJSON, labelme, DICOM-SEG.

Written next to `mask.png` by `yoho segment`, `yoho segment-folder` and the web tool:

- `lesion_annotation.json` — the project's annotation JSON (the annotation the network was
  trained from, so the web tool and `yoho segment` re-open and re-run it) with one optional
  field more, `"lesion"`: the predicted lesion as `{"polygons": [...], "holes": [...]}`, the
  same structure as the ROI. Readers of annotation version 1 ignore the field.
- `lesion.geojson` — a FeatureCollection with one `MultiPolygon` feature labelled `lesion`
  (QuPath and GIS tools read it). Coordinates are image pixels, x to the right and **y down**
  (no CRS); rings are closed, exteriors counter-clockwise and holes clockwise by the shoelace
  formula on these numbers (RFC 7946's right-hand rule taken literally).
- `lesion_labelme.json` — a labelme file: one `polygon` shape labelled `lesion` per outline
  and `lesion_hole` per hole (labelme has no holes; `group_id` ties a hole to its outline).
- `lesion_seg.dcm` — DICOM-SEG (binary, one segment "lesion"), written with highdicom when the
  input image was a DICOM file: it references that image and copies its patient and study.
  For plain images no DICOM-SEG is written: a SEG must reference a DICOM source instance
  (its study, series and SOP instance UIDs), which a PNG or JPEG does not have; inventing them
  would make a segmentation of no study. The reason is recorded in `summary.json`.

Polygons are exact for the mask: vertices are pixel centres of the outline (OpenCV's
`CHAIN_APPROX_SIMPLE`, which drops only collinear points), and filling them (OpenCV's
`fillPoly`, which includes the outline) gives back the mask. One limit: a component without
three distinct outline points (a single pixel, a one-pixel-wide straight line) has no polygon
and is left out.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from yoho.io import write_bytes, write_json

__all__ = [
    "Polygon",
    "mask_polygons",
    "rasterize_polygons",
    "to_geojson",
    "from_geojson",
    "to_labelme",
    "from_labelme",
    "lesion_annotation",
    "from_lesion_annotation",
    "write_dicom_seg",
    "read_dicom_seg",
    "write_exports",
    "EXPORT_FILES",
    "NOT_DICOM_NOTE",
]

# (exterior, holes): arrays of (x, y) vertices in image pixels.
Polygon = tuple[np.ndarray, list[np.ndarray]]

EXPORT_FILES = {
    "annotation": "lesion_annotation.json",
    "geojson": "lesion.geojson",
    "labelme": "lesion_labelme.json",
    "dicom_seg": "lesion_seg.dcm",
}
NOT_DICOM_NOTE = (
    "not written: the input is not a DICOM file, and a DICOM-SEG must reference a DICOM "
    "source image (study, series and instance UIDs); use lesion.geojson, lesion_labelme.json "
    "or mask.png instead"
)


def _outline(mask: np.ndarray) -> list[np.ndarray]:
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    return [c.reshape(-1, 2) for c in contours if len(c) >= 3]


def mask_polygons(mask: np.ndarray) -> list[Polygon]:
    """The mask's connected components (8-connected) as polygons with holes.

    A component inside another's hole is a polygon of its own; the mask is the union of all
    polygons, each filled and its holes cleared (`rasterize_polygons`).
    """
    mask = np.asarray(mask).astype(bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    polygons: list[Polygon] = []
    for k in range(1, count):
        x, y, w, h = (int(v) for v in stats[k, :4])
        # One pixel of margin so that outlines never touch the crop's border.
        x0, y0 = max(0, x - 1), max(0, y - 1)
        crop = labels[y0 : y + h + 1, x0 : x + w + 1] == k
        outlines = _outline(crop)
        if not outlines:
            continue
        exterior = max(outlines, key=len)
        filled = np.zeros(crop.shape, np.uint8)
        cv2.fillPoly(filled, [exterior.astype(np.int32)], 1)
        # Holes: background enclosed by the outline, traced around the hole pixels themselves,
        # so clearing a filled hole removes exactly those pixels.
        holes = _outline(filled.astype(bool) & ~crop)
        offset = np.array([x0, y0])
        polygons.append((exterior + offset, [hole + offset for hole in holes]))
    return polygons


def rasterize_polygons(polygons: list[Polygon], height: int, width: int) -> np.ndarray:
    """The boolean mask of polygons with holes (the inverse of `mask_polygons`)."""
    out = np.zeros((height, width), bool)
    for exterior, holes in polygons:
        canvas = np.zeros((height, width), np.uint8)
        cv2.fillPoly(canvas, [np.round(exterior).astype(np.int32)], 1)
        for hole in holes:
            cv2.fillPoly(canvas, [np.round(hole).astype(np.int32)], 0)
        out |= canvas.astype(bool)
    return out


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0].astype(float), ring[:, 1].astype(float)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _ring(points: np.ndarray, counter_clockwise: bool) -> list[list[float]]:
    points = np.asarray(points, float)
    if (_signed_area(points) > 0) != counter_clockwise:
        points = points[::-1]
    ring = [[_number(x), _number(y)] for x, y in points]
    return ring + [ring[0]]


def _number(value: float) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else round(value, 3)


def _points(values: Any, where: str) -> np.ndarray:
    points = np.asarray(values, float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{where}: expected a list of [x, y] points")
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]  # GeoJSON rings repeat their first point
    return points


def to_geojson(polygons: list[Polygon], properties: dict[str, Any] | None = None) -> dict:
    """A GeoJSON FeatureCollection: one MultiPolygon feature (none when the mask is empty)."""
    features = []
    if polygons:
        coordinates = [
            [_ring(exterior, True), *(_ring(hole, False) for hole in holes)]
            for exterior, holes in polygons
        ]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "MultiPolygon", "coordinates": coordinates},
                "properties": {"label": "lesion", "classification": "lesion"} | (properties or {}),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def from_geojson(data: dict) -> list[Polygon]:
    """The polygons of a GeoJSON FeatureCollection of (Multi)Polygon features."""
    polygons: list[Polygon] = []
    for i, feature in enumerate(data.get("features", [])):
        geometry = feature.get("geometry") or {}
        kind = geometry.get("type")
        parts = geometry.get("coordinates", [])
        if kind == "Polygon":
            parts = [parts]
        elif kind != "MultiPolygon":
            continue
        for j, rings in enumerate(parts):
            where = f"features[{i}] polygon {j}"
            polygons.append((_points(rings[0], where), [_points(r, where) for r in rings[1:]]))
    return polygons


def to_labelme(
    polygons: list[Polygon], height: int, width: int, image_path: str | None = None
) -> dict:
    """A labelme file: `lesion` polygons, and `lesion_hole` polygons for their holes."""

    def shape(points: np.ndarray, label: str, group: int) -> dict:
        return {
            "label": label,
            "points": [[_number(x), _number(y)] for x, y in points],
            "group_id": group,
            "description": "",
            "shape_type": "polygon",
            "flags": {},
        }

    shapes = []
    for group, (exterior, holes) in enumerate(polygons):
        shapes.append(shape(exterior, "lesion", group))
        shapes += [shape(hole, "lesion_hole", group) for hole in holes]
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }


def from_labelme(data: dict) -> list[Polygon]:
    """The polygons of a labelme file written by `to_labelme` (holes matched by group_id)."""
    outlines: dict[Any, np.ndarray] = {}
    holes: dict[Any, list[np.ndarray]] = {}
    for i, shape in enumerate(data.get("shapes", [])):
        if shape.get("shape_type", "polygon") != "polygon":
            continue
        points = _points(shape["points"], f"shapes[{i}]")
        group = shape.get("group_id", i)
        if shape.get("label") == "lesion":
            outlines[group if group is not None else f"shape{i}"] = points
        elif shape.get("label") == "lesion_hole":
            holes.setdefault(group, []).append(points)
    return [(points, holes.get(group, [])) for group, points in outlines.items()]


def lesion_annotation(annotation, polygons: list[Polygon], meta: dict | None = None) -> dict:
    """The annotation's JSON with the optional `lesion` field (the predicted contour)."""
    data = annotation.to_dict()
    data["lesion"] = {
        "polygons": [[[_number(x), _number(y)] for x, y in ext] for ext, _ in polygons],
        "holes": [[[_number(x), _number(y)] for x, y in hole] for _, hs in polygons for hole in hs],
        "polygon_holes": [len(hs) for _, hs in polygons],
    } | (meta or {})
    return data


def from_lesion_annotation(data: dict) -> list[Polygon]:
    """The predicted lesion of a `lesion_annotation.json` as polygons with their holes."""
    lesion = data.get("lesion")
    if not isinstance(lesion, dict):
        raise ValueError("annotation: no 'lesion' field (not an exported result)")
    exteriors = [_points(p, "lesion.polygons") for p in lesion.get("polygons", [])]
    flat = [_points(p, "lesion.holes") for p in lesion.get("holes", [])]
    counts = lesion.get("polygon_holes") or [0] * len(exteriors)
    polygons, start = [], 0
    for exterior, n in zip(exteriors, counts, strict=True):
        polygons.append((exterior, flat[start : start + n]))
        start += n
    return polygons


# -- DICOM ----------------------------------------------------------------------------------


def is_dicom(path: str | os.PathLike) -> bool:
    """A DICOM Part 10 file: 128 bytes of preamble, then b"DICM"."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def write_dicom_seg(path: str | os.PathLike, mask: np.ndarray, source: str | os.PathLike) -> Path:
    """A binary DICOM-SEG of `mask` referencing the DICOM image `source` (highdicom)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from yoho import __version__

    source_ds = pydicom.dcmread(source)
    if (int(source_ds.Rows), int(source_ds.Columns)) != tuple(mask.shape):
        raise ValueError(f"{source}: the DICOM image is not the size of the mask")
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="YOHO", version=__version__, family=codes.cid7162.ArtificialIntelligence
        ),
    )
    seg = hd.seg.Segmentation(
        source_images=[source_ds],
        pixel_array=np.asarray(mask).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=int(getattr(source_ds, "SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="tatar-yoho",
        manufacturer_model_name="YOHO (research use only)",
        software_versions=__version__,
        device_serial_number="none",
        series_description="YOHO lesion segmentation (research use only)",
        omit_empty_frames=False,
    )
    buffer = io.BytesIO()
    seg.save_as(buffer)
    return write_bytes(path, buffer.getvalue())


def read_dicom_seg(path: str | os.PathLike) -> np.ndarray:
    """The lesion mask of a single-frame DICOM-SEG written by `write_dicom_seg`."""
    import highdicom as hd

    seg = hd.seg.segread(path)
    pixels = np.asarray(seg.pixel_array)
    return (pixels.reshape(pixels.shape[-2:]) if pixels.ndim == 3 else pixels).astype(bool)


def write_exports(
    out: str | os.PathLike,
    mask: np.ndarray,
    annotation,
    image_name: str | None = None,
    source: str | os.PathLike | None = None,
    meta: dict | None = None,
) -> dict[str, str]:
    """Write every export of `mask` into `out`; returns {format: file name or the reason why not}.

    `source`: the input image file; a DICOM file also gets `lesion_seg.dcm`.
    """
    out = Path(out)
    height, width = mask.shape
    polygons = mask_polygons(mask)
    written = {}
    data = lesion_annotation(annotation, polygons, meta)
    if image_name is not None:
        data["image"] = image_name
    write_json(out / EXPORT_FILES["annotation"], data)
    written["annotation"] = EXPORT_FILES["annotation"]
    properties = {"image": image_name, "width": int(width), "height": int(height)} | (meta or {})
    write_json(out / EXPORT_FILES["geojson"], to_geojson(polygons, properties))
    written["geojson"] = EXPORT_FILES["geojson"]
    write_json(out / EXPORT_FILES["labelme"], to_labelme(polygons, height, width, image_name))
    written["labelme"] = EXPORT_FILES["labelme"]
    if source is not None and is_dicom(source):
        write_dicom_seg(out / EXPORT_FILES["dicom_seg"], mask, source)
        written["dicom_seg"] = EXPORT_FILES["dicom_seg"]
    else:
        stale = out / EXPORT_FILES["dicom_seg"]
        if stale.is_file():
            stale.unlink()  # from an earlier run on a DICOM input of the same name
        written["dicom_seg"] = NOT_DICOM_NOTE
    return written
