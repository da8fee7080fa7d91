"""The whole workflow in headless Chromium with real mouse events (Playwright).

Set YOHO_WEB_SCREENSHOT=1 to also write the screenshot of the finished page to
docs/images/yoho-web.png (it always goes to the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from yoho.physician import simulate_annotation
from yoho.synthetic import synthetic_endoscopy
from yoho.web.app import create_app
from yoho.web.background import BackgroundServer
from yoho.web.settings import WebSettings

pytestmark = pytest.mark.browser

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


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(tmp_path):
    data = tmp_path / "data"
    (data / "visit-1").mkdir(parents=True)
    image, _ = synthetic_endoscopy(size=96, seed=1)
    Image.fromarray(image).save(data / "visit-1" / "small.png")
    settings = WebSettings(results=tmp_path / "results", data=data, profile="tiny")
    with BackgroundServer(create_app(settings)) as running:
        yield running


def _client_point(page, x: float, y: float) -> tuple[float, float]:
    point = page.evaluate("([x, y]) => window.yohoEditor.clientPoint(x, y)", [x, y])
    return point["x"], point["y"]


def _state(page) -> dict:
    return page.evaluate("() => JSON.parse(JSON.stringify(window.yohoEditor.state))")


def test_annotate_segment_and_download_in_the_browser(browser, server, tmp_path):
    image, mask = synthetic_endoscopy(size=SIZE, seed=3)
    path = tmp_path / "endoscopy.png"
    Image.fromarray(image).save(path)
    # Where to click: the simulated physician's coarse ROI and its two largest lesion circles.
    plan = simulate_annotation(image, mask)
    polygon = plan.roi.polygons[0]
    circles = plan.lesion_circles[:2]

    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("[data-testid=upload-input]", str(path))
    page.wait_for_function("() => document.getElementById('status').textContent.includes('Opened')")
    assert "256×256" in page.text_content("[data-testid=image-name]")

    # ROI: click the vertices, then the first vertex again to close the polygon.
    page.click("[data-testid=tool-roi]")
    for x, y in polygon:
        page.mouse.click(*_client_point(page, x, y))
    assert len(_state(page)["draft"]) == len(polygon)
    page.mouse.click(*_client_point(page, *polygon[0]))
    state = _state(page)
    assert state["draft"] is None and len(state["polygons"]) == 1
    # Drag the first vertex 6 px to the left and back: vertices can be edited.
    x0, y0 = polygon[0]
    page.mouse.move(*_client_point(page, x0, y0))
    page.mouse.down()
    page.mouse.move(*_client_point(page, x0 - 6, y0), steps=4)
    page.mouse.up()
    assert _state(page)["polygons"][0][0][0] == pytest.approx(x0 - 6, abs=0.6)
    page.keyboard.press("Control+z")
    assert _state(page)["polygons"][0][0][0] == pytest.approx(x0, abs=0.6)

    # Two lesion circles: press at the centre, drag out to the radius.
    page.keyboard.press("l")
    for c in circles:
        page.mouse.move(*_client_point(page, c.x, c.y))
        page.mouse.down()
        page.mouse.move(*_client_point(page, c.x + c.r, c.y), steps=5)
        page.mouse.up()
    state = _state(page)
    assert len(state["lesion"]) == 2
    # Wheel over the second circle: two notches up = radius + 2 px.
    before = state["lesion"][1]["r"]
    page.mouse.move(*_client_point(page, circles[1].x, circles[1].y))
    page.mouse.wheel(0, -100)
    page.mouse.wheel(0, -100)
    page.wait_for_function(f"() => window.yohoEditor.state.lesion[1].r === {before + 2}")
    page.keyboard.press("Control+z")  # one undo step for the whole wheel burst
    assert _state(page)["lesion"][1]["r"] == pytest.approx(before)
    # A third circle, deleted again with the Delete key; undo/redo buttons.
    page.mouse.click(*_client_point(page, 12, 12))
    assert len(_state(page)["lesion"]) == 3
    page.keyboard.press("Delete")
    assert len(_state(page)["lesion"]) == 2
    page.click("[data-testid=undo]")
    assert len(_state(page)["lesion"]) == 3
    page.click("[data-testid=redo]")
    assert len(_state(page)["lesion"]) == 2

    # Save, and check what the server stored against what was drawn.
    page.click("[data-testid=save]")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('saved')")
    image_id = page.evaluate("() => location.hash.split('=')[1]")
    saved = httpx.get(f"{server.url}/api/images/{image_id}/annotation").json()
    drawn = np.array(saved["roi"]["polygons"][0])
    np.testing.assert_allclose(drawn, polygon, atol=0.6)
    for got, want in zip(saved["lesion_circles"], circles, strict=True):
        assert got["x"] == pytest.approx(want.x, abs=0.6)
        assert got["y"] == pytest.approx(want.y, abs=0.6)
        assert got["r"] == pytest.approx(want.r, abs=1.0)
    assert saved["complement"] is False

    # Segment with the tiny profile and wait for the result overlay.
    page.select_option("[data-testid=profile]", "tiny")
    page.click("[data-testid=segment]")
    page.wait_for_selector("[data-testid=cancel]:enabled", timeout=10_000)
    page.wait_for_selector("[data-testid=result-panel]", state="visible", timeout=400_000)
    assert page.get_attribute("[data-testid=editor-canvas]", "data-result")
    assert "Lesion:" in page.text_content("[data-testid=result-summary]")
    assert page.evaluate("() => document.getElementById('progress').value") == 12
    page.locator("[data-testid=opacity]").scroll_into_view_if_needed()
    slider = page.locator("[data-testid=opacity]").bounding_box()
    page.mouse.click(slider["x"] + 0.7 * slider["width"], slider["y"] + slider["height"] / 2)
    assert 0.6 < page.evaluate("() => window.yohoEditor.resultOpacity") < 0.8

    # Download the mask: a PNG of the image's size.
    with page.expect_download() as download:
        page.click("[data-testid=download-mask]")
    mask_path = tmp_path / download.value.suggested_filename
    download.value.save_as(mask_path)
    assert mask_path.name == "endoscopy_mask.png"
    with Image.open(mask_path) as png:
        assert png.format == "PNG" and png.size == (SIZE, SIZE)
        values = set(np.unique(np.asarray(png)))
    assert values <= {0, 255}

    shot = tmp_path / "yoho-web.png"
    page.evaluate("() => { document.querySelector('.panel').scrollTop = 0; }")
    page.screenshot(path=str(shot))
    if os.environ.get("YOHO_WEB_SCREENSHOT"):
        target = REPO / "docs" / "images" / "yoho-web.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    with Image.open(shot) as picture:
        assert picture.size == (1280, 900)

    # Reloading the page reopens the image with its saved annotation and last result.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("[data-testid=result-panel]", state="visible")
    assert len(_state(page)["lesion"]) == 2
    assert "saved annotation" in page.text_content("[data-testid=status]")

    # Nothing but this server was contacted, and the page logged no error.
    assert requests and all(url.startswith(server.url + "/") for url in requests), requests
    assert problems == []
    page.close()


def test_refusals_show_in_the_status_line(browser, server, tmp_path):
    text = tmp_path / "notes.png"
    text.write_bytes(b"this is not a picture\n" * 10)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("[data-testid=upload-input]", str(text))
    page.wait_for_function("() => document.getElementById('status').dataset.kind === 'error'")
    assert "notes.png: not an image" in page.text_content("[data-testid=status]")
    # An image of the --data folder, then Save before the ROI is closed: the page explains
    # what is missing.
    page.select_option("[data-testid=data-select]", "visit-1/small.png")
    page.click("[data-testid=data-open]")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('Opened')")
    assert "small.png — 96×96 px" in page.text_content("[data-testid=image-name]")
    for x, y in [(20, 20), (70, 20), (70, 70)]:
        page.mouse.click(*_client_point(page, x, y))
    page.keyboard.press("Control+s")
    status = page.text_content("[data-testid=status]")
    assert "close the ROI polygon" in status and "place at least one lesion circle" in status
    page.keyboard.press("Enter")  # closes the ROI
    page.check("[data-testid=complement]")
    assert _state(page)["complement"] is True
    page.keyboard.press("Control+z")
    assert _state(page)["complement"] is False
    assert not page.is_checked("[data-testid=complement]")
    page.keyboard.press("l")
    page.mouse.click(*_client_point(page, 45, 35))
    page.click("[data-testid=save]")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('saved')")
    # Segment, then Cancel: the job stops and the page says so.
    page.click("[data-testid=segment]")
    page.click("[data-testid=cancel]")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('Segmentation cancelled')",
        timeout=120_000,
    )
    assert page.is_disabled("[data-testid=cancel]") and page.is_enabled("[data-testid=segment]")
    assert page.is_hidden("[data-testid=result-panel]")
    page.close()


def test_a_roi_drawn_as_a_star_is_shaded_as_the_server_fills_it(browser, server):
    # The editor filled the ROI even-odd, so the middle of a star (a lasso that crosses itself)
    # looked left out; the server fills all the outline encloses, and the shading says so.
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.select_option("[data-testid=data-select]", "visit-1/small.png")
    page.click("[data-testid=data-open]")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('Opened')")
    angles = np.pi / 2 + np.arange(5) * 4 * np.pi / 5
    star = [(48 + 40 * np.cos(a), 48 - 40 * np.sin(a)) for a in angles]
    for x, y in star:
        page.mouse.click(*_client_point(page, x, y))
    page.keyboard.press("Enter")
    assert len(_state(page)["polygons"]) == 1

    def shading(x: float, y: float) -> float:
        """The share of the ROI's blue tint at image point (x, y): 0 bare, 0.13 shaded."""
        cx, cy = _client_point(page, x, y)
        bare, shaded = page.evaluate(
            """([cx, cy]) => {
                const ed = window.yohoEditor, r = ed.canvas.getBoundingClientRect();
                const dpr = window.devicePixelRatio || 1;
                const at = () => ed.ctx.getImageData(Math.round((cx - r.left) * dpr),
                                                     Math.round((cy - r.top) * dpr), 1, 1).data[2];
                const polygons = ed.state.polygons;
                ed.state.polygons = [];
                ed.draw();
                const bare = at();
                ed.state.polygons = polygons;
                ed.draw();
                return [bare, at()];
            }""",
            [cx, cy],
        )
        return (shaded - bare) / max(255 - bare, 1)

    centre, arm = shading(48, 48), shading(48, 14)
    assert centre == pytest.approx(0.13, abs=0.03) and arm == pytest.approx(0.13, abs=0.03)
    assert shading(5, 90) == pytest.approx(0, abs=0.02)
    page.close()
