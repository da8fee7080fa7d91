"""The FastAPI application: JSON API under /api, the page and its static files under /.

Every error a client causes is a 4xx with a JSON body ``{"error": "..."}`` naming the problem;
anything else is logged and reported as a 500, and the server keeps serving. FastAPI's /docs and
/redoc pages are switched off because they load their scripts from a CDN.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from yoho.profiles import PROFILES, profile_names
from yoho.web.care import NOTICE, accelerator, add_care_routes, offered_profiles
from yoho.web.errors import BadRequest, NotFound, TooLarge, UnsupportedMedia, WebError
from yoho.web.guard import BodyLimit, RequestGuard
from yoho.web.images import list_data_images
from yoho.web.jobs import TERMINAL, Job, JobQueue, new_job_id
from yoho.web.refine_job import (
    RefineRequest,
    active_refine,
    new_refine_job,
    refuse_while_refining,
    rounds_info,
    undo_round,
    write_refine_record,
)
from yoho.web.safety import check_display_name, check_image_id, check_job_id, resolve_relative
from yoho.web.segment_job import make_runner
from yoho.web.settings import WebSettings
from yoho.web.store import JOB_FILES, ImageStore

__all__ = ["create_app"]

log = logging.getLogger("yoho.web")
STATIC = Path(__file__).resolve().parent / "static"
POLL_SECONDS = 0.2
HEARTBEAT_SECONDS = 15.0


class JobRequest(BaseModel):
    profile: str | None = Field(None, max_length=64)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class DataRequest(BaseModel):
    path: str = Field(..., min_length=1, max_length=1024)


def _attachment(display: str, suffix: str) -> dict[str, str]:
    """Content-Disposition for a download named after the image (ASCII only, no quotes)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(display).stem)[:60].strip("._") or "image"
    return {"Content-Disposition": f'attachment; filename="{stem}_{suffix}"'}


