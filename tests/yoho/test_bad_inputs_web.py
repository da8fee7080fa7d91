"""Bad input to the YOHO web tool and its job queue: a JSON 4xx naming the problem (never a
500 or a reset connection), jobs that can be cancelled in any phase, and a stuck job that
fails with its phase named while the queue moves on. Listed in docs/bad_inputs.md."""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import re
import time

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from yoho.cli import app as cli_app
from yoho.physician import simulate_annotation
from yoho.synthetic import synthetic_endoscopy
from yoho.web.app import create_app
from yoho.web.background import BackgroundServer, free_port
from yoho.web.jobs import Job, JobQueue, new_job_id
from yoho.web.segment_job import make_runner
from yoho.web.settings import WebSettings
from yoho.web.store import ImageStore

MAX_UPLOAD = 200_000


def _png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def picture():
    return synthetic_endoscopy(size=96, seed=4)


@pytest.fixture(scope="module")
def site(tmp_path_factory, picture):
    root = tmp_path_factory.mktemp("webbad")
    settings = WebSettings(results=root / "results", profile="tiny", max_upload_bytes=MAX_UPLOAD)
    with BackgroundServer(create_app(settings)) as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        image, mask = picture
        response = client.post(
            "/api/images?filename=a.png",
            content=_png(image),
            headers={"Content-Type": "image/png"},
        )
        assert response.status_code == 201, response.text
        yield {
            "client": client,
            "results": root / "results",
            "id": response.json()["id"],
            "annotation": simulate_annotation(image, mask).to_dict(),
        }
        client.close()


def _error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and re.search(pattern, body["error"]), body["error"]


def _alive(client) -> None:
    assert client.get("/api/health").json()["ok"] is True


