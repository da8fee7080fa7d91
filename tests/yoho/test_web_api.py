"""The web API against a real uvicorn server: uploads, annotations, jobs, and every way of
asking for something it must refuse (each a clear 4xx; the server keeps serving)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from yoho.annotation import load_annotation
from yoho.physician import simulate_annotation
from yoho.profiles import PROFILES, Phase, get_profile, register_profile
from yoho.synthetic import synthetic_endoscopy
from yoho.web.app import STATIC, create_app
from yoho.web.background import BackgroundServer
from yoho.web.settings import WebSettings

MAX_UPLOAD = 600_000
MAX_PIXELS = 4_000_000
FAST = "web-test"  # two training steps: the queue, files and events, not quality, are tested


def _png(image: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fast_profile():
    tiny = get_profile("tiny")
    register_profile(
        replace(tiny, name=FAST, steps_per_epoch=2, phases=(Phase(1, 3e-3),), dataset_length=8),
        overwrite=True,
    )
    yield FAST
    PROFILES.pop(FAST, None)


@pytest.fixture(scope="module")
def images():
    image, mask = synthetic_endoscopy(size=128, seed=3)
    other, other_mask = synthetic_endoscopy(size=96, seed=5)
    return {"a": (image, mask), "b": (other, other_mask)}


@pytest.fixture(scope="module")
def site(tmp_path_factory, images, fast_profile):
    root = tmp_path_factory.mktemp("web")
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.png").write_bytes(_png(images["a"][0]))
    (data / "sub" / "b.png").write_bytes(_png(images["b"][0]))
    (data / "notes.txt").write_text("not an image")
    (root / "secret.png").write_bytes(_png(images["b"][0]))
    os.symlink(root / "secret.png", data / "escape.png")
    settings = WebSettings(
        results=root / "results",
        data=data,
        profile=FAST,
        max_upload_bytes=MAX_UPLOAD,
        max_pixels=MAX_PIXELS,
    )
    with BackgroundServer(create_app(settings)) as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        yield {"url": server.url, "client": client, "root": root, "results": root / "results"}
        client.close()


def _alive(client: httpx.Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200 and response.json()["ok"] is True


def _upload(client, image, name="a.png", fmt="PNG"):
    response = client.post(
        f"/api/images?filename={name}",
        content=_png(image, fmt),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _annotation(image, mask) -> dict:
    return simulate_annotation(image, mask).to_dict()


def _error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert re.search(pattern, body["error"]), body["error"]


# -- the page ------------------------------------------------------------------------------------


def test_page_and_its_files_are_served_locally(site):
    client = site["client"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name in ["app.js", "editor.js", "style.css"]:
        assert client.get(f"/static/{name}").status_code == 200
        assert f"/static/{name}" in page.text
    # Nothing on the page or in its scripts points at another host.
    for path in STATIC.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path.name
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # FastAPI's documentation pages load scripts from a CDN: switched off.
    for path in ["/docs", "/redoc", "/openapi.json"]:
        assert client.get(path).status_code == 404
    config = client.get("/api/config").json()
    names = [p["name"] for p in config["profiles"]]
    # The preselected profile is always offered; developer profiles only with --expert.
    assert config["profile"] == FAST and FAST in names and "tiny" not in names
    assert config["max_upload_bytes"] == MAX_UPLOAD and config["data"] is True


# -- uploads ---------------------------------------------------------------------------------------


def test_upload_stores_pixels_and_the_same_pixels_give_the_same_image(site, images):
    client = site["client"]
    image = images["a"][0]
    info = _upload(client, image, "first.png")
    assert (info["width"], info["height"]) == (128, 128)
    again = _upload(client, image, "same-pixels.bmp", fmt="BMP")
    assert again["id"] == info["id"] and again["existing"] is True
    served = client.get(f"/api/images/{info['id']}/image")
    assert served.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(served.content))), image)
    stored = site["results"] / info["id"] / "image.png"
    assert stored.is_file()
    listed = client.get("/api/images").json()["images"]
    assert info["id"] in [entry["id"] for entry in listed]


def test_upload_of_something_that_is_not_an_image(site):
    client = site["client"]
    response = client.post(
        "/api/images?filename=report.png",  # the name says PNG; the content decides
        content=b"%PDF-1.4 this is not a picture\n" * 20,
        headers={"Content-Type": "image/png"},
    )
    _error(response, 415, r"report\.png: not an image")
    _alive(client)


def test_upload_too_large_in_bytes_and_in_pixels(site):
    client = site["client"]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (600, 600, 3), dtype=np.uint8)  # ~1 MB as PNG
    body = _png(noise)
    assert len(body) > MAX_UPLOAD
    response = client.post(
        "/api/images?filename=big.png", content=body, headers={"Content-Type": "image/png"}
    )
    _error(response, 413, r"big\.png: [\d,]+ bytes, above the limit of 600,000 bytes")
    _alive(client)
    # Without a Content-Length the limit is enforced while the body streams in.
    response = client.post(
        "/api/images?filename=big.png",
        content=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
        headers={"Content-Type": "image/png"},
    )
    _error(response, 413, r"more than the limit of 600,000 bytes")
    _alive(client)
    wide = np.zeros((100, 50_000), np.uint8)  # 5 MP, a small file
    response = client.post(
        "/api/images?filename=wide.png", content=_png(wide), headers={"Content-Type": "image/png"}
    )
    _error(response, 413, r"50000x100 = 5,000,000 pixels, above the limit of 4,000,000")
    _alive(client)


def test_upload_with_a_form_or_text_body_is_refused(site, images):
    client = site["client"]
    response = client.post("/api/images", files={"file": ("a.png", _png(images["a"][0]))})
    _error(response, 415, r"send the image file itself.*not multipart/form-data")
    response = client.post("/api/images", content=b"x", headers={"Content-Type": "text/plain"})
    _error(response, 415, r"not text/plain")
    _alive(client)


# -- annotations -----------------------------------------------------------------------------------


def test_annotation_is_saved_reloaded_and_usable_by_the_cli(site, images):
    client = site["client"]
    image, mask = images["a"]
    info = _upload(client, image)
    ann = _annotation(image, mask)
    saved = client.put(f"/api/images/{info['id']}/annotation", json=ann)
    assert saved.status_code == 200, saved.text
    assert client.get(f"/api/images/{info['id']}").json()["has_annotation"] is True
    loaded = client.get(f"/api/images/{info['id']}/annotation").json()
    assert loaded["lesion_circles"] == ann["lesion_circles"]
    assert loaded["roi"]["polygons"] == ann["roi"]["polygons"]
    assert loaded["image"] == "image.png"
    # The image folder is self-contained: the file validates against the stored image.
    folder = site["results"] / info["id"]
    checked = load_annotation(folder / "annotation.json", (128, 128, 3))
    assert len(checked.lesion_circles) == len(ann["lesion_circles"])
    download = client.get(f"/api/images/{info['id']}/annotation?download=true")
    name = Path(info["name"]).stem
    assert (
        download.headers["content-disposition"] == f'attachment; filename="{name}_annotation.json"'
    )


def test_bad_annotations_are_refused_with_the_reason(site, images):
    client = site["client"]
    image, mask = images["a"]
    image, mask = image[::-1].copy(), mask[::-1].copy()  # an image of its own
    info = _upload(client, image)
    url = f"/api/images/{info['id']}/annotation"
    good = _annotation(image, mask)
    off = json.loads(json.dumps(good))
    off["lesion_circles"].append({"x": 120, "y": 60, "r": 30})  # reaches x = 150 > 127.5
    _error(client.put(url, json=off), 422, r"lesion_circles\[\d\].*outside the 128x128 image")
    wrong_size = dict(good, image_size={"width": 200, "height": 128})
    _error(client.put(url, json=wrong_size), 422, r"200x128 image but the image is 128x128")
    no_circle = dict(good, lesion_circles=[])
    _error(client.put(url, json=no_circle), 422, r"at least one circle is needed")
    mask_roi = dict(good, roi={"mask": "../../../etc/passwd"})
    _error(client.put(url, json=mask_roi), 422, r"roi\.mask is not accepted")
    response = client.put(url, content=b"{not json", headers={"Content-Type": "application/json"})
    _error(response, 400, r"not valid JSON")
    _error(client.put(url, content=b"{}"), 400, r"application/json")
    assert client.get(url).status_code == 404  # nothing was saved
    _alive(client)


# -- path traversal and other ways out ------------------------------------------------------------


def _raw_get(url: str, path: str) -> int:
    """GET with the path sent exactly as written (http clients normalise '..' away)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_path_traversal_is_refused_in_every_parameter(site, images):
    client = site["client"]
    image, mask = images["a"]
    info = _upload(client, image)
    image_id = info["id"]
    client.put(f"/api/images/{image_id}/annotation", json=_annotation(image, mask))
    job = "0123456789abcdef"
    for path in [
        "/api/images/..%2F..%2Fsecret.png",
        "/api/images/..%2f..%2fsecret.png/image",
        f"/api/images/{image_id}%2F..%2F..%2Fsecret.png/image",
        "/api/images/%2E%2E/image",
        f"/api/images/{image_id}/jobs/..%2F..%2Fimage.json",
        f"/api/images/{image_id}/jobs/{job}/files/..%2F..%2F..%2Fimage.png",
        f"/api/images/{image_id}/jobs/{job}/files/%2Fetc%2Fpasswd",
        f"/api/images/{image_id}/jobs/{job}/files/job.json",
        f"/api/images/{image_id}/jobs/{job}/events",
        "/static/..%2F..%2Fweb%2Fapp.py",
        "/static/%2E%2E/app.py",
    ]:
        response = client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert "secret" not in response.text and "root:" not in response.text
    for path in [
        "/static/../app.py",
        "/static/../../annotation.py",
        "/api/images/../../secret.png",
        f"/api/images/{image_id}/jobs/{job}/files/../../../image.png",
        "/api/images/" + "../" * 8 + "etc/passwd",
    ]:
        status = _raw_get(site["url"], path)
        assert 400 <= status < 500, (path, status)
    for path in ["../secret.png", "sub/../../secret.png", "/etc/passwd", "escape.png",
                 "..\\secret.png", "sub/b.png\x00.txt", "nonexistent.png"]:  # fmt: skip
        response = client.post("/api/data/open", json={"path": path})
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert "error" in response.json()
    for name in ["../../evil.png", "a/b.png", "..", "x\\y.png"]:
        response = client.post(
            "/api/images", params={"filename": name}, content=_png(image),
            headers={"Content-Type": "image/png"},
        )  # fmt: skip
        _error(response, 400, r"must be a plain name|not a path")
    _error(client.get("/api/images/ABC/annotation"), 400, r"invalid image id")
    _error(client.post(f"/api/images/{image_id}/jobs/x/cancel"), 400, r"invalid job id")
    # Nothing was written outside the results folder, nothing new appeared next to it.
    assert sorted(p.name for p in site["root"].iterdir()) == ["data", "results", "secret.png"]
    _alive(client)


