"""`yoho segment-folder`: every annotated image of a folder, a summary CSV, resumable (also
after a kill), DICOM input with its DICOM-SEG, and output files readable by colleagues."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yoho.annotation import save_annotation
from yoho.batch import find_pairs
from yoho.cli import app
from yoho.io import write_png
from yoho.physician import simulate_annotation
from yoho.synthetic import synthetic_endoscopy, write_dicom

runner = CliRunner()


def _folder(root: Path, count: int, without: int = 1) -> tuple[Path, Path]:
    images, annotations = root / "images", root / "annotations"
    annotations.mkdir(parents=True)
    for i in range(count + without):
        image, mask = synthetic_endoscopy(size=80, seed=i)
        write_png(images / f"im{i}.png", image)
        if i < count:
            save_annotation(simulate_annotation(image, mask), annotations / f"im{i}.json")
    return images, annotations


def _rows(path: Path) -> dict[str, dict]:
    with path.open(newline="") as handle:
        return {row["image"]: row for row in csv.DictReader(handle)}


def test_find_pairs(tmp_path):
    images, annotations = _folder(tmp_path, 2)
    (images / "notes.txt").write_text("not an image")
    pairs, missing = find_pairs(images, annotations)
    assert [p.name for p, _ in pairs] == ["im0.png", "im1.png"]
    assert [p.name for p in missing] == ["im2.png"]
    with pytest.raises(FileNotFoundError, match="annotation folder"):
        find_pairs(images, tmp_path / "nope")


def test_segment_folder_writes_every_result_and_resumes(tmp_path):
    images, annotations = _folder(tmp_path, 2)
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        args = ["segment-folder", str(images), "-a", str(annotations), "-o", str(out), "-p", "tiny"]
        res = runner.invoke(app, args)
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert "2 segmented, 0 done before, 0 failed" in res.output
    rows = _rows(out / "summary.csv")
    assert {k: r["status"] for k, r in rows.items()} == {
        "im0.png": "done", "im1.png": "done", "im2.png": "skipped"
    }  # fmt: skip
    assert "no annotation" in rows["im2.png"]["error"]
    for name in ("im0", "im1"):
        folder = out / name
        for file in ("mask.png", "overlay.png", "summary.json", "lesion.geojson",
                     "lesion_labelme.json", "lesion_annotation.json"):  # fmt: skip
            path = folder / file
            assert path.is_file(), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # colleagues can read
        assert not (folder / "model.pt").exists()  # --no-save-model is the folder default
        assert rows[f"{name}.png"]["area_fraction"] != ""
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "0 segmented, 2 done before" in res.output


def test_segment_folder_reports_a_broken_image_and_goes_on(tmp_path):
    images, annotations = _folder(tmp_path, 2, without=0)
    (images / "im0.png").write_bytes(b"not a png")
    res = runner.invoke(
        app, ["segment-folder", str(images), "-a", str(annotations), "-o", str(tmp_path / "o"),
              "-p", "tiny"],
    )  # fmt: skip
    assert res.exit_code == 1
    rows = _rows(tmp_path / "o" / "summary.csv")
    assert (
        rows["im0.png"]["status"] == "failed" and "not a readable image" in rows["im0.png"]["error"]
    )
    assert rows["im1.png"]["status"] == "done"


@pytest.mark.slow
def test_segment_folder_resumes_after_a_kill(tmp_path):
    images, annotations = _folder(tmp_path, 4, without=0)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "yoho.cli", "segment-folder", str(images), "-a",
               str(annotations), "-o", str(out), "-p", "tiny", "--threads", "1"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    finished: list[str] = []
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "summary.csv").is_file():
            finished = [k for k, r in _rows(out / "summary.csv").items() if r["status"] == "done"]
            if finished:
                break
        time.sleep(0.05)
    assert finished, proc.stderr.read().decode() if proc.poll() is not None else "timed out"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = out / Path(finished[0]).stem / "summary.json"
    stamp = first.stat().st_mtime_ns
    rows = _rows(out / "summary.csv")
    done_before = [k for k, r in rows.items() if r["status"] == "done"]
    assert len(done_before) < 4, "the kill came too late to test anything"

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = _rows(out / "summary.csv")
    assert all(rows[k]["status"] == "done before" for k in done_before)
    assert sum(r["status"] == "done" for r in rows.values()) == 4 - len(done_before)
    assert first.stat().st_mtime_ns == stamp  # not recomputed
    assert f"{4 - len(done_before)} segmented, {len(done_before)} done before" in result.stdout


def test_segment_a_dicom_image_writes_a_dicom_seg(tmp_path):
    pytest.importorskip("highdicom")
    image, mask = synthetic_endoscopy(size=80, seed=5)
    write_dicom(tmp_path / "frame.dcm", image)
    save_annotation(simulate_annotation(image, mask), tmp_path / "frame.json")
    out = tmp_path / "out"
    res = runner.invoke(app, ["segment", str(tmp_path / "frame.dcm"), "-a",
                              str(tmp_path / "frame.json"), "-o", str(out), "-p", "tiny",
                              "--no-save-model"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "lesion_seg.dcm" in res.output and (out / "lesion_seg.dcm").is_file()
    png = tmp_path / "frame.png"
    write_png(png, image)
    res = runner.invoke(app, ["segment", str(png), "-a", str(tmp_path / "frame.json"), "-o",
                              str(tmp_path / "out2"), "-p", "tiny", "--no-save-model"])  # fmt: skip
    assert (
        res.exit_code == 0 and "DICOM-SEG not written: the input is not a DICOM file" in res.output
    )


@pytest.mark.slow
def test_segment_folder_on_ray_gives_the_local_masks(tmp_path):
    pytest.importorskip("ray")
    images, annotations = _folder(tmp_path, 2, without=0)
    masks = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        args = ["segment-folder", str(images), "-a", str(annotations), "-o", str(out),
                "-p", "tiny", "--engine", engine, "--threads", "1"]  # fmt: skip
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        rows = _rows(out / "summary.csv")
        assert sorted(rows) == ["im0.png", "im1.png"], rows
        assert all(r["status"] == "done" for r in rows.values()), rows
        masks[engine] = {n: (out / Path(n).stem / "mask.png").read_bytes() for n in rows}
    # One torch thread per image on both engines: the same seed gives the same bits.
    assert masks["ray"] == masks["local"]


def test_a_summary_resaved_in_another_encoding_is_named_not_a_codec_error(tmp_path):
    # A spreadsheet re-saved summary.csv as Latin-1: the rerun said only "'utf-8' codec can't
    # decode byte 0xe9", without the file.
    images, annotations = _folder(tmp_path, 1, without=0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_bytes("image,status\nim0.png,done é\n".encode("latin-1"))
    result = runner.invoke(
        app, ["segment-folder", str(images), "-a", str(annotations), "-o", str(out), "-p", "tiny"]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert f"{out / 'summary.csv'}: not a readable summary" in lines[0]
    assert "save it as UTF-8" in lines[0] and not (out / "im0").exists()


def test_the_summary_says_whether_the_leak_check_fired(tmp_path):
    from dataclasses import replace

    from yoho.batch import SegmentRequest, run_request
    from yoho.profiles import get_profile

    images, annotations = _folder(tmp_path, 1, without=0)
    tiny = get_profile("tiny")
    checked = replace(tiny, name="tiny_checked", post=get_profile("cpu_guided").post)
    rows = {}
    for prof in (tiny, checked):
        out = tmp_path / prof.name
        req = SegmentRequest(images / "im0.png", annotations / "im0.json", out, prof)
        rows[prof.name] = run_request(req)
        assert rows[prof.name]["status"] == "done", rows[prof.name]["error"]
    assert rows["tiny"]["leak_check"] == ""  # no check in this profile
    summary = json.loads((tmp_path / "tiny_checked" / "summary.json").read_text())
    fired = summary["leak_check"]["fired"]
    assert rows["tiny_checked"]["leak_check"] == ("fired" if fired else "no")


def test_the_summary_counts_the_networks_seeds_of_a_one_circle_walk(tmp_path):
    from dataclasses import replace

    from yoho.annotation import load_annotation
    from yoho.batch import SegmentRequest, run_request
    from yoho.profiles import get_profile

    images, annotations = _folder(tmp_path, 1, without=0)
    ann = load_annotation(annotations / "im0.json")
    save_annotation(replace(ann, lesion_circles=ann.lesion_circles[:1]), annotations / "im0.json")
    seeded = replace(
        get_profile("tiny"), name="tiny_seeded", post=get_profile("cpu_shuffled_seeded").post
    )
    req = SegmentRequest(images / "im0.png", annotations / "im0.json", tmp_path / "out", seeded)
    row = run_request(req)
    assert row["status"] == "done", row["error"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["network_lesion_seeds"]["above"] == 0.9
    assert summary["network_seeds"]["below"] == 0.1  # from one circle on in this profile
    assert (
        summary["network_lesion_seeds"]["pixels"] >= 0 and summary["network_seeds"]["pixels"] >= 0
    )
