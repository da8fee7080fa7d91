"""`yoho simulate-annotation` + `yoho segment` on a real Kvasir-SEG image (shared data)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from yoho.cli import app

pytestmark = pytest.mark.shared_data


def test_segment_a_kvasir_image_with_a_simulated_annotation(shared_data, tmp_path):
    images = sorted((shared_data / "seg" / "kvasir_seg_sample" / "images").glob("*.jpg"))
    assert images, "kvasir_seg_sample has no image"
    image = images[0]
    mask = image.parent.parent / "masks" / image.name
    runner = CliRunner()
    ann = tmp_path / "a.json"
    res = runner.invoke(
        app, ["simulate-annotation", str(image), "--gt", str(mask), "--out", str(ann)]
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        ["segment", str(image), "-a", str(ann), "-o", str(out), "-p", "tiny", "--gt", str(mask)],
    )
    assert res.exit_code == 0, res.output
    dice = float(re.search(r"Dice (\d\.\d{4})", res.output).group(1))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["image_size"] == {"width": 622, "height": 529}
    assert dice == pytest.approx(summary["dice"], abs=1e-4)
    # Even the few-second profile, with the ROI clip, finds most of this polyp.
    assert dice > 0.5
