"""Correction rounds on the page, in headless Chromium with real mouse events (Playwright):
segment, place a correction circle on the result, Refine, see the outline move; Undo round;
a round cancelled.

Set YOHO_WEB_SCREENSHOT=1 to also write the page after the round to
docs/images/yoho-web-refine.png (it always goes to the test's tmp folder).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from yoho.physician import simulate_annotation
from yoho.postprocess import PostOptions
from yoho.profiles import PROFILES, get_profile, register_profile
from yoho.synthetic import synthetic_endoscopy
from yoho.web.app import create_app
from yoho.web.background import BackgroundServer
from yoho.web.settings import WebSettings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZE = 256
# The `tiny` network and schedule with the default profile's use of the clicks at test time
# (circles forced into the mask), so that a correction shows in the outline whatever 12
# training steps made of the image.
PROFILE = "tiny-forced"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(tmp_path):
    register_profile(
        replace(get_profile("tiny"), name=PROFILE, post=PostOptions(force_circles=True)),
        overwrite=True,
    )
    settings = WebSettings(results=tmp_path / "results", profile=PROFILE)
    with BackgroundServer(create_app(settings)) as running:
        yield running
    PROFILES.pop(PROFILE, None)


def _client_point(page, x: float, y: float) -> tuple[float, float]:
    point = page.evaluate("([x, y]) => window.yohoEditor.clientPoint(x, y)", [x, y])
    return point["x"], point["y"]


def _state(page) -> dict:
    return page.evaluate("() => JSON.parse(JSON.stringify(window.yohoEditor.state))")


def _layer_alpha(page, x: int, y: int) -> int:
    """Opacity of the result layer the page shows (contour.png) at an image pixel."""
    return page.evaluate(
        """([x, y]) => {
            const img = window.yohoEditor.result;
            const c = document.createElement("canvas");
            c.width = img.naturalWidth;
            c.height = img.naturalHeight;
            const ctx = c.getContext("2d");
            ctx.drawImage(img, 0, 0);
            return ctx.getImageData(x, y, 1, 1).data[3];
        }""",
        [x, y],
    )


def _mask(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(httpx.get(url).content))) > 0


def _drag_circle(page, x: float, y: float, r: float) -> None:
    page.mouse.move(*_client_point(page, x, y))
    page.mouse.down()
    page.mouse.move(*_client_point(page, x + r, y), steps=5)
    page.mouse.up()


def test_correct_refine_undo_and_cancel_a_round_in_the_browser(browser, server, tmp_path):
    image, truth = synthetic_endoscopy(size=SIZE, seed=3)
    annotation = simulate_annotation(image, truth)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    info = httpx.post(
        f"{server.url}/api/images?filename=endoscopy.png",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/octet-stream"},
    ).json()
    image_id = info["id"]
    saved = httpx.put(f"{server.url}/api/images/{image_id}/annotation", json=annotation.to_dict())
    assert saved.is_success, saved.text

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{server.url}/#image={image_id}")
    page.wait_for_selector("body[data-ready=true]")
    assert "saved annotation" in page.text_content("[data-testid=status]")
    assert page.is_disabled("[data-testid=tool-fix-lesion]")

    # Segment; the result comes with its round (0) and the correction tools.
    page.click("[data-testid=segment]")
    page.wait_for_selector("[data-testid=refine-box][data-round='0']", timeout=400_000)
    job_id = page.get_attribute("[data-testid=editor-canvas]", "data-result")
    files = f"{server.url}/api/images/{image_id}/jobs/{job_id}/files"
    first = _mask(f"{files}/mask.png")
    assert page.is_enabled("[data-testid=tool-fix-lesion]")
    assert page.is_disabled("[data-testid=refine]") and page.is_disabled("[data-testid=undo-round]")

    # Where to correct: lesion the first outline missed, well inside the ROI and away from the
    # outline (the ground truth's lesion if the outline missed some).
    inner = cv2.erode(annotation.roi_mask().astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    away = cv2.dilate(first.astype(np.uint8), np.ones((13, 13), np.uint8)) == 0
    spots = inner & away & truth if (inner & away & truth).any() else inner & away
    ys, xs = np.nonzero(spots)
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    assert _layer_alpha(page, x, y) == 0

    # + Lesion: press at the spot and drag out a radius of 4 px; the annotation is unchanged.
    page.click("[data-testid=tool-fix-lesion]")
    _drag_circle(page, x, y, 4)
    placed = _state(page)["fixLesion"]
    assert len(placed) == 1
    assert placed[0]["x"] == pytest.approx(x, abs=0.6)
    assert placed[0]["y"] == pytest.approx(y, abs=0.6)
    assert placed[0]["r"] == pytest.approx(4, abs=1.0)
    assert page.text_content("[data-testid=save-state]") == "Saved."
    assert "1 new correction(s)" in page.text_content("[data-testid=round-info]")

    # Refine: a few seconds; the outline now takes in the corrected spot.
    start = time.monotonic()
    page.click("[data-testid=refine]")
    page.wait_for_selector("[data-testid=refine-box][data-round='1']", timeout=300_000)
    seconds = time.monotonic() - start
    print(f"\nrefine round in the web tool: {seconds:.1f} s (click to the new outline shown)")
    assert "Round 1 done in" in page.text_content("[data-testid=status]")
    assert _layer_alpha(page, x, y) > 0
    second = _mask(f"{files}/mask.png")
    assert second[y, x] and not first[y, x]
    state = _state(page)
    assert state["fixLesion"] == [] and len(page.evaluate("() => window.yohoEditor.past")) == 1
    assert "Round 1: 1 correction circle(s) applied" in page.text_content(
        "[data-testid=round-info]"
    )
    assert "round 1" in page.text_content("[data-testid=result-summary]")
    assert page.is_enabled("[data-testid=undo-round]")

    shot = tmp_path / "yoho-web-refine.png"
    page.locator("[data-testid=refine-box]").scroll_into_view_if_needed()
    page.mouse.move(5, 5)
    page.screenshot(path=str(shot))
    if os.environ.get("YOHO_WEB_SCREENSHOT"):
        target = REPO / "docs" / "images" / "yoho-web-refine.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)

    # Undo round: the first outline is back, on the page and on disk.
    page.click("[data-testid=undo-round]")
    page.wait_for_selector("[data-testid=refine-box][data-round='0']")
    assert _layer_alpha(page, x, y) == 0
    assert _mask(f"{files}/mask.png").tolist() == first.tolist()
    assert page.evaluate("() => window.yohoEditor.past") == []
    assert page.is_disabled("[data-testid=undo-round]")

    # A round cancelled (Shift+N: a normal-tissue correction): the result stays at round 0,
    # and the correction stays placed for another try.
    page.keyboard.press("Shift+N")
    assert page.evaluate("() => window.yohoEditor.tool") == "fixNormal"
    page.mouse.click(*_client_point(page, x, y))
    assert len(_state(page)["fixNormal"]) == 1
    page.click("[data-testid=refine]")
    page.click("[data-testid=cancel]")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('Refine cancelled')",
        timeout=120_000,
    )
    assert page.get_attribute("[data-testid=refine-box]", "data-round") == "0"
    assert len(_state(page)["fixNormal"]) == 1 and page.is_enabled("[data-testid=refine]")
    assert _mask(f"{files}/mask.png").tolist() == first.tolist()

    # Nothing but this server was contacted, and the page logged no error.
    assert requests and all(url.startswith(server.url + "/") for url in requests), requests
    assert problems == []
    page.close()
