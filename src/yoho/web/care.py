"""What the web tool offers a clinician, and how it handles their patient images.

- **Profiles for people.** The page offers only the profiles that make sense on the detected
  hardware, named for what they mean to a clinician: "Fast (≈1 min, CPU)" (`cpu_guided`, the
  measured best on a CPU) everywhere, and "Published schedule (GPU)" (`paper`) only when a
  CUDA GPU is used. The developer profiles (`cpu`, `cpu_tuned`, `cpu_calibrated`, `cpu_fused`,
  `cpu_shuffled`, `cpu_shuffled_ema`, `cpu_shuffled_anneal`, `cpu_shuffled_seeded`, `tiny`)
  appear only with `yoho serve --expert`. The profile the server was started with is always
  offered. The API still accepts every known profile by name (scripts, tests).
- **Delete.** `DELETE /api/images/{id}` removes the image and everything derived from it (its
  annotation, every job folder with masks, overlays, exports and models): the folder is first
  renamed out of the way (the image disappears from every answer at once), its queued and
  running jobs are cancelled and waited for, then the folder is removed from disk.
- **Check annotation.** `GET /api/images/{id}/preview.png` and `.../preview` (JSON checks):
  what the network will be taught from the saved annotation (`yoho.preview`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from yoho.profiles import PROFILES, profile_names
from yoho.web.errors import NotFound, Unprocessable
from yoho.web.jobs import TERMINAL, JobQueue
from yoho.web.safety import check_image_id
from yoho.web.settings import WebSettings
from yoho.web.store import ImageStore

__all__ = ["PROFILE_LABELS", "offered_profiles", "add_care_routes", "delete_image", "NOTICE"]

NOTICE = "Research use only — not a medical device."
PROFILE_LABELS = {
    "cpu_guided": "Fast (≈1 min, CPU)",
    "cpu_shuffled": "Developer: cpu_shuffled (network trained on shuffled backgrounds; candidate)",
    "cpu_shuffled_ema": "Developer: cpu_shuffled_ema (cpu_shuffled, moving average of the weights; candidate)",
    "cpu_shuffled_anneal": "Developer: cpu_shuffled_anneal (cpu_shuffled, learning rate cooled faster; candidate)",
    "cpu_shuffled_seeded": "Developer: cpu_shuffled_seeded (cpu_shuffled_anneal, the network seeds one-circle walks; candidate)",
    "cpu_fused": "Developer: cpu_fused (¼ network + ¾ walker, the previous default)",
    "cpu_calibrated": "Developer: cpu_calibrated (network map only, no walker)",
    "paper": "Published schedule (GPU)",
    "cpu": "Developer: cpu (uncalibrated network)",
    "cpu_tuned": "Developer: cpu_tuned (no calibration)",
    "tiny": "Developer: tiny (a few seconds; tests only, not a result)",
}
FOR_PEOPLE_CPU = ("cpu_guided",)
FOR_PEOPLE_GPU = ("cpu_guided", "paper")
DELETE_WAIT_SECONDS = 30.0


def accelerator(device: str | None) -> str:
    """The device jobs will train on: "cuda", "mps" or "cpu"."""
    from yoho.train import resolve_device

    return resolve_device(device).type


def offered_profiles(settings: WebSettings, device_type: str) -> list[dict[str, Any]]:
    """The profiles the page lists, in order, with a label for people."""
    if settings.expert:
        names = list(profile_names())
    else:
        names = list(FOR_PEOPLE_GPU if device_type == "cuda" else FOR_PEOPLE_CPU)
    if settings.profile not in names:
        names.insert(0, settings.profile)
    out = []
    for name in names:
        if name not in PROFILES:
            continue
        out.append(
            {
                "name": name,
                "label": PROFILE_LABELS.get(name, name),
                "description": PROFILES[name].description,
                "steps": PROFILES[name].total_steps,
                "expert": name not in FOR_PEOPLE_GPU,
            }
        )
    return out


def delete_image(store: ImageStore, jobs: JobQueue, image_id: str) -> dict[str, Any]:
    """Remove an image and everything derived from it; returns what was removed."""
    folder = store.image_dir(check_image_id(image_id))
    meta = store.image_meta(image_id)  # 404 when there is no such image
    trash = store.root / f".deleting-{image_id}-{secrets.token_hex(4)}"
    os.rename(folder, trash)  # from here on the image is gone for every request
    active = [s for s in jobs.list() if s["image_id"] == image_id and s["state"] not in TERMINAL]
    for snap in active:
        with contextlib.suppress(NotFound):  # finished in between
            jobs.cancel(snap["id"])
    deadline = time.monotonic() + DELETE_WAIT_SECONDS
    for snap in active:
        jobs.wait(snap["id"], max(0.0, deadline - time.monotonic()))
    time.sleep(0.05)  # the last state change of a cancelled job is recorded just after
    files = sum(len(f) for _, _, f in os.walk(trash))
    shutil.rmtree(trash, ignore_errors=True)
    # A job's last record (or its child process, before it was ended) may have re-created
    # the folder under the old name: without image.json it is a leftover, removed too.
    if folder.exists() and not (folder / "image.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
    return {"deleted": image_id, "name": meta.get("name"), "files": files,
            "jobs_cancelled": len(active)}  # fmt: skip


def add_care_routes(app: FastAPI, store: ImageStore, jobs: JobQueue) -> None:
    """DELETE of an image, and the physician's preview of its saved annotation."""

    @app.delete("/api/images/{image_id}")
    async def image_delete(image_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(delete_image, store, jobs, image_id)

    def preview(image_id: str) -> tuple[bytes, list[str]]:
        import cv2

        from yoho.annotation import annotation_from_dict
        from yoho.preview import physician_preview

        data = store.load_annotation(image_id)  # 404/422 with the reason
        image = store.read_image(image_id)
        try:
            ann = annotation_from_dict(data, source="saved annotation")
        except ValueError as exc:
            raise Unprocessable(str(exc)) from None
        picture, checks = physician_preview(image, ann)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("PNG encoding of the preview failed")
        return encoded.tobytes(), checks

    @app.get("/api/images/{image_id}/preview.png")
    async def preview_png(image_id: str) -> Response:
        png, _ = await asyncio.to_thread(preview, image_id)
        return Response(png, media_type="image/png")

    @app.get("/api/images/{image_id}/preview")
    async def preview_checks(image_id: str) -> dict[str, Any]:
        _, checks = await asyncio.to_thread(preview, image_id)
        return {"checks": checks}


def results_note(root: Path) -> str:
    """Where the patient images are kept, for the start-up line."""
    return f"patient images and results are kept in {root} until deleted"