def create_app(settings: WebSettings) -> FastAPI:
    """Build the app for one results folder (and optional data folder)."""
    store = ImageStore(settings.results, settings.max_pixels)
    data_root = None if settings.data is None else Path(settings.data).resolve()
    if data_root is not None and not data_root.is_dir():
        raise FileNotFoundError(f"{settings.data}: data folder not found")
    if settings.profile not in PROFILES:
        raise ValueError(
            f"unknown profile {settings.profile!r}; known profiles: {', '.join(profile_names())}"
        )

    def persist(snap: dict[str, Any]) -> None:
        if snap.get("kind") == "refine":  # a correction round: recorded in its result's folder
            write_refine_record(store, snap)
            return
        store.write_job_record(snap["image_id"], snap["id"], snap)

    jobs = JobQueue(
        make_runner(store, settings.device, settings.phase_timeout, settings.threads),
        workers=settings.workers,
        max_pending=settings.max_pending,
        on_change=persist,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await asyncio.to_thread(jobs.shutdown, 10.0)

    app = FastAPI(
        title="YOHO web",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    device_type = accelerator(settings.device)
    app.state.store = store
    app.state.jobs = jobs
    app.state.settings = settings
    # Outermost first: the guard sees every request, the body limit is a backstop for all
    # routes (the upload route gives its own, clearer 413 below this size).
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + 2**20)
    app.add_middleware(RequestGuard, allowed_hosts=settings.allowed_hosts)

    # -- errors --------------------------------------------------------------------------------

    @app.exception_handler(WebError)
    async def _web_error(_request: Request, exc: WebError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(parts)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": f"internal error ({type(exc).__name__}); see the server log"},
            status_code=500,
        )

    # -- helpers -------------------------------------------------------------------------------

    def job_snapshot(image_id: str, job_id: str) -> dict[str, Any]:
        check_image_id(image_id)
        check_job_id(job_id)
        snap = jobs.snapshot(job_id)
        if snap is not None and snap["image_id"] == image_id:
            return snap
        record = store.read_job_record(image_id, job_id)
        if record.get("state") not in TERMINAL:
            # Queued or running in a server that has stopped since.
            record.update(state="failed", error="the server stopped before this job finished")
        return record

    def image_json(image_id: str) -> dict[str, Any]:
        info = store.image_info(image_id)
        info["jobs"] = [job_snapshot(image_id, r["id"]) for r in store.list_job_records(image_id)]
        return info

    # -- page ----------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Deleting an image and everything derived from it; the physician's preview (care.py).
    add_care_routes(app, store, jobs)

    # -- API: server -----------------------------------------------------------------------------

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        states: dict[str, int] = {}
        for snap in jobs.list():
            states[snap["state"]] = states.get(snap["state"], 0) + 1
        return {"ok": True, "jobs": states}

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return {
            "profile": settings.profile,
            # Only the profiles that make sense here, named for people (yoho.web.care).
            "profiles": offered_profiles(settings, device_type),
            "expert": settings.expert,
            "accelerator": device_type,
            "notice": NOTICE,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "data": data_root is not None,
            "workers": settings.workers,
        }

    # -- API: images -----------------------------------------------------------------------------

    @app.get("/api/data")
    async def data_list() -> dict[str, Any]:
        if data_root is None:
            raise NotFound("no data folder: start the server with --data DIR to pick images")
        return {"images": await asyncio.to_thread(list_data_images, data_root)}

    @app.post("/api/data/open")
    async def data_open(request: DataRequest) -> dict[str, Any]:
        if data_root is None:
            raise NotFound("no data folder: start the server with --data DIR to pick images")
        path = resolve_relative(data_root, request.path)
        if not path.is_file():
            raise NotFound(f"{request.path}: no such image in the data folder")
        if path.stat().st_size > settings.max_upload_bytes:
            raise TooLarge(
                f"{request.path}: {path.stat().st_size:,} bytes, above the limit of "
                f"{settings.max_upload_bytes:,}"
            )
        data = await asyncio.to_thread(path.read_bytes)
        rel = path.relative_to(data_root).as_posix()
        info = await asyncio.to_thread(store.add_image, data, path.name, f"data:{rel}")
        return image_json(info["id"]) | {"existing": info["existing"]}

    @app.get("/api/images")
    async def images_list() -> dict[str, Any]:
        return {"images": await asyncio.to_thread(store.list_images)}

    @app.post("/api/images", status_code=201)
    async def images_upload(request: Request, filename: str | None = None) -> dict[str, Any]:
        """The body is the image file itself (no multipart), so its size can be capped while
        it streams in, and a cross-site HTML form cannot submit it (forms cannot send it)."""
        name = check_display_name(filename, fallback="upload")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in {"application/octet-stream", ""} and not kind.startswith("image/"):
            raise UnsupportedMedia(
                f"send the image file itself as the request body (Content-Type image/* or "
                f"application/octet-stream), not {kind}"
            )
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"{name}: {int(declared):,} bytes, above the limit of {limit:,} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise TooLarge(f"{name}: more than the limit of {limit:,} bytes")
        info = await asyncio.to_thread(store.add_image, bytes(body), name, "upload")
        return image_json(info["id"]) | {"existing": info["existing"]}

    @app.get("/api/images/{image_id}")
    async def image_get(image_id: str) -> dict[str, Any]:
        return image_json(image_id)

    @app.get("/api/images/{image_id}/image")
    async def image_file(image_id: str) -> FileResponse:
        return FileResponse(store.image_path(image_id), media_type="image/png")

    # -- API: annotations ------------------------------------------------------------------------

    @app.get("/api/images/{image_id}/annotation")
    async def annotation_get(image_id: str, download: bool = False) -> Response:
        data = store.load_annotation(image_id)
        headers = {}
        if download:
            headers = _attachment(store.image_meta(image_id)["name"], "annotation.json")
        return JSONResponse(data, headers=headers)

    @app.put("/api/images/{image_id}/annotation")
    async def annotation_put(image_id: str, request: Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise BadRequest("send the annotation as application/json")
        body = await request.body()
        return await asyncio.to_thread(store.save_annotation, image_id, body)

    # -- API: jobs -------------------------------------------------------------------------------

    @app.get("/api/images/{image_id}/jobs")
    async def jobs_list(image_id: str) -> dict[str, Any]:
        return {"jobs": image_json(image_id)["jobs"]}

    @app.post("/api/images/{image_id}/jobs", status_code=202)
    async def jobs_submit(image_id: str, request: JobRequest) -> dict[str, Any]:
        profile = request.profile or settings.profile
        if profile not in PROFILES:
            raise BadRequest(
                f"unknown profile {profile[:64]!r}; known profiles: {', '.join(profile_names())}"
            )
        job = Job(id=new_job_id(), image_id=check_image_id(image_id), profile=profile)
        job.seed = request.seed
        job.total = PROFILES[profile].total_steps
        folder = await asyncio.to_thread(store.new_job_dir, image_id, job.id)
        try:
            return jobs.submit(job)
        except WebError:
            shutil.rmtree(folder, ignore_errors=True)  # refused (queue full): leave no trace
            raise

    @app.get("/api/images/{image_id}/jobs/{job_id}")
    async def job_get(image_id: str, job_id: str) -> dict[str, Any]:
        return job_snapshot(image_id, job_id)

    @app.post("/api/images/{image_id}/jobs/{job_id}/cancel")
    async def job_cancel(image_id: str, job_id: str) -> dict[str, Any]:
        snap = job_snapshot(image_id, job_id)
        if snap["state"] in TERMINAL:
            return snap
        return jobs.cancel(job_id)

    @app.get("/api/images/{image_id}/jobs/{job_id}/events")
    async def job_events(image_id: str, job_id: str) -> StreamingResponse:
        first = job_snapshot(image_id, job_id)  # 4xx now, before the stream starts

        async def stream():
            # The job lives in a worker thread; polling its version is the simplest safe
            # hand-over to the event loop, and 0.2 s is far below the time of a training step.
            snap, last, quiet = first, -1, 0.0
            while True:
                if snap["version"] != last:
                    last = snap["version"]
                    quiet = 0.0
                    yield f"event: job\ndata: {json.dumps(snap)}\n\n"
                if snap["state"] in TERMINAL:
                    return
                await asyncio.sleep(POLL_SECONDS)
                quiet += POLL_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield ": still here\n\n"
                snap = job_snapshot(image_id, job_id)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @app.get("/api/images/{image_id}/jobs/{job_id}/files/{name}")
    async def job_file(image_id: str, job_id: str, name: str, download: bool = False):
        path = store.job_file(image_id, job_id, name)
        headers = {}
        if download:
            headers = _attachment(store.image_meta(image_id)["name"], name)
        return FileResponse(path, media_type=JOB_FILES[name], headers=headers)

    # -- API: correction rounds of a result (refine_job.py) ----------------------------------------

    @app.get("/api/images/{image_id}/jobs/{job_id}/rounds")
    async def rounds_get(image_id: str, job_id: str) -> dict[str, Any]:
        job_snapshot(image_id, job_id)
        info = await asyncio.to_thread(rounds_info, store.job_dir(image_id, job_id))
        return info | {"refine": active_refine(jobs, image_id, job_id)}

    @app.post("/api/images/{image_id}/jobs/{job_id}/refine", status_code=202)
    async def rounds_refine(image_id: str, job_id: str, request: RefineRequest) -> dict[str, Any]:
        target = job_snapshot(image_id, job_id)
        job = await asyncio.to_thread(
            new_refine_job,
            store,
            target,
            request.circles("lesion_circles"),
            request.circles("normal_circles"),
        )
        # Checked after the await, with nothing awaited before the submit: one round at a time.
        refuse_while_refining(jobs, image_id, job_id, "refine")
        return jobs.submit(job)

    @app.post("/api/images/{image_id}/jobs/{job_id}/undo")
    async def rounds_undo(image_id: str, job_id: str) -> dict[str, Any]:
        job_snapshot(image_id, job_id)
        refuse_while_refining(jobs, image_id, job_id, "undo")
        folder = store.job_dir(image_id, job_id)
        # Not in a thread: a few renames and hard links, and no refine may start meanwhile.
        undo_round(folder)
        return rounds_info(folder) | {"refine": None}

    return app
