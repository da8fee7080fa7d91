"""The results folder: one sub-folder per image, holding the image, its annotation and jobs.

Layout (``<results>`` is ``--results``, by default a per-user data folder)::

    <results>/<image id>/image.png        the decoded pixels, re-encoded as PNG (no metadata)
                         image.json       id, display name, size, where it came from
                         annotation.json  the latest saved annotation ("image": "image.png")
                         jobs/<job id>/   job.json, annotation.json, mask.png, overlay.png,
                                          contour.png, curve.png, summary.json

Each image folder is self-contained: ``yoho segment image.png -a annotation.json`` works on it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from yoho.annotation import (
    annotation_from_dict,
    parse_json_text,
    save_annotation,
    validate_annotation,
)
from yoho.io import check_output_folder, read_image, write_json, write_png
from yoho.web.errors import BadRequest, NotFound, Unprocessable
from yoho.web.images import decode_image, pixel_id
from yoho.web.safety import IMAGE_ID, check_image_id, check_job_id, inside

__all__ = ["ImageStore", "JOB_FILES", "now"]

# The only job files a client may fetch: a whitelist, not a path.
JOB_FILES = {
    "mask.png": "image/png",
    "overlay.png": "image/png",
    "contour.png": "image/png",
    "curve.png": "image/png",
    "summary.json": "application/json",
    "annotation.json": "application/json",
    # exports of the contour (yoho.exports)
    "lesion.geojson": "application/geo+json",
    "lesion_labelme.json": "application/json",
    "lesion_annotation.json": "application/json",
}
ANNOTATION_BYTES = 2_000_000


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ImageStore:
    """Images, annotations and job folders under one results folder."""

    def __init__(self, root: str | Path, max_pixels: int) -> None:
        try:
            self.root = check_output_folder(Path(root).expanduser()).resolve()
        except ValueError as exc:
            raise ValueError(f"results folder {exc}") from None
        self.max_pixels = max_pixels

    # -- paths: always from validated ids, always checked to stay inside the root ------------

    def image_dir(self, image_id: str) -> Path:
        return inside(self.root, self.root / check_image_id(image_id))

    def job_dir(self, image_id: str, job_id: str) -> Path:
        return inside(self.root, self.image_dir(image_id) / "jobs" / check_job_id(job_id))

    def job_file(self, image_id: str, job_id: str, name: str) -> Path:
        if name not in JOB_FILES:
            raise NotFound(f"no job file {name[:60]!r}; files are {', '.join(sorted(JOB_FILES))}")
        path = inside(self.root, self.job_dir(image_id, job_id) / name)
        if not path.is_file():
            raise NotFound(f"job {job_id} has no {name} (yet)")
        return path

    # -- images --------------------------------------------------------------------------------

    def add_image(self, data: bytes, name: str, source: str) -> dict[str, Any]:
        """Decode and store an image; the same pixels map to the same folder (and annotation)."""
        image = decode_image(data, self.max_pixels, name)
        image_id = pixel_id(image)
        folder = self.image_dir(image_id)
        existed = (folder / "image.png").is_file() and (folder / "image.json").is_file()
        if not existed:
            write_png(folder / "image.png", image)
            meta = {
                "id": image_id,
                "name": name,
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "source": source,
                "added": now(),
            }
            write_json(folder / "image.json", meta)
        info = self.image_info(image_id)
        info["existing"] = existed
        return info

    def image_meta(self, image_id: str) -> dict[str, Any]:
        path = self.image_dir(image_id) / "image.json"
        if not path.is_file():
            raise NotFound(f"no image with id {image_id}")
        return json.loads(path.read_text(encoding="utf-8"))

    def image_info(self, image_id: str) -> dict[str, Any]:
        meta = self.image_meta(image_id)
        meta["has_annotation"] = (self.image_dir(image_id) / "annotation.json").is_file()
        return meta

    def image_path(self, image_id: str) -> Path:
        path = self.image_dir(image_id) / "image.png"
        if not path.is_file():
            raise NotFound(f"no image with id {image_id}")
        return path

    def read_image(self, image_id: str) -> np.ndarray:
        return read_image(self.image_path(image_id))

    def list_images(self, limit: int = 100) -> list[dict[str, Any]]:
        """Known images, most recently changed first."""
        folders = [
            p
            for p in self.root.iterdir()
            if p.is_dir() and IMAGE_ID.fullmatch(p.name) and (p / "image.json").is_file()
        ]
        folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return [self.image_info(p.name) for p in folders[:limit]]

    # -- annotations ---------------------------------------------------------------------------

    def annotation_path(self, image_id: str) -> Path:
        return self.image_dir(image_id) / "annotation.json"

    def load_annotation(self, image_id: str) -> dict[str, Any]:
        self.image_meta(image_id)
        path = self.annotation_path(image_id)
        if not path.is_file():
            raise NotFound(f"image {image_id} has no saved annotation yet")
        # Checked as when it was saved: a file edited (or written by an older version) with
        # Infinity in it cannot even be sent as JSON, and the page must learn why.
        meta = self.image_meta(image_id)
        try:
            data = parse_json_text(path.read_bytes(), "saved annotation")
            ann = annotation_from_dict(data, source="saved annotation")
            validate_annotation(ann, (meta["height"], meta["width"]), source="saved annotation")
        except ValueError as exc:
            raise Unprocessable(f"{exc}; draw the annotation again and save it") from None
        return data

    def save_annotation(self, image_id: str, body: bytes) -> dict[str, Any]:
        """Parse, validate against the image and save an annotation sent by the client."""
        meta = self.image_meta(image_id)
        if len(body) > ANNOTATION_BYTES:
            raise BadRequest(f"annotation is larger than {ANNOTATION_BYTES:,} bytes")
        try:
            data = parse_json_text(body, "annotation")
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if not isinstance(data, dict):
            raise Unprocessable("annotation: the annotation must be a JSON object")
        roi = data.get("roi")
        if isinstance(roi, dict) and "mask" in roi:
            # A mask path would make the server read a file the client names: refused.
            raise Unprocessable(
                "annotation: the web tool takes the ROI as polygons; roi.mask is not accepted"
            )
        data = dict(data, image="image.png")
        try:
            ann = annotation_from_dict(data, source="annotation")
            validate_annotation(ann, (meta["height"], meta["width"]), source="annotation")
        except ValueError as exc:
            raise Unprocessable(str(exc)) from None
        save_annotation(ann, self.annotation_path(image_id), validate=False)
        return ann.to_dict()

    # -- jobs ----------------------------------------------------------------------------------

    def new_job_dir(self, image_id: str, job_id: str) -> Path:
        """Create a job folder holding a copy of the image's current annotation."""
        self.image_meta(image_id)
        annotation = self.annotation_path(image_id)
        if not annotation.is_file():
            raise Unprocessable("save an annotation for this image before segmenting it")
        folder = self.job_dir(image_id, job_id)
        folder.mkdir(parents=True, exist_ok=False)
        data = json.loads(annotation.read_text(encoding="utf-8"))
        # The job folder sits two levels below the image: keep the image path valid from there.
        data["image"] = "../../image.png"
        write_json(folder / "annotation.json", data)
        return folder

    def write_job_record(self, image_id: str, job_id: str, record: dict[str, Any]) -> None:
        if not (self.image_dir(image_id) / "image.json").is_file():
            return  # the image was deleted: its jobs' last states are not recorded
        write_json(self.job_dir(image_id, job_id) / "job.json", record)

    def read_job_record(self, image_id: str, job_id: str) -> dict[str, Any]:
        path = self.job_dir(image_id, job_id) / "job.json"
        if not path.is_file():
            raise NotFound(f"image {image_id} has no job {job_id}")
        return json.loads(path.read_text(encoding="utf-8"))

    def list_job_records(self, image_id: str) -> list[dict[str, Any]]:
        self.image_meta(image_id)
        folder = self.image_dir(image_id) / "jobs"
        if not folder.is_dir():
            return []
        records = []
        for path in folder.glob("*/job.json"):
            try:
                records.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue  # a folder being written right now
        records.sort(key=lambda r: r.get("created", ""), reverse=True)
        return records
