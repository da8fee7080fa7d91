"""The `yoho` command line: sub-commands, resumability, one-line errors with exit code 2."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from yoho.cli import app
from yoho.io import read_mask, write_png
from yoho.synthetic import synthetic_endoscopy

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    image, gt = synthetic_endoscopy(size=112, seed=8)
    write_png(root / "img.png", image)
    write_png(root / "gt.png", gt)
    return root


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_simulate_segment_and_resume(files):
    ann = files / "a.json"
    res = invoke("simulate-annotation", files / "img.png", "--gt", files / "gt.png", "--out", ann)
    assert res.exit_code == 0, res.output
    data = json.loads(ann.read_text())
    assert data["protocol"]["name"] == "oracle" and data["image"] == "img.png"

    out = files / "run"
    args = ("segment", files / "img.png", "--annotation", ann, "--out", out, "--profile", "tiny")
    res = invoke(*args, "--gt", files / "gt.png")
    assert res.exit_code == 0, res.output
    match = re.search(r"Dice (\d\.\d{4})", res.output)
    assert match, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert float(match.group(1)) == pytest.approx(summary["dice"], abs=1e-4)
    assert summary["profile"] == "tiny" and summary["steps"] > 0
    for name in ("mask.png", "overlay.png", "curve.png", "model.pt"):
        assert (out / name).is_file(), name
    mask = read_mask(out / "mask.png")
    assert mask.shape == (112, 112) and summary["area_px"] == int(mask.sum())

    res = invoke(*args, "--gt", files / "gt.png")
    assert res.exit_code == 0 and "already done" in res.output
    res = invoke(*args, "--gt", files / "gt.png", "--seed", "1", "--no-save-model")
    assert res.exit_code == 0 and "already done" not in res.output


def test_render_preview(files):
    ann = files / "p.json"
    assert (
        invoke(
            "simulate-annotation", files / "img.png", "--gt", files / "gt.png", "--out", ann
        ).exit_code
        == 0
    )
    res = invoke(
        "render-preview", files / "img.png", "--annotation", ann, "--out", files / "prev", "-n", "3"
    )
    assert res.exit_code == 0, res.output
    assert (files / "prev" / "render_preview.png").stat().st_size > 1000


def test_import_labelme(files):
    labelme = files / "lm.json"
    labelme.write_text(
        json.dumps(
            {
                "shapes": [
                    {
                        "label": "roi",
                        "points": [[20, 20], [90, 20], [90, 90], [20, 90]],
                        "shape_type": "polygon",
                    }
                ],
                "imagePath": "img.png",
                "imageHeight": 112,
                "imageWidth": 112,
            }
        )
    )
    out = files / "from_labelme.json"
    res = invoke(
        "import-labelme", labelme, "--out", out, "--lesion", "55,55,10", "--normal", "100,100,5"
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["lesion_circles"] == [{"x": 55, "y": 55, "r": 10}]
    res = invoke("import-labelme", labelme, "--out", out, "--lesion", "5,5,3")
    assert res.exit_code == 2 and "must lie inside the ROI" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("segment", "{root}/missing.png", "--annotation", "{root}/a.json", "--out", "{root}/x"),
            "missing.png: image file not found",
        ),
        (
            (
                "segment",
                "{root}/img.png",
                "--annotation",
                "{root}/a.json",
                "--out",
                "{root}/x",
                "--profile",
                "warp",
            ),
            "'warp' is not one of",
        ),
        (
            ("segment", "{root}/img.png", "--annotation", "{root}/nope.json", "--out", "{root}/x"),
            "nope.json: annotation file not found",
        ),
        (
            ("segment", "{root}/small.png", "--annotation", "{root}/a.json", "--out", "{root}/x"),
            "annotation is for a 112x112 image but the image is 64x64",
        ),
        (
            (
                "simulate-annotation",
                "{root}/img.png",
                "--gt",
                "{root}/empty.png",
                "--out",
                "{root}/e.json",
            ),
            "ground-truth mask is empty",
        ),
        (
            ("import-labelme", "{root}/img.png", "--out", "{root}/l.json", "--lesion", "1,2"),
            "not valid JSON",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(files, args, message):
    write_png(files / "small.png", np.zeros((64, 64, 3), np.uint8))
    write_png(files / "empty.png", np.zeros((112, 112), bool))
    if not (files / "a.json").exists():
        invoke(
            "simulate-annotation",
            files / "img.png",
            "--gt",
            files / "gt.png",
            "--out",
            files / "a.json",
        )
    res = invoke(*(a.format(root=files) for a in args))
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_profiles_and_help():
    res = invoke("profiles")
    assert res.exit_code == 0 and "paper" in res.output and "cpu" in res.output
    res = invoke("segment", "--help")
    assert res.exit_code == 0 and "--annotation" in res.output
