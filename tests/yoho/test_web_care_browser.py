"""The page at 1366×768 in headless Chromium: the research-use notice, profiles named for
people, the result visible without scrolling, the physician's preview, and deleting an image
(files gone from disk). Writes docs/images/yoho-web-1366x768.png with YOHO_WEB_SCREENSHOT=1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
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
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
WIDTH, HEIGHT = 1366, 768


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=ARGS)  # fmt: skip
        yield chromium
        chromium.close()


def _inside_viewport(page, selector: str) -> dict:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, (selector, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (selector, box)
    return box


def test_page_at_1366x768_result_preview_and_delete(browser, tmp_path):
    image, mask = synthetic_endoscopy(size=320, seed=3)
    path = tmp_path / "patient-frame.png"
    Image.fromarray(image).save(path)
    results = tmp_path / "results"
    settings = WebSettings(results=results, profile="tiny")
    with BackgroundServer(create_app(settings)) as server:
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        assert "Research use only" in page.text_content("[data-testid=notice]")
        _inside_viewport(page, "[data-testid=notice]")
        labels = page.eval_on_selector_all("#profile option", "os => os.map(o => o.textContent)")
        # On this CPU: the preselected (test) profile and the one for people, by its name.
        assert "Fast (≈1 min, CPU)" in labels and not any("GPU" in x for x in labels)

        page.set_input_files("[data-testid=upload-input]", str(path))
        page.wait_for_function("() => location.hash.startsWith('#image=')")
        image_id = page.evaluate("() => location.hash.split('=')[1]")
        ann = simulate_annotation(image, mask).to_dict()
        saved = httpx.put(f"{server.url}/api/images/{image_id}/annotation", json=ann)
        assert saved.status_code == 200, saved.text
        page.reload()
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('saved annotation')"
        )
        page.select_option("[data-testid=profile]", "tiny")
        page.click("[data-testid=segment]")
        page.wait_for_selector("[data-testid=result-panel]:not([hidden])", timeout=180_000)
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('finished')"
        )
        # The result without scrolling: the summary and its downloads lie in the viewport,
        # and neither the page nor the result's panel has been scrolled.
        _inside_viewport(page, "[data-testid=result-summary]")
        _inside_viewport(page, "[data-testid=download-mask]")
        _inside_viewport(page, "[data-testid=download-geojson]")
        href = page.get_attribute("[data-testid=download-geojson]", "href")
        geo = httpx.get(server.url + href)
        assert geo.status_code == 200 and geo.json()["type"] == "FeatureCollection"
        assert "attachment" in geo.headers["content-disposition"]
        _inside_viewport(page, "[data-testid=editor-canvas]")
        assert page.evaluate("() => window.scrollY") == 0
        assert page.evaluate("() => document.querySelector('.panel-right').scrollTop") == 0
        assert page.evaluate("() => document.documentElement.scrollHeight") <= HEIGHT
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot))
        if os.environ.get("YOHO_WEB_SCREENSHOT"):
            shutil.copy(shot, REPO / "docs" / "images" / "yoho-web-1366x768.png")

        # The physician's preview of the annotation.
        page.click("[data-testid=check-annotation]")
        page.wait_for_selector("[data-testid=preview-dialog][open]")
        page.wait_for_function(
            "() => document.getElementById('preview-image').naturalWidth === 320"
        )
        checks = page.eval_on_selector_all("#preview-checks li", "ls => ls.map(l => l.textContent)")
        assert checks and checks[0].startswith("The network is told")
        if os.environ.get("YOHO_WEB_SCREENSHOT"):
            page.screenshot(path=str(REPO / "docs" / "images" / "yoho-web-preview.png"))
        page.click("[data-testid=preview-close]")

        # Delete: refused once (nothing happens), then confirmed; the files leave the disk.
        folder = results / image_id
        assert (folder / "image.png").is_file() and any((folder / "jobs").iterdir())
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("[data-testid=delete-image]")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('Nothing was deleted')"
        )
        assert folder.is_dir()
        messages = []

        def accept(dialog):
            messages.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        page.click("[data-testid=delete-image]")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.startsWith('Deleted')"
        )
        assert "cannot be undone" in messages[0] and "patient-frame" in messages[0]
        assert not folder.exists()
        assert page.evaluate("() => location.hash") == ""
        assert page.is_disabled("[data-testid=delete-image]")
        assert not problems, problems
        page.close()


def test_an_exported_annotation_file_opens_on_the_page_and_saves(browser, tmp_path):
    import json

    image, mask = synthetic_endoscopy(size=160, seed=4)
    path = tmp_path / "frame.png"
    Image.fromarray(image).save(path)
    ann = simulate_annotation(image, mask).to_dict()
    # What `yoho segment` exports as lesion_annotation.json: the annotation plus the contour.
    exported = dict(ann, lesion={"polygons": [[[40, 40], [90, 40], [90, 90]]], "holes": []})
    good = tmp_path / "lesion_annotation.json"
    good.write_text(json.dumps(exported))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(ann, image_size={"width": 99, "height": 99})))
    with BackgroundServer(
        create_app(WebSettings(results=tmp_path / "r", profile="tiny"))
    ) as server:
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.set_input_files("[data-testid=upload-input]", str(path))
        page.wait_for_function("() => location.hash.startsWith('#image=')")
        image_id = page.evaluate("() => location.hash.split('=')[1]")

        page.set_input_files("[data-testid=annotation-input]", str(other))
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('99×99')"
        )
        page.set_input_files("[data-testid=annotation-input]", str(good))
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('Loaded lesion_annotation.json')"
        )
        assert "Unsaved" in page.text_content("[data-testid=save-state]")
        page.click("[data-testid=save]")
        page.wait_for_function(
            "() => document.getElementById('save-state').textContent.includes('Saved')"
        )
        saved = httpx.get(f"{server.url}/api/images/{image_id}/annotation").json()
        assert saved["lesion_circles"] == ann["lesion_circles"]
        assert saved["normal_circles"] == ann["normal_circles"]
        assert len(saved["roi"]["polygons"]) == len(ann["roi"]["polygons"])
        assert not problems, problems
