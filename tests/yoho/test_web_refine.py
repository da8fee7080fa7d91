"""Correction rounds in the web API: refine a finished result, undo rounds, history on disk,
cancel, and every refusal (a one-line 4xx naming the problem)."""

from __future__ import annotations

import io
import json
import math
import re
import time
from dataclasses import replace

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from yoho.physician import simulate_annotation
from yoho.postprocess import PostOptions
from yoho.profiles import PROFILES, Phase, RefineOptions, get_profile, register_profile
from yoho.synthetic import synthetic_endoscopy
from yoho.web.app import create_app
from yoho.web.background import BackgroundServer
from yoho.web.settings import WebSettings

FAST = "web-refine-test"  # two training steps, two refine steps; circles forced into the mask


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tiny = get_profile("tiny")
    register_profile(
        replace(
            tiny,
            name=FAST,
            steps_per_epoch=2,
            phases=(Phase(1, 3e-3),),
            dataset_length=8,
            post=PostOptions(force_circles=True),
            refine=RefineOptions(steps=2),
        ),
        overwrite=True,
    )
    root = tmp_path_factory.mktemp("web-refine")
    settings = WebSettings(results=root / "results", profile=FAST)
    with BackgroundServer(create_app(settings)) as server:
        client = httpx.Client(base_url=server.url, timeout=60)
        yield {"client": client, "results": root / "results"}
        client.close()
    PROFILES.pop(FAST, None)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def _wait(client, image_id, job_id, timeout=300.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        snap = client.get(f"/api/images/{image_id}/jobs/{job_id}").json()
        if snap["state"] in {"done", "failed", "cancelled"} or time.monotonic() > deadline:
            return snap
        time.sleep(0.1)


def _error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"]
    assert re.search(pattern, body["error"]), body["error"]


def _mask(client, base) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(client.get(f"{base}/files/mask.png").content))) > 0


@pytest.fixture(scope="module")
def result(site):
    """A finished segmentation of a synthetic image: ids, folder, annotation, first mask."""
    client = site["client"]
    image, truth = synthetic_endoscopy(size=128, seed=3)
    annotation = simulate_annotation(image, truth)
    info = client.post(
        "/api/images?filename=a.png",
        content=_png(image),
        headers={"Content-Type": "application/octet-stream"},
    ).json()
    image_id = info["id"]
    assert client.put(f"/api/images/{image_id}/annotation", json=annotation.to_dict()).is_success
    job = client.post(f"/api/images/{image_id}/jobs", json={}).json()
    assert _wait(client, image_id, job["id"])["state"] == "done"
    base = f"/api/images/{image_id}/jobs/{job['id']}"
    return {
        "image_id": image_id,
        "job_id": job["id"],
        "base": base,
        "folder": site["results"] / image_id / "jobs" / job["id"],
        "roi": annotation.roi_mask(),
        "first": _mask(client, base),
    }


def _spot(where: np.ndarray, away_from: tuple[float, float] | None = None) -> tuple[int, int]:
    """A pixel of `where` (the one farthest from `away_from`, else the middle one)."""
    ys, xs = np.nonzero(where)
    assert len(xs), "no pixel to click"
    if away_from is None:
        k = len(xs) // 2
    else:
        k = int(np.argmax((xs - away_from[0]) ** 2 + (ys - away_from[1]) ** 2))
    return int(xs[k]), int(ys[k])


