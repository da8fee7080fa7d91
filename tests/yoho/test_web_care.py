"""The web tool's care for patient data and for the clinician: profiles offered by hardware
and named for people, deleting an image with everything derived from it (files gone from
disk, running jobs stopped), and the physician's preview of the annotation."""

from __future__ import annotations

import io
import time
from dataclasses import replace

import httpx
import numpy as np
import pytest
from PIL import Image

from yoho.annotation import Annotation, Circle, Roi
from yoho.physician import simulate_annotation
from yoho.preview import annotation_checks, physician_preview, taught_regions
from yoho.profiles import PROFILES, Phase, get_profile, register_profile
from yoho.synthetic import synthetic_endoscopy
from yoho.web.app import create_app
from yoho.web.background import BackgroundServer
from yoho.web.care import offered_profiles
from yoho.web.settings import WebSettings

SLOW = "web-care-slow"  # long enough to be deleted while it runs


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def slow_profile():
    tiny = get_profile("tiny")
    register_profile(replace(tiny, name=SLOW, phases=(Phase(400, 3e-3),)), overwrite=True)
    yield SLOW
    PROFILES.pop(SLOW, None)


@pytest.fixture
def site(tmp_path, slow_profile):
    settings = WebSettings(results=tmp_path / "results", profile="tiny")
    with (
        BackgroundServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        yield client, tmp_path / "results"


def _upload_annotated(client, seed=3):
    image, mask = synthetic_endoscopy(size=96, seed=seed)
    info = client.post(
        "/api/images?filename=patient.png",
        content=_png(image),
        headers={"Content-Type": "image/png"},
    ).json()
    ann = simulate_annotation(image, mask).to_dict()
    assert client.put(f"/api/images/{info['id']}/annotation", json=ann).status_code == 200
    return info["id"], image


def test_profiles_offered_for_the_hardware_and_named_for_people(tmp_path):
    plain = WebSettings(results=tmp_path)
    cpu = offered_profiles(plain, "cpu")
    assert [p["name"] for p in cpu] == ["cpu_guided"]
    assert cpu[0]["label"] == "Fast (≈1 min, CPU)"
    gpu = [p["name"] for p in offered_profiles(plain, "cuda")]
    assert gpu == ["cpu_guided", "paper"]
    assert offered_profiles(plain, "cuda")[1]["label"] == "Published schedule (GPU)"
    expert = [p["name"] for p in offered_profiles(replace(plain, expert=True), "cpu")]
    assert {"cpu_fused", "cpu_calibrated", "paper", "cpu", "cpu_tuned", "tiny"} <= set(expert)
    assert "cpu_guided" in expert
    # The profile the server was started with is always there, first.
    assert offered_profiles(replace(plain, profile="tiny"), "cpu")[0]["name"] == "tiny"


def test_delete_removes_the_image_and_everything_derived(site):
    client, results = site
    image_id, _ = _upload_annotated(client)
    job = client.post(f"/api/images/{image_id}/jobs", json={"profile": "tiny"}).json()
    deadline = time.monotonic() + 120
    while client.get(f"/api/images/{image_id}/jobs/{job['id']}").json()["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    folder = results / image_id
    assert (folder / "jobs" / job["id"] / "lesion.geojson").is_file()
    geo = client.get(f"/api/images/{image_id}/jobs/{job['id']}/files/lesion.geojson")
    assert geo.status_code == 200 and geo.json()["type"] == "FeatureCollection"

    answer = client.delete(f"/api/images/{image_id}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["deleted"] == image_id and answer.json()["files"] >= 8
    assert not folder.exists()
    assert [p.name for p in results.iterdir() if not p.name.startswith(".yoho")] == []
    assert client.get(f"/api/images/{image_id}").status_code == 404
    assert client.get("/api/images").json()["images"] == []
    assert client.delete(f"/api/images/{image_id}").status_code == 404
    assert client.delete("/api/images/..%2f..%2fetc").status_code in (400, 404)
    # Cross-site deletes are refused like every other change.
    other = client.delete(f"/api/images/{image_id}", headers={"Origin": "http://evil.example"})
    assert other.status_code == 403


def test_delete_stops_a_running_job_and_leaves_nothing(site):
    client, results = site
    image_id, _ = _upload_annotated(client, seed=4)
    job = client.post(f"/api/images/{image_id}/jobs", json={"profile": SLOW}).json()
    deadline = time.monotonic() + 120
    while client.get(f"/api/images/{image_id}/jobs/{job['id']}").json()["step"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answer = client.delete(f"/api/images/{image_id}").json()
    assert answer["jobs_cancelled"] == 1
    time.sleep(0.5)  # nothing re-creates the folder afterwards
    assert not (results / image_id).exists()
    assert not [p for p in results.iterdir() if p.name.startswith(".deleting")]
    assert client.get("/api/health").json()["ok"] is True


def test_preview_endpoints(site):
    client, _ = site
    image_id, image = _upload_annotated(client)
    png = client.get(f"/api/images/{image_id}/preview.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(png.content)))
    assert picture.shape[1] == image.shape[1] and picture.shape[0] > image.shape[0]
    checks = client.get(f"/api/images/{image_id}/preview").json()["checks"]
    assert checks[0].startswith("The network is told")
    other = client.post(
        "/api/images?filename=b.png",
        content=_png(synthetic_endoscopy(size=64, seed=9)[0]),
        headers={"Content-Type": "image/png"},
    ).json()
    missing = client.get(f"/api/images/{other['id']}/preview")
    assert missing.status_code == 404 and "no saved annotation" in missing.json()["error"]


def test_taught_regions_follow_the_renderer(synthetic, synthetic_annotation):
    image, mask = synthetic
    regions = taught_regions(image, synthetic_annotation)
    assert not (regions.lesion & regions.normal).any()
    assert not (regions.lesion & regions.unknown).any()
    total = regions.lesion | regions.normal | regions.unknown
    assert total.all()
    roi = synthetic_annotation.roi_mask()
    assert regions.normal[~roi].all()  # outside the ROI: normal
    c = synthetic_annotation.lesion_circles[0]
    assert regions.lesion[int(c.y), int(c.x)]
    picture, checks = physician_preview(image, synthetic_annotation)
    assert picture.shape[0] > image.shape[0] and checks


def test_complement_and_weak_annotations_are_explained():
    image = np.full((100, 100, 3), 120, np.uint8)
    square = np.array([[10, 10], [90, 10], [90, 90], [10, 90]], float)
    weak = Annotation(100, 100, Roi(polygons=[square]), lesion_circles=[Circle(50, 50, 2)])
    notes = annotation_checks(image, weak)
    assert any("1 lesion circle" in n for n in notes)
    assert any("no normal-tissue circle" in n for n in notes)
    assert any("covers 66% of the image" in n for n in notes)
    comp = Annotation(
        100, 100, Roi(polygons=[square]), lesion_circles=[Circle(5, 5, 3)],
        normal_circles=[Circle(50, 50, 10)], complement=True,
    )  # fmt: skip
    regions = taught_regions(image, comp)
    assert regions.lesion[2, 2] and regions.normal[50, 50] and regions.unknown[30, 30]
    assert any("complement is on" in n for n in annotation_checks(image, comp))


def test_render_preview_simple_cli(tmp_path, synthetic, synthetic_annotation):
    from typer.testing import CliRunner

    from yoho.annotation import save_annotation
    from yoho.cli import app
    from yoho.io import read_image, write_png

    image, _ = synthetic
    write_png(tmp_path / "img.png", image)
    save_annotation(synthetic_annotation, tmp_path / "img.json")
    res = CliRunner().invoke(
        app,
        ["render-preview", str(tmp_path / "img.png"), "-a", str(tmp_path / "img.json"), "-o",
         str(tmp_path / "p"), "--simple"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "The network is told" in res.output and "preview.png" in res.output
    picture = read_image(tmp_path / "p" / "preview.png")
    assert picture.shape[1] == image.shape[1]
    assert not (tmp_path / "p" / "render_preview.png").exists()