def test_other_hosts_and_cross_origin_writes_are_refused(site, images):
    client = site["client"]
    response = client.get("/api/config", headers={"Host": "attacker.example:8000"})
    _error(response, 400, r"host 'attacker\.example:8000' is not served")
    response = client.post(
        "/api/images?filename=a.png",
        content=_png(images["a"][0]),
        headers={"Origin": "http://attacker.example", "Content-Type": "image/png"},
    )
    _error(response, 403, r"cross-origin request refused")
    same = client.post(
        "/api/images?filename=a.png",
        content=_png(images["a"][0]),
        headers={"Origin": site["url"], "Content-Type": "image/png"},
    )
    assert same.status_code == 201
    _alive(client)


def test_data_folder_is_listed_and_opened_inside_only(site):
    client = site["client"]
    listed = [entry["path"] for entry in client.get("/api/data").json()["images"]]
    assert listed == ["a.png", "sub/b.png"]  # no text file, no symlink leading out
    opened = client.post("/api/data/open", json={"path": "sub/b.png"})
    assert opened.status_code == 200, opened.text
    assert opened.json()["source"] == "data:sub/b.png" and opened.json()["width"] == 96
    _error(client.post("/api/data/open", json={"path": "notes.txt"}), 415, r"not an image")
    _error(client.post("/api/data/open", json={"path": "escape.png"}), 400, r"outside its folder")
    _error(client.post("/api/data/open", json={"path": "../secret.png"}), 400, r"without '\.\.'")
    _error(client.post("/api/data/open", json={}), 422, r"path: Field required")