@pytest.mark.slow
def test_rounds_refine_undo_and_keep_their_history(site, result):
    client, base, folder = site["client"], result["base"], result["folder"]
    first = result["first"]
    assert (folder / "model.pt").is_file()
    rounds = client.get(f"{base}/rounds").json()
    assert rounds["round"] == 0 and rounds["can_undo"] is False and rounds["refinable"] is True
    assert rounds["summary"]["round"] == 0 and rounds["refine"] is None

    # Round 1: a lesion circle inside the ROI where the first mask has no lesion.
    # Away from the border, so that a disc of radius 3 lies inside the ROI.
    inner = cv2.erode(result["roi"].astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    x, y = _spot(inner & ~first)
    job = client.post(f"{base}/refine", json={"lesion_circles": [{"x": x, "y": y, "r": 3}]})
    assert job.status_code == 202, job.text
    job = job.json()
    assert job["kind"] == "refine" and job["target"] == result["job_id"] and job["round"] == 1
    assert job["total"] == 2 and job["state"] == "queued"
    events = []
    url = f"/api/images/{result['image_id']}/jobs/{job['id']}/events"
    with client.stream("GET", url, timeout=300) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["state"] == "done", events[-1]
    assert [e["step"] for e in events if e["state"] == "running"][-1] == 2
    summary = events[-1]["summary"]
    assert summary["round"] == 1 and summary["previous_round"] == 0 and summary["clicks"] >= 1
    second = _mask(client, base)
    assert second[y, x] and not first[y, x]  # the outline moved to take in the correction
    rounds = client.get(f"{base}/rounds").json()
    assert rounds["round"] == 1 and rounds["history"] == [0] and rounds["can_undo"] is True
    assert rounds["corrections"][0]["lesion_circles"] == [{"x": x, "y": y, "r": 3}]
    assert client.get(f"{base}/files/summary.json").json()["round"] == 1
    # The first round is kept, the web files included; the refine job is no result of its own.
    kept = folder / "history" / "round_00"
    assert (np.asarray(Image.open(kept / "mask.png")) > 0).tolist() == first.tolist()
    assert (kept / "contour.png").is_file() and (kept / "model.pt").is_file()
    assert not (folder / ".refine").exists()
    assert json.loads((folder / "refine.json").read_text())["state"] == "done"
    listed = client.get(f"/api/images/{result['image_id']}/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [result["job_id"]]
    annotation = client.get(f"{base}/files/annotation.json").json()
    assert annotation["version"] == 2 and len(annotation["rounds"]) == 1

    # Round 2: another lesion circle far from the first, and a normal circle outside the ROI.
    lx, ly = _spot(inner & ~second, away_from=(x, y))
    nx, ny = _spot(cv2.erode((~result["roi"]).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    job = client.post(
        f"{base}/refine",
        json={
            "lesion_circles": [{"x": lx, "y": ly, "r": 2}],
            "normal_circles": [{"x": nx, "y": ny, "r": 2}],
        },
    )
    assert job.status_code == 202, job.text
    snap = _wait(client, result["image_id"], job.json()["id"])
    assert snap["state"] == "done", snap
    third = _mask(client, base)
    assert third[ly, lx] and third[y, x] and not third[ny, nx]
    contour_2 = client.get(f"{base}/files/contour.png").content
    assert client.get(f"{base}/rounds").json()["history"] == [0, 1]

    # Undo twice: back to round 1, then to the first segmentation; then nothing to undo.
    back = client.post(f"{base}/undo")
    assert back.status_code == 200 and back.json()["round"] == 1
    assert _mask(client, base).tolist() == second.tolist()
    assert client.get(f"{base}/files/contour.png").content != contour_2
    assert client.post(f"{base}/undo").json()["round"] == 0
    assert _mask(client, base).tolist() == first.tolist()
    rounds = client.get(f"{base}/rounds").json()
    assert rounds["history"] == [] and rounds["corrections"] == [] and rounds["can_undo"] is False
    _error(client.post(f"{base}/undo"), 409, r"nothing to undo: job \w+ is at its first")


@pytest.mark.slow
def test_a_round_can_be_cancelled_and_leaves_the_result_as_it_was(site, result):
    client, base, folder = site["client"], result["base"], result["folder"]
    before = client.get(f"{base}/rounds").json()
    mask = _mask(client, base)
    x, y = _spot(mask)
    job = client.post(f"{base}/refine", json={"normal_circles": [{"x": x, "y": y, "r": 2}]})
    assert job.status_code == 202, job.text
    job = job.json()
    # One round at a time, and no undo under it.
    again = client.post(f"{base}/refine", json={"normal_circles": [{"x": x, "y": y, "r": 2}]})
    _error(
        again, 409, rf"cannot refine: round {before['round'] + 1} of job \w+ is (queued|running)"
    )
    _error(client.post(f"{base}/undo"), 409, r"cannot undo: round \d+ of job \w+ is")
    assert client.get(f"{base}/rounds").json()["refine"]["id"] == job["id"]
    cancel = client.post(f"/api/images/{result['image_id']}/jobs/{job['id']}/cancel")
    assert cancel.status_code == 200 and cancel.json()["cancel_requested"] is True
    assert _wait(client, result["image_id"], job["id"])["state"] == "cancelled"
    after = client.get(f"{base}/rounds").json()
    assert after["round"] == before["round"] and after["refine"] is None
    assert _mask(client, base).tolist() == mask.tolist()
    assert not (folder / ".refine").exists()


def test_refine_requests_are_checked(site, result):
    client, base = site["client"], result["base"]
    refine = f"{base}/refine"
    _error(client.post(refine, json={}), 422, r"needs at least one lesion or normal circle")
    off = {"lesion_circles": [{"x": 126, "y": 60, "r": 9}]}
    _error(
        client.post(refine, json=off),
        422,
        r"^correction: lesion_circles\[0\] \(x=126, y=60, r=9\): the circle lies \(partly\) "
        r"outside the 128x128 image$",
    )
    ox, oy = _spot(cv2.erode((~result["roi"]).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    outside = {"lesion_circles": [{"x": ox, "y": oy, "r": 1}]}
    _error(client.post(refine, json=outside), 422, r"lesion_circles\[0\].*inside the ROI")
    _error(
        client.post(refine, json={"normal_circles": [{"x": 5, "y": 5, "r": 0}]}),
        422,
        r"normal_circles\.0\.r: Input should be greater than 0",
    )
    nan = json.dumps({"lesion_circles": [{"x": math.nan, "y": 5, "r": 2}]})
    _error(
        client.post(refine, content=nan, headers={"Content-Type": "application/json"}),
        422,
        r"lesion_circles\.0\.x: Input should be a finite number",
    )
    many = {"normal_circles": [{"x": 5, "y": 5, "r": 2}] * 51}
    _error(client.post(refine, json=many), 422, r"normal_circles: List should have at most 50")
    _error(client.post(refine, json={"lesion_circles": "x"}), 422, r"lesion_circles: ")
    image_id = result["image_id"]
    missing = f"/api/images/{image_id}/jobs/0123456789abcdef"
    _error(client.post(f"{missing}/refine", json=off), 404, r"has no job 0123456789abcdef")
    _error(client.get(f"{missing}/rounds"), 404, r"has no job")
    _error(client.post(f"{missing}/undo"), 404, r"has no job")
    _error(client.post(f"/api/images/{image_id}/jobs/..%2f..%2fx/refine", json=off), 404, "")
    # A result made before correction rounds existed (no model.pt), and one not finished.
    for state, pattern in [("done", r"kept no network .* segment again"), ("running", "")]:
        job_id = "fedcba98765432" + ("10" if state == "done" else "11")
        old = site["results"] / image_id / "jobs" / job_id
        old.mkdir(parents=True)
        record = {"id": job_id, "image_id": image_id, "state": state, "profile": FAST}
        (old / "job.json").write_text(json.dumps(record))
        ok = {"normal_circles": [{"x": 5, "y": 5, "r": 2}]}
        response = client.post(f"/api/images/{image_id}/jobs/{job_id}/refine", json=ok)
        # A record left "running" by a stopped server reads as failed.
        _error(response, 409, pattern or r"is failed; only a finished result can be refined")
    assert client.get("/api/health").json()["ok"] is True
