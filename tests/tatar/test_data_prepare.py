"""`tatar data prepare`: each reader on a tiny fixture in its dataset's official layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tatar.cli import app
from tatar.data.prepare import prepare


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def _records(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def no_shared_benchmarks(tmp_path, monkeypatch):
    # benchmark-list splits are tested explicitly; elsewhere the shared data must not matter
    monkeypatch.setenv("SHARED_DATA", str(tmp_path / "no-shared-data"))


def test_koniq_official_split_and_missing_images_reported(tmp_path):
    root = tmp_path / "koniq"
    root.mkdir()
    head = '"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"\n'
    rows = [("1.jpg", 3.2, 55.1), ("2.jpg", 4.1, 80.0), ("3.jpg", 1.5, 10.2)]
    (root / "koniq10k_scores_and_distributions.csv").write_text(
        head + "".join(f'"{n}",0,1,2,1,0,4,{m},0.5,{z}\n' for n, m, z in rows)
    )
    (root / "koniq10k_distributions_sets.csv").write_text(
        "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set\n"
        "1.jpg,0,1,2,1,0,4,3.2,0.5,training\n2.jpg,0,1,2,1,0,4,4.1,0.5,validation\n"
        "3.jpg,0,1,2,1,0,4,1.5,0.5,test\n"
    )
    _img(root / "1024x768" / "1.jpg")
    _img(root / "1024x768" / "2.jpg")  # 3.jpg is missing
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["data", "prepare", "KonIQ-10k", "--root", str(root), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "split: official" in result.output
    assert "1 of 3 images are missing" in result.output and "1024x768/3.jpg" in result.output
    train = _records(out / "koniq_train.jsonl")
    assert train == [
        {
            "id": "koniq:1024x768/1.jpg",
            "task": "iqa",
            "image": "1024x768/1.jpg",
            "gt_score": 55.1,
            "dataset": "KonIQ-10K",
            "split": "train",
            "mos_1_5": 3.2,
        }
    ]
    assert [r["image"] for r in _records(out / "koniq_test.jsonl")] == ["1024x768/3.jpg"]
    assert (out / "koniq_val.jsonl").is_file()
    assert (out / "koniq_missing.txt").read_text() == "1024x768/3.jpg\n"
    # the records are what the training config and the rationale step read
    from tatar.rationales.records import load_items

    items = load_items(out / "koniq_train.jsonl", image_root=root)
    assert items[0].target == 55.1 and items[0].image_path == root / "1024x768" / "1.jpg"


def test_spaq_csv(tmp_path):
    root = tmp_path / "spaq"
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "MOS and Image attribute scores.csv").write_text(
        "Image name,MOS,Brightness,Colorfulness,Contrast,Noisiness,Sharpness\n"
        "00001.png,42.5,50,50,50,50,50\n00002.png,71.0,50,50,50,50,50\n"
    )
    s = prepare("spaq", root, tmp_path / "out")
    assert s["split_rule"].startswith("none") and s["missing_images"] == 2
    recs = _records(tmp_path / "out" / "spaq_all.jsonl")
    assert [(r["image"], r["gt_score"]) for r in recs] == [
        ("TestImage/00001.png", 42.5),
        ("TestImage/00002.png", 71.0),
    ]


def test_kadid_dmos(tmp_path):
    root = tmp_path / "kadid10k"
    root.mkdir()
    (root / "dmos.csv").write_text(
        "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.496\nI01_01_02.png,I01.png,4.33,0.869\n"
    )
    prepare("KADID-10k", root, tmp_path / "out")
    recs = _records(tmp_path / "out" / "kadid_all.jsonl")
    assert recs[0]["image"] == "images/I01_01_01.png" and recs[0]["gt_score"] == 4.57
    assert recs[0]["reference"] == "I01.png" and recs[0]["dataset"] == "KADID"


def test_pipal_elo_labels_with_their_declared_range(tmp_path):
    root = tmp_path / "pipal"
    (root / "Train_Label").mkdir(parents=True)
    (root / "Val_Label").mkdir()
    (root / "Train_Label" / "A0001.txt").write_text(
        "A0001_00_00.bmp,1450.25\nA0001_01_00.bmp,1101.5\n"
    )
    (root / "Val_Label" / "A0201.txt").write_text("A0201_00_00.bmp,1612.0\n")
    s = prepare("pipal", root, tmp_path / "out")
    assert s["split_rule"] == "official" and s["scale"] == "1101:1612"
    train = _records(tmp_path / "out" / "pipal_train.jsonl")
    assert train[0]["image"] == "Train_Dis/A0001_00_00.bmp" and train[0]["scale"] == "1101:1612"
    val = _records(tmp_path / "out" / "pipal_val.jsonl")
    assert val[0]["image"] == "Val_Dis/A0201_00_00.bmp" and val[0]["gt_score"] == 1612.0


def test_ava_mean_of_the_vote_counts(tmp_path):
    root = tmp_path / "AVA_dataset"
    root.mkdir()
    votes = [
        0,
        1,
        5,
        17,
        38,
        36,
        15,
        6,
        5,
        1,
    ]  # AVA.txt line 1 layout: index id counts tags challenge
    (root / "AVA.txt").write_text(
        f"1 953619 {' '.join(map(str, votes))} 1 22 1396\n2 953958 0 0 0 0 0 0 0 0 0 2 0 0 1396\n"
    )
    prepare("ava", root, tmp_path / "out")
    recs = _records(tmp_path / "out" / "ava_all.jsonl")
    mean = sum(k * c for k, c in zip(range(1, 11), votes, strict=True)) / sum(votes)
    assert recs[0]["image"] == "images/953619.jpg" and recs[0]["gt_score"] == pytest.approx(mean)
    assert recs[1]["gt_score"] == 10.0 and recs[1]["votes"] == 2


def test_tad66k_official_train_test(tmp_path):
    root = tmp_path / "TAD66K"
    (root / "labels" / "merge").mkdir(parents=True)
    (root / "labels" / "merge" / "train.csv").write_text("image,score\na.jpg,5.5\nb.jpg,6.1\n")
    (root / "labels" / "merge" / "test.csv").write_text("image,score\nc.jpg,4.2\n")
    s = prepare("TAD66K", root, tmp_path / "out")
    assert {k: v["records"] for k, v in s["splits"].items()} == {"test": 1, "train": 2}


def test_flickr_aes_scores_on_their_1_to_5_scale(tmp_path):
    root = tmp_path / "flickr"
    root.mkdir()
    (root / "FLICKR-AES_image_score.txt").write_text("farm1_1.jpg 3.6\nfarm1_2.jpg 2.2\n")
    s = prepare("FLICKR-AES", root, tmp_path / "out")
    assert s["scale"] == "1:5"
    rec = _records(tmp_path / "out" / "flickraes_all.jsonl")[0]
    assert rec["scale"] == "1:5" and rec["image"] == "40K/farm1_1.jpg"


def test_artimuse_official_split_and_expert_attributes(tmp_path):
    root = tmp_path / "ArtiMuse-10K"
    (root / "text").mkdir(parents=True)
    rec = {"image": "10_193.jpg", "score": 2.3, "visual_elements": "Muted palette.", "other": 1}
    (root / "text" / "train.jsonl").write_text(json.dumps(rec) + "\n")
    (root / "text" / "test.jsonl").write_text(
        json.dumps({"image": "3_72.jpg", "score": 7.23}) + "\n"
    )
    _img(root / "images" / "10_193.jpg")
    _img(root / "images" / "3_72.jpg")
    s = prepare("artimuse", root, tmp_path / "out")
    assert s["missing_images"] == 0 and s["split_rule"] == "official"
    train = _records(tmp_path / "out" / "artimuse_train.jsonl")
    assert train[0]["attributes"] == {"visual_elements": "Muted palette."}
    assert train[0]["dataset"] == "ArtiMuse-10K" and train[0]["gt_score"] == 2.3


def test_livec_mat_files_leave_out_the_seven_training_images(tmp_path):
    from scipy.io import savemat

    root = tmp_path / "ChallengeDB_release"
    (root / "Data").mkdir(parents=True)
    names = np.empty((10, 1), dtype=object)
    for i in range(10):
        names[i, 0] = np.array([f"t{i}.bmp" if i < 7 else f"{i}.JPG"])
    savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": names})
    savemat(
        root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.arange(10.0).reshape(1, -1) * 9}
    )
    prepare("LIVE-C", root, tmp_path / "out")
    recs = _records(tmp_path / "out" / "livec_all.jsonl")
    assert [r["image"] for r in recs] == ["Images/7.JPG", "Images/8.JPG", "Images/9.JPG"]
    assert [r["gt_score"] for r in recs] == [63.0, 72.0, 81.0] and recs[0]["dataset"] == "CLIVE"


def test_benchmark_list_splits_a_dataset_without_an_official_one(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    (shared / "benchmarks" / "vr").mkdir(parents=True)
    (shared / "benchmarks" / "vr" / "IQA_KADID.json").write_text(
        json.dumps([{"image": "I01_01_02.png", "gt_score": 4.33}])
    )
    monkeypatch.setenv("SHARED_DATA", str(shared))
    root = tmp_path / "kadid10k"
    root.mkdir()
    (root / "dmos.csv").write_text(
        "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.4\nI01_01_02.png,I01.png,4.33,0.8\n"
    )
    s = prepare("kadid", root, tmp_path / "out")
    assert s["split_rule"].startswith("benchmark test list")
    assert [r["image"] for r in _records(tmp_path / "out" / "kadid_test.jsonl")] == [
        "images/I01_01_02.png"
    ]


def test_bad_labels_are_one_line_errors(tmp_path):
    runner = CliRunner()
    root = tmp_path / "kadid"
    root.mkdir()
    result = runner.invoke(
        app, ["data", "prepare", "kadid", "--root", str(root), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "label file not found" in result.output
    (root / "dmos.csv").write_text("dist_img,ref_img,dmos,var\na.png,r.png,7.5,0.1\n")
    result = runner.invoke(
        app, ["data", "prepare", "kadid", "--root", str(root), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "outside the declared scale of KADID (1-5)" in result.output
    result = runner.invoke(
        app, ["data", "prepare", "mnist", "--root", str(root), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "no reader for dataset 'mnist'" in result.output
