"""Declared scales, the dataset registry and label loading (missing images, user files)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tatar.datasets import DATASETS, load_dataset, load_labels
from tatar.evaluate import make_record
from tatar.scales import Scale, clip_prediction, scale_of


def test_scale_mapping_uses_the_declared_scale():
    assert scale_of("KonIQ-10K").to_100(4.17) == pytest.approx(4.17)  # 0-100 scale: stays
    assert scale_of("KADID").to_100(1.0) == 0.0
    assert scale_of("KADID").to_100(5.0) == 100.0
    assert scale_of("FLICKR-AES").to_100(0.627) == pytest.approx(62.7)
    assert scale_of("PARA").to_100(3.0) == 50.0
    assert scale_of("ArtiMuse-10K").to_100(1.0) == 10.0
    assert clip_prediction(5.0) == 5.0  # model answers are only clipped, never rescaled
    assert clip_prediction(104.0) == 100.0


def test_a_model_answer_of_5_stays_5_in_evaluation(tmp_path):
    sample = load_labels(_csv(tmp_path, [("a.png", 3.0)]), task="iqa", scale="1:5").samples[0]
    rec = make_record(sample, ["<answer>5.0</answer>"])
    assert rec["pred"] == 5.0 and rec["gt_100"] == 50.0


def test_registry_has_the_ten_datasets_with_tasks():
    names = {d.name: d.task for d in DATASETS.values()}
    assert names == {
        "KonIQ-10K": "iqa",
        "SPAQ": "iqa",
        "KADID": "iqa",
        "PIPAL": "iqa",
        "CLIVE": "iqa",
        "AVA": "iaa",
        "TAD66K": "iaa",
        "FLICKR-AES": "iaa",
        "ArtiMuse-10K": "iaa",
        "PARA": "iaa",
    }


@pytest.mark.shared_data
def test_benchmark_labels_map_with_declared_scales(shared_data):
    koniq = load_dataset("KonIQ-10K", check_images=False)
    low = min(koniq.samples, key=lambda s: s.gt)
    assert low.gt == pytest.approx(4.167, abs=1e-3) and low.gt_100 == pytest.approx(
        low.gt
    )  # not 79.2
    assert len(koniq.samples) == 2015
    kadid = load_dataset("kadid", check_images=False)
    assert {round(s.gt_100, 6) for s in kadid.samples if s.gt in (1.0, 5.0)} <= {0.0, 100.0}
    flickr = load_dataset("flickr-aes", check_images=False, limit=1)
    assert flickr.samples[0].gt == pytest.approx(0.627154296566)
    assert flickr.samples[0].gt_100 == pytest.approx(62.7154296566)
    assert flickr.task == "iaa"


@pytest.mark.shared_data
def test_clive_and_para_load_with_images(shared_data):
    clive = load_dataset("clive", limit=8)
    para = load_dataset("PARA", limit=8)
    assert len(clive.samples) == len(para.samples) == 8
    assert all(s.image.is_file() for s in clive.samples + para.samples)
    assert clive.task == "iqa" and para.task == "iaa"
    assert para.samples[0].gt_100 == pytest.approx((para.samples[0].gt - 1) / 4 * 100)
    assert clive.total == 146 and para.total == 300


@pytest.mark.shared_data
def test_benchmark_needs_image_root_and_reports_missing_images(shared_data, tmp_path):
    with pytest.raises(ValueError, match="needs --image-root"):
        load_dataset("AVA")
    with pytest.raises(
        FileNotFoundError, match=r"4 of 4 images of KonIQ-10K are missing .*10007357496\.jpg"
    ):
        load_dataset("koniq", image_root=tmp_path, limit=4)
    with pytest.raises(FileNotFoundError, match="all 2015 images of KonIQ-10K are missing"):
        load_dataset("koniq", image_root=tmp_path, limit=4, skip_missing=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "10020766793.jpg")
    d = load_dataset("koniq", image_root=tmp_path, limit=1, skip_missing=True)
    assert [s.id for s in d.samples] == ["10020766793.jpg"]
    assert d.missing == ["10007357496.jpg"]
    with pytest.raises(ValueError, match="IQA dataset"):
        load_dataset("clive", task="iaa")
    with pytest.raises(ValueError, match="declared on 0-100"):
        load_dataset("clive", scale="1:5")


def _csv(tmp_path, rows, header="image,mos"):
    for name, _ in rows:
        Image.new("RGB", (16, 16), (200, 10, 10)).save(tmp_path / name)
    path = tmp_path / "labels.csv"
    path.write_text(header + "\n" + "".join(f"{n},{v}\n" for n, v in rows))
    return path


def test_user_csv_json_jsonl_with_declared_scale(tmp_path):
    path = _csv(tmp_path, [("a.png", 1.0), ("b.png", 5.0), ("c.png", 3.5)])
    d = load_dataset(path, task="iaa", scale="1:5")
    assert [s.gt_100 for s in d.samples] == [0.0, 100.0, 62.5]
    assert d.task == "iaa" and d.name == "labels"
    (tmp_path / "l.json").write_text(json.dumps([{"image": "a.png", "gt_score": 0.25}]))
    assert load_dataset(tmp_path / "l.json", task="iqa", scale="0:1").samples[0].gt_100 == 25.0
    # training-record style JSONL: per-record task and dataset (whose scale is declared)
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"image": "a.png", "gt_score": 2.0, "task": "iqa", "dataset": "kadid"}) + "\n"
    )
    assert load_labels(tmp_path / "t.jsonl").samples[0].gt_100 == 25.0


def test_user_file_errors_name_the_file_and_problem(tmp_path):
    path = _csv(tmp_path, [("a.png", 1.0), ("b.png", 68.7)])
    with pytest.raises(
        ValueError, match=r"labels\.csv: 1 label\(s\) outside the declared scale 1-5"
    ):
        load_dataset(path, task="iqa", scale="1:5")
    with pytest.raises(ValueError, match="no task declared"):
        load_dataset(path, scale="0:100")
    with pytest.raises(ValueError, match="no scale declared"):
        load_dataset(path, task="iqa")
    bad = _csv(tmp_path, [("a.png", 1.0)], header="file,quality")
    with pytest.raises(ValueError, match="no score column"):
        load_dataset(bad, task="iqa", scale="1:5")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_dataset(tmp_path / "broken.json", task="iqa", scale="1:5")
    with pytest.raises(FileNotFoundError, match="neither a known dataset"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="cannot read a scale"):
        Scale.parse("five")