def _put_raw(site, text: str):
    return site["client"].put(
        f"/api/images/{site['id']}/annotation",
        content=text.encode(),
        headers={"Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "field,token,pattern",
    [
        ("r_max", "Infinity", r"annotation: r_max is Infinity"),
        ("r_min", "NaN", r"annotation: r_min is NaN"),
        ("r_max", "1e9", r"r_max must lie in \(0, 96\]"),
        ("r_min", "[20]", r"r_min must be a number"),
        ("complement", '"false"', r"complement must be true or false"),
    ],
)
def test_web_annotation_with_bad_numbers_is_a_422_naming_the_field(site, field, token, pattern):
    data = dict(site["annotation"], **{field: "@@"})
    _error(_put_raw(site, json.dumps(data).replace('"@@"', token)), 422, pattern)
    _alive(site["client"])


def test_web_deeply_nested_json_is_a_400_not_a_500(site):
    deep = "[" * 100_000 + "]" * 100_000
    _error(_put_raw(site, deep), 400, r"nested too deeply")
    response = site["client"].post(
        f"/api/images/{site['id']}/jobs",
        content=deep.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500 and "error" in response.json()
    _alive(site["client"])


def test_reading_back_a_bad_saved_annotation_is_a_422_not_a_500(site):
    client = site["client"]
    assert _put_raw(site, json.dumps(site["annotation"])).status_code == 200
    path = site["results"] / site["id"] / "annotation.json"
    saved = path.read_text()
    try:
        path.write_text(saved.replace('"r_max": ', '"r_max": Infinity, "old_r_max": '))
        _error(
            client.get(f"/api/images/{site['id']}/annotation"),
            422,
            r"saved annotation: r_max is Infinity.*draw the annotation again",
        )
        path.write_text("{")
        _error(client.get(f"/api/images/{site['id']}/annotation"), 422, r"not valid JSON")
        assert client.get(f"/api/images/{site['id']}").status_code == 200
    finally:
        path.write_text(saved)
    assert client.get(f"/api/images/{site['id']}/annotation").status_code == 200


def test_an_upload_far_over_the_limit_gets_the_json_413(site):
    body = bytes(MAX_UPLOAD + 2 * 2**20)  # beyond the server-wide body cap as well
    response = site["client"].post(
        "/api/images?filename=huge.png", content=body, headers={"Content-Type": "image/png"}
    )
    _error(response, 413, r"huge\.png: [\d,]+ bytes, above the limit of 200,000 bytes")
    response = site["client"].put(
        f"/api/images/{site['id']}/annotation",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    _error(response, 413, r"above")
    _alive(site["client"])


# -- jobs: cancel in any phase, a stuck phase fails and the queue moves on ---------------------


@pytest.fixture()
def store_with_job(tmp_path, picture):
    image, mask = picture
    store = ImageStore(tmp_path / "results", 10_000_000)
    image_id = store.add_image(_png(image), "a.png", "upload")["id"]
    store.save_annotation(image_id, json.dumps(simulate_annotation(image, mask).to_dict()).encode())

    def new_job(profile: str = "tiny") -> Job:
        job = Job(id=new_job_id(), image_id=image_id, profile=profile)
        store.new_job_dir(image_id, job.id)
        return job

    return store, new_job


def _wait(queue: JobQueue, job_id: str, timeout: float = 120.0) -> dict:
    snap = queue.wait(job_id, timeout)
    assert snap is not None and snap["state"] in {"done", "failed", "cancelled"}, snap
    return snap


def test_cancel_reaches_a_job_before_training_starts(store_with_job):
    store, new_job = store_with_job
    queue = JobQueue(make_runner(store, "cpu"))
    try:
        job = new_job()
        queue.submit(job)
        deadline = time.monotonic() + 30
        while queue.snapshot(job.id)["state"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.02)
        # Running, but still starting, loading or rendering: no training step has run yet.
        assert queue.snapshot(job.id)["step"] == 0
        queue.cancel(job.id)
        snap = _wait(queue, job.id, 60)
        assert snap["state"] == "cancelled" and snap["step"] == 0
        assert not (store.job_dir(job.image_id, job.id) / "mask.png").exists()
        assert multiprocessing.active_children() == []  # the job's process is gone
    finally:
        queue.shutdown()


def test_a_job_stuck_in_a_phase_fails_with_the_reason_and_the_queue_moves_on(store_with_job):
    store, new_job = store_with_job
    # A limit far below the child's start-up time: every job is "stuck" while starting.
    queue = JobQueue(make_runner(store, "cpu", phase_timeout=0.3))
    try:
        first, second = new_job(), new_job()
        queue.submit(first)
        queue.submit(second)
        for job in (first, second):
            snap = _wait(queue, job.id, 60)
            assert snap["state"] == "failed", snap
            assert snap["error"].startswith("JobStuck: no progress for 0.3 s while starting")
        assert multiprocessing.active_children() == []
    finally:
        queue.shutdown()


def test_a_diverged_loss_is_sent_as_null_not_as_invalid_json():
    def runner(job, progress, should_stop):
        progress(1, 2, math.nan)
        return {}

    queue = JobQueue(runner)
    seen = []
    queue.on_change = seen.append
    job = Job(id=new_job_id(), image_id="x", profile="tiny")
    queue.submit(job)
    snap = queue.wait(job.id, 10)
    queue.shutdown()
    assert snap["state"] == "done" and snap["loss"] is None
    json.dumps(snap, allow_nan=False)  # what Starlette does: it must not raise


# -- yoho serve options ------------------------------------------------------------------------------


def test_serve_with_results_naming_a_file_is_one_line(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    result = CliRunner().invoke(
        cli_app, ["serve", "--results", str(target), "--port", str(free_port())]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "results.txt: exists and is not a folder" in result.output


def test_serve_and_segment_with_cuda_on_a_machine_without_it_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    port = str(free_port())
    result = CliRunner().invoke(
        cli_app, ["serve", "--results", str(tmp_path), "--device", "cuda", "--port", port]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--device cuda: " in result.output and "use --device cpu" in result.output
