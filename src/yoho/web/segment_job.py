"""What one web job does: train on the image, segment it, write the files the page shows."""

from __future__ import annotations

import cv2
import numpy as np

from yoho.annotation import load_annotation
from yoho.io import write_bytes
from yoho.overlay import PRED
from yoho.pipeline import segment
from yoho.predict import write_outputs
from yoho.web.jobs import Job, ProgressFn, StopFn
from yoho.web.store import ImageStore

__all__ = ["contour_layer", "make_runner"]


def contour_layer(mask: np.ndarray, thickness: int | None = None) -> np.ndarray:
    """RGBA picture of the mask's contour (opaque) over a light tint, transparent elsewhere.

    The page draws it over the image with the opacity the user picks; the tint is light so that
    the tissue under the lesion stays visible.
    """
    height, width = mask.shape
    if thickness is None:
        thickness = max(2, round(max(height, width) / 250))
    layer = np.zeros((height, width, 4), np.uint8)
    layer[mask] = (*PRED, 70)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(layer, contours, -1, (*PRED, 255), thickness, lineType=cv2.LINE_AA)
    return layer


def _png_rgba(layer: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(layer, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("PNG encoding of the contour layer failed")
    return encoded.tobytes()


def make_runner(store: ImageStore, device: str | None = None):
    """The job runner for `JobQueue`: segments the job's image with the job's annotation."""

    def run(job: Job, progress: ProgressFn, should_stop: StopFn) -> dict:
        folder = store.job_dir(job.image_id, job.id)
        image = store.read_image(job.image_id)
        annotation = load_annotation(folder / "annotation.json", image.shape)
        result = segment(
            image,
            annotation,
            job.profile,
            seed=job.seed,
            device=device,
            progress=progress,
            should_stop=should_stop,
        )
        write_bytes(folder / "contour.png", _png_rgba(contour_layer(result.mask)))
        return write_outputs(
            folder, image, annotation, result, extra={"image_id": job.image_id, "job_id": job.id}
        )

    return run