# -- jobs ------------------------------------------------------------------------------------------


def _events(client, image_id, job_id, timeout=300.0) -> list[dict]:
    out = []
    with client.stream("GET", f"/api/images/{image_id}/jobs/{job_id}/events", timeout=timeout) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        for line in s.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def _wait_state(client, image_id, job_id, states, timeout=300.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        snap = client.get(f"/api/images/{image_id}/jobs/{job_id}").json()
        if snap["state"] in states or time.monotonic() > deadline:
            return snap
        time.sleep(0.1)


def test_a_job_streams_progress_and_writes_its_files(site, images):
    client = site["client"]
    image, mask = images["a"]
    info = _upload(client, image)
    image_id = info["id"]
    client.put(f"/api/images/{image_id}/annotation", json=_annotation(image, mask))
    job = client.post(f"/api/images/{image_id}/jobs", json={"profile": FAST, "seed": 3})
    assert job.status_code == 202, job.text
    job = job.json()
    assert job["state"] == "queued" and job["total"] == 2 and job["seed"] == 3
    events = _events(client, image_id, job["id"])
    states = [e["state"] for e in events]
    assert states[-1] == "done", events[-1]
    assert "running" in states
    steps = [e["step"] for e in events if e["state"] == "running"]
    assert steps == sorted(steps) and events[-1]["step"] == 2
    assert events[-1]["summary"]["steps"] == 2 and events[-1]["summary"]["profile"] == FAST
    base = f"/api/images/{image_id}/jobs/{job['id']}/files"
    mask_png = client.get(f"{base}/mask.png?download=true")
    name = Path(info["name"]).stem
    assert mask_png.headers["content-disposition"] == f'attachment; filename="{name}_mask.png"'
    result = np.asarray(Image.open(io.BytesIO(mask_png.content)))
    assert result.shape == (128, 128) and set(np.unique(result)) <= {0, 255}
    contour = Image.open(io.BytesIO(client.get(f"{base}/contour.png").content))
    assert contour.mode == "RGBA" and contour.size == (128, 128)
    overlay = Image.open(io.BytesIO(client.get(f"{base}/overlay.png").content))
    assert overlay.size[0] == 128 and overlay.size[1] > 128  # the legend strip below
    summary = client.get(f"{base}/summary.json").json()
    assert summary["area_px"] == int((result > 0).sum())
    record = json.loads((site["results"] / image_id / "jobs" / job["id"] / "job.json").read_text())
    assert record["state"] == "done" and record["summary"]["area_px"] == summary["area_px"]
    listed = client.get(f"/api/images/{image_id}").json()["jobs"]
    assert listed[0]["id"] == job["id"] and listed[0]["state"] == "done"
    # The finished job's event stream answers at once with its final state.
    assert [e["state"] for e in _events(client, image_id, job["id"], timeout=10)] == ["done"]


def test_job_requests_are_checked(site, images):
    client = site["client"]
    image, mask = images["b"]
    info = _upload(client, image, "b.png")
    url = f"/api/images/{info['id']}/jobs"
    _error(client.post(url, json={}), 422, r"save an annotation for this image before")
    client.put(f"/api/images/{info['id']}/annotation", json=_annotation(image, mask))
    _error(client.post(url, json={"profile": "huge"}), 400, r"unknown profile 'huge'; known")
    _error(client.post(url, json={"seed": -1}), 422, r"seed: Input should be greater than")
    _error(client.post(url, content=b"[", headers={"Content-Type": "application/json"}), 422, "")
    _alive(client)


def test_queue_cancel_and_a_failing_job_leave_the_server_serving(site, images):
    client = site["client"]
    image, mask = images["a"]
    other, other_mask = images["b"]
    first = _upload(client, image)["id"]
    second = _upload(client, other, "b.png")["id"]
    client.put(f"/api/images/{first}/annotation", json=_annotation(image, mask))
    client.put(f"/api/images/{second}/annotation", json=_annotation(other, other_mask))
    running = client.post(f"/api/images/{first}/jobs", json={"profile": "tiny"}).json()
    queued = client.post(f"/api/images/{second}/jobs", json={"profile": FAST}).json()
    snap = _wait_state(client, first, running["id"], {"running"}, timeout=60)
    assert snap["state"] == "running"
    waiting = client.get(f"/api/images/{second}/jobs/{queued['id']}").json()
    assert waiting["state"] == "queued" and waiting["position"] == 1
    # Break the queued job's input on disk: it must fail with the reason, not crash anything.
    (site["results"] / second / "jobs" / queued["id"] / "annotation.json").write_text("{")
    cancel = client.post(f"/api/images/{first}/jobs/{running['id']}/cancel")
    assert cancel.status_code == 200 and cancel.json()["cancel_requested"] is True
    assert _wait_state(client, first, running["id"], {"cancelled", "done", "failed"})["state"] == (
        "cancelled"
    )
    failed = _wait_state(client, second, queued["id"], {"done", "failed", "cancelled"})
    assert failed["state"] == "failed"
    assert failed["error"].startswith("ValueError:") and "not valid JSON" in failed["error"]
    _alive(client)
    health = client.get("/api/health").json()["jobs"]
    assert health.get("failed", 0) >= 1 and health.get("cancelled", 0) >= 1
    # And the next job runs normally.
    client.put(f"/api/images/{second}/annotation", json=_annotation(other, other_mask))
    again = client.post(f"/api/images/{second}/jobs", json={}).json()
    assert again["profile"] == FAST
    assert _wait_state(client, second, again["id"], {"done", "failed"})["state"] == "done"
    # Cancelling a finished job changes nothing.
    done = client.post(f"/api/images/{second}/jobs/{again['id']}/cancel").json()
    assert done["state"] == "done"


def test_a_job_left_running_by_a_stopped_server_reads_as_failed(site, images, tmp_path):
    client = site["client"]
    image, mask = images["b"]
    image_id = _upload(client, image, "b.png")["id"]
    folder = site["results"] / image_id / "jobs" / "fedcba9876543210"
    folder.mkdir(parents=True)
    record = {"id": "fedcba9876543210", "image_id": image_id, "state": "running", "version": 3}
    (folder / "job.json").write_text(json.dumps(record))
    snap = client.get(f"/api/images/{image_id}/jobs/fedcba9876543210").json()
    assert snap["state"] == "failed" and "stopped before this job finished" in snap["error"]
    assert Path(folder / "job.json").is_file()
