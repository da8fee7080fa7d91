"""The evaluation: dataset folders, protocol settings, ablations, post-processing, ROI crop,
the resumable runner, reports, the sweep table and the `yoho evaluate`/`yoho sweep` CLI."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from yoho.annotation import validate_annotation
from yoho.cli import app
from yoho.evaluation import runner as runner_module
from yoho.evaluation.ablation_table import ablation_table
from yoho.evaluation.dataset import load_dataset
from yoho.evaluation.methods import MethodSpec, parse_methods
from yoho.evaluation.report import summarise, write_report
from yoho.evaluation.runner import pending_jobs, run_local
from yoho.evaluation.settings import (
    ProtocolSetting,
    apply_ablations,
    image_seed,
    parse_ablations,
)
from yoho.evaluation.store import ResultStore
from yoho.evaluation.sweep import sweep_table
from yoho.io import read_image, read_mask, write_png
from yoho.physician import simulate_annotation
from yoho.postprocess import PostOptions, circles_mask, refine_mask
from yoho.profiles import get_profile
from yoho.roi_crop import crop_for_training, paste_probability
from yoho.synthetic import synthetic_endoscopy

cli = CliRunner()


def make_dataset(root, n=3, size=96, labels=True):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    lines = ["image,mask,width,height,fg_fraction"]
    for i in range(n):
        image, mask = synthetic_endoscopy(size=size, seed=10 + i)
        write_png(root / "images" / f"img{i}.png", image)
        write_png(root / "masks" / f"img{i}.png", mask)
        lines.append(f"images/img{i}.png,masks/img{i}.png,{size},{size},{mask.mean():.4f}")
    if labels:
        (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


# --- dataset ------------------------------------------------------------------------------


def test_dataset_labels_folders_subsets(tmp_path):
    root = make_dataset(tmp_path / "d", n=6)
    items = load_dataset(root)
    assert [i.name for i in items] == [f"img{i}" for i in range(6)]
    assert [i.name for i in load_dataset(root, "every4")] == ["img0", "img4"]
    assert [i.name for i in load_dataset(root, limit=2)] == ["img0", "img1"]
    subset = tmp_path / "subset.txt"
    subset.write_text("# dev images\nimg3.png\nimg1\n")
    assert [i.name for i in load_dataset(root, subset)] == ["img3", "img1"]
    (root / "labels.csv").unlink()
    assert len(load_dataset(root)) == 6  # images/ + masks/ paired by stem


def test_dataset_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        load_dataset(tmp_path / "missing")
    root = make_dataset(tmp_path / "d", n=2)
    (root / "labels.csv").write_text("image,mask\nimages/img0.png,masks/nope.png\n")
    with pytest.raises(FileNotFoundError, match="line 2: mask .*nope.png not found"):
        load_dataset(root)
    (root / "labels.csv").write_text("picture,mask\n")
    with pytest.raises(ValueError, match="needs the columns 'image' and 'mask'"):
        load_dataset(root)
    (root / "labels.csv").unlink()
    bad = tmp_path / "subset.txt"
    bad.write_text("img9\n")
    with pytest.raises(ValueError, match="line 1: 'img9' is not an image"):
        load_dataset(root, bad)
    with pytest.raises(FileNotFoundError, match="subset file not found"):
        load_dataset(root, "every5")


# --- protocol settings and the simulated physician on a known mask -------------------------


@pytest.mark.parametrize("margin,k", [(0.15, 3), (0.5, 1), (0.3, 3)])
def test_physician_on_a_known_mask(margin, k):
    image = np.full((260, 320, 3), 140, np.uint8)
    gt = np.zeros((260, 320), bool)
    yy, xx = np.mgrid[0:260, 0:320]
    gt[(yy - 130) ** 2 + (xx - 160) ** 2 <= 30**2] = True  # disc of radius 30: d ≈ 60
    setting = ProtocolSetting(margin, k)
    ann = simulate_annotation(image, gt, setting.oracle(image_seed("x")))
    roi = validate_annotation(ann, image.shape)
    assert roi[gt].all()  # the ROI contains the mask
    d = 2 * math.sqrt(gt.sum() / math.pi)
    margin_px = max(8, margin * d)
    assert ann.protocol["margin_px"] == pytest.approx(margin_px, abs=0.05)
    # The ROI reaches about `margin` beyond the lesion (the polygon simplification cuts a bit).
    edge = 160 + 30 + int(margin_px)
    assert roi[130, edge - 3] and not roi[130, edge + 4]
    assert len(ann.lesion_circles) == k
    # Centres in the lesion; a disc leaves it only when held at the 4-px minimum radius.
    assert all(gt[int(c.y), int(c.x)] for c in ann.lesion_circles)
    for c in ann.lesion_circles:
        inside = not (circles_mask([c], gt.shape) & ~gt).any()
        assert inside or c.r == 4
    assert not (circles_mask(ann.lesion_circles[:1], gt.shape) & ~gt).any()
    assert ann.lesion_circles[0].r == pytest.approx(min(30, 0.25 * d), abs=1)
    normal = circles_mask(ann.normal_circles, gt.shape)
    assert len(ann.normal_circles) == 3 and not (normal & gt).any()
    assert ann.protocol["normal_exclusion_px"] == pytest.approx(2 * margin_px, abs=0.05)
    far = (yy - 130) ** 2 + (xx - 160) ** 2 > (30 + 2 * margin_px - 1) ** 2
    assert not (normal & ~far).any()  # outside the mask dilated by 2m
    assert ann.protocol["margin_factor"] == margin and ann.protocol["lesion_circles"] == k
    assert setting.label == f"m{margin:g}_k{k}"


def test_setting_validation_and_seed():
    with pytest.raises(ValueError, match="at least one lesion circle"):
        ProtocolSetting(0.15, 0)
    assert image_seed("a") == image_seed("a") != image_seed("b")
    assert ProtocolSetting(0.15, 3, 0).label == "m0.15_k3_n0"


# --- ablations -------------------------------------------------------------------------------


def test_ablations_change_what_they_say(synthetic_annotation):
    base = get_profile("tiny")
    names = parse_ablations("no_rotation,no_edge,discs_only,no_normal_circles,no_roi_clip")
    assert names == ("no_edge", "discs_only", "no_rotation", "no_normal_circles", "no_roi_clip")
    prof, ann = apply_ablations(base, synthetic_annotation, names)
    assert not prof.model.edge_branch and prof.loss.edge == 0 and prof.loss.boundary == 0
    assert prof.render.triangle_probability == 0 and prof.render.rotate_probability == 0
    assert not prof.roi_clip and ann.normal_circles == [] and synthetic_annotation.normal_circles
    prof, _ = apply_ablations(base, synthetic_annotation, ("no_boundary", "no_magnify"))
    assert prof.loss.boundary == 0 and prof.loss.edge == base.loss.edge
    assert prof.render.max_zoom == 1.0
    with pytest.raises(ValueError, match="unknown ablation"):
        parse_ablations("no_edges")
    with pytest.raises(ValueError, match="contradict"):
        parse_ablations("roi_clip,no_roi_clip")
    specs = parse_methods("yoho,roi", "tiny", ("no_edge",))
    assert [s.label for s in specs] == ["yoho(tiny; no_edge)", "roi"]
    with pytest.raises(ValueError, match="unknown profile"):
        parse_methods("yoho", "nope")


# --- post-processing and the ROI crop --------------------------------------------------------


def test_refine_mask_uses_the_clicks(synthetic, synthetic_annotation):
    image, gt = synthetic
    ann = synthetic_annotation
    prob = gt.astype(np.float32) * 0.9
    lesion = circles_mask(ann.lesion_circles, gt.shape)
    prob[lesion] = 0.0  # a hole where the physician clicked
    prob[2:6, 2:6] = 0.95  # a far blob (outside the ROI)
    plain = refine_mask(prob, ann, PostOptions(), roi_clip=False)
    assert plain[2:6, 2:6].all() and not plain[lesion].any()
    full = PostOptions(force_circles=True, fill_holes=True, keep_seeded=True)
    refined = refine_mask(prob, ann, full, roi_clip=False)
    assert refined[lesion].all() and not refined[2:6, 2:6].any()
    assert not (refined & circles_mask(ann.normal_circles, gt.shape)).any()
    blob_in_roi = prob.copy()
    blob_in_roi[2:6, 2:6] = 0
    with pytest.raises(ValueError, match="probability map is"):
        refine_mask(prob[1:], ann, full)


def test_roi_crop_round_trip(synthetic_annotation, synthetic):
    image, gt = synthetic
    big = np.zeros((256, 256, 3), np.uint8) + 100
    big[64:192, 64:192] = image
    from yoho.annotation import Annotation, Circle, Roi

    ann = synthetic_annotation
    shifted = Annotation(
        256,
        256,
        Roi(polygons=[p + 64 for p in ann.roi.polygons]),
        lesion_circles=[Circle(c.x + 64, c.y + 64, c.r) for c in ann.lesion_circles],
        normal_circles=[Circle(c.x + 64, c.y + 64, c.r) for c in ann.normal_circles],
    )
    crop, crop_ann, box = crop_for_training(big, shifted, 0.1)
    assert box is not None and crop.shape[:2] == crop_ann.shape
    y0, y1, x0, x1 = box
    assert np.array_equal(crop_ann.roi_mask(), shifted.roi_mask()[y0:y1, x0:x1])
    assert len(crop_ann.lesion_circles) == len(shifted.lesion_circles)
    full = paste_probability(np.ones(crop_ann.shape, np.float32), box, shifted.shape)
    assert full.sum() == crop_ann.width * crop_ann.height and full[y0, x0] == 1
    assert crop_for_training(big, shifted, None)[2] is None
    comp = dataclasses.replace(shifted, complement=True)
    assert crop_for_training(big, comp, 0.1)[2] is None  # complement: whole frame


# --- runner, resume, report, sweep ----------------------------------------------------------


def test_run_resume_report_and_sweep(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "d", n=3)
    out = tmp_path / "out"
    items = load_dataset(root)
    methods = parse_methods("roi,grabcut,random_walker")
    store = ResultStore(out / "results.csv")
    setting = ProtocolSetting()
    jobs = pending_jobs(items, setting, methods, out, store)
    assert len(jobs) == 3
    assert run_local(jobs, store) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 9 and all(r["error"] == "" for r in rows)
    assert (out / "annotations" / "m0.15_k3" / "img0.json").is_file()
    assert (out / "masks" / "m0.15_k3" / "grabcut" / "img2.png").is_file()

    # Resume: a fresh store from the file finds everything done, nothing is recomputed.
    calls = []
    real = runner_module.run_method
    monkeypatch.setattr(
        runner_module,
        "run_method",
        lambda s, i, a, **k: calls.append(s.label) or real(s, i, a, **k),
    )
    store = ResultStore(out / "results.csv")
    assert pending_jobs(items, setting, methods, out, store) == []
    # One row lost (an interrupted run): only that method of that image runs again.
    del store.rows[("img1", "m0.15_k3", "grabcut")]
    jobs = pending_jobs(items, setting, methods, out, store)
    assert [(j.item.name, [m.label for m in j.methods]) for j in jobs] == [("img1", ["grabcut"])]
    run_local(jobs, store)
    assert calls == ["grabcut"]

    summary = {e["method"]: e for e in summarise(store, "m0.15_k3")}
    assert summary["roi"]["n"] == 3
    values = [r["dice"] for r in store.select("m0.15_k3", ["grabcut"])]
    assert summary["grabcut"]["dice"]["mean"] == pytest.approx(np.mean(values))
    assert summary["grabcut"]["dice"]["median"] == pytest.approx(np.median(values))
    assert summary["roi"]["recall"]["mean"] == pytest.approx(1.0)
    report = write_report(store, items, out, "m0.15_k3", ["roi", "grabcut", "random_walker"])
    for name in ("summary.md", "summary.json", "dice_boxplot.png", "cases.png"):
        assert (report["folder"] / name).stat().st_size > 100
    assert "| grabcut | 3 |" in report["markdown"]

    loose = ProtocolSetting(0.5, 1)
    run_local(pending_jobs(items, loose, methods, out, store), store)
    text, data = sweep_table(store, ["m0.15_k3", "m0.5_k1"])
    assert data["m0.5_k1"]["roi"]["n"] == 3
    assert data["m0.5_k1"]["roi"]["mean_dice"] < data["m0.15_k3"]["roi"]["mean_dice"]
    assert "| m0.5_k1 |" in text


def test_ablation_table_pairs_each_ablation_with_the_full_model(tmp_path):
    store = ResultStore(tmp_path / "results.csv")
    rows = []

    def add(method, dices, setting="m0.15_k3"):
        for i, d in enumerate(dices):
            rows.append({"image": f"img{i}", "setting": setting, "method": method,
                         "dice": d, "error": ""})  # fmt: skip

    add("yoho(cpu)", [0.9, 0.8, 0.7, 0.6])
    add("yoho(cpu) [no_postprocess]", [0.8, 0.7, 0.6, 0.5])
    add("yoho(cpu; no_edge)", [0.85, 0.82])  # ran on the first two images only
    add("yoho(cpu; no_edge) [no_postprocess]", [0.6, 0.6])
    add("yoho(cpu; discs_only+no_rotation)", [0.95, 0.9, 0.7])
    add("grabcut", [0.5, 0.5, 0.5, 0.5])
    add("yoho(cpu; no_edge)", [0.1], setting="m0.5_k3")  # no full model there: no row
    store.add(rows)

    text, table = ablation_table(store, "m0.15_k3")
    by = {r["ablation"]: r for r in table}
    assert set(by) == {"no_edge", "discs_only+no_rotation"}
    edge = by["no_edge"]
    assert edge["images"] == 2 and edge["wins"] == 1
    assert edge["dice"] == pytest.approx(0.835) and edge["reference_dice"] == pytest.approx(0.85)
    assert edge["delta"] == pytest.approx(-0.015)
    assert edge["network_only"]["delta"] == pytest.approx(0.6 - 0.75)
    assert "edge branch" in edge["what"]
    both = by["discs_only+no_rotation"]
    assert both["images"] == 3 and both["delta"] == pytest.approx(0.85 - 0.8)
    assert both["network_only"] is None
    assert both["what"] == "patches pasted as discs only (no triangles); no rotated patches"
    assert "| `no_edge` |" in text and "-0.015" in text
    assert ablation_table(store, "m0.5_k3") == ("", [])
    # The protocol sweep leaves ablated runs to this table.
    sweep_text, _ = sweep_table(store, ["m0.15_k3"])
    assert "no_edge" not in sweep_text and "yoho(cpu)" in sweep_text


def test_a_failing_image_is_reported_and_the_others_go_on(tmp_path):
    root = make_dataset(tmp_path / "d", n=2)
    (root / "masks" / "img1.png").write_bytes(np.zeros((96, 96), np.uint8).tobytes()[:50])
    out = tmp_path / "out"
    store = ResultStore(out / "results.csv")
    items = load_dataset(root)
    jobs = pending_jobs(items, ProtocolSetting(), parse_methods("roi"), out, store)
    assert run_local(jobs, store) == 1
    bad = store.rows[("img1", "m0.15_k3", "roi")]
    assert "not a readable mask" in bad["error"]
    assert store.done("img0", "m0.15_k3", "roi") and not store.done("img1", "m0.15_k3", "roi")


def test_yoho_method_runs_with_tiny_profile(tmp_path):
    root = make_dataset(tmp_path / "d", n=1, size=80)
    out = tmp_path / "out"
    store = ResultStore(out / "results.csv")
    spec = MethodSpec("yoho", "tiny", ("no_edge",), seed=0)
    run_local(pending_jobs(load_dataset(root), ProtocolSetting(), [spec], out, store), store)
    row = store.rows[("img0", "m0.15_k3", "yoho(tiny; no_edge)")]
    assert row["error"] == "" and 0 <= row["dice"] <= 1 and row["train_s"] > 0
    assert (out / "probability" / "m0.15_k3" / "yoho_tiny_no_edge" / "img0.png").is_file()
    # The report shows what the network believes, next to the contours of the final masks.
    report = write_report(store, load_dataset(root), out, "m0.15_k3", [spec.label])
    assert (report["folder"] / "probability.png").stat().st_size > 1000
    assert (report["folder"] / "cases.png").is_file()


# --- CLI ------------------------------------------------------------------------------------


def test_cli_evaluate_resume_and_sweep(tmp_path):
    root = make_dataset(tmp_path / "d", n=2)
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(root), "--out", str(out), "--methods", "roi,grabcut"]
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "0 finished before, 2 to run" in first.output and "| grabcut | 2 |" in first.output
    again = cli.invoke(app, args)
    assert again.exit_code == 0 and "2 finished before, 0 to run" in again.output
    assert (out / "report" / "m0.15_k3" / "cases.png").is_file()
    sweep = cli.invoke(
        app,
        ["sweep", "--data", str(root), "--out", str(out), "--methods", "roi",
         "--margins", "0.15,0.5", "--lesion-circles", "1", "--subset", "all"],
    )  # fmt: skip
    assert sweep.exit_code == 0, sweep.output
    assert (out / "sweep.md").is_file() and "m0.5_k1" in (out / "sweep.md").read_text()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--methods", "yoho,snake"], "unknown method(s) snake"),
        (["--profile", "nope"], "'nope' is not one of 'cpu'"),
        (["--ablations", "no_edges"], "unknown ablation(s) no_edges"),
        (["--engine", "spark"], "'spark' is not one of 'local', 'ray'"),
        (["--lesion-circles", "0"], "at least one lesion circle"),
        (["--subset", "missing.txt"], "subset file not found"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, extra, message):
    root = make_dataset(tmp_path / "d", n=1)
    result = cli.invoke(
        app, ["evaluate", "--data", str(root), "--out", str(tmp_path / "o"), *extra]
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_cli_missing_data_folder(tmp_path):
    result = cli.invoke(app, ["evaluate", "--data", str(tmp_path / "x"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "data folder not found" in result.output


def test_gpu_check_script_smoke_mode(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "gpu_check_yoho.py"
    spec = importlib.util.spec_from_file_location("gpu_check_yoho", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "gpu.json"
    assert module.main(["--smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["profile"] == "tiny" and result["device"] == "cpu" and result["finished"]
    assert 0 <= result["dice"] <= 1 and result["seconds_per_image"] > 0
    assert result["compare"]["profile"] == "tiny" and 0 <= result["compare"]["dice"] <= 1
    # A time budget stops the schedule and extrapolates instead of hanging.
    assert module.main(["--smoke", "--out", str(out), "--max-seconds", "0"]) == 0
    stopped = json.loads(out.read_text())
    assert not stopped["finished"] and stopped["dice"] is None


def test_grabcut_refine_sharpens_a_blurry_probability(synthetic, synthetic_annotation):
    import cv2

    from yoho.metrics import dice

    image, gt = synthetic
    ann = synthetic_annotation
    # What a 32² network would give: the true mask, shrunk, blurred and grown back.
    small = cv2.resize(gt.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    blurry = cv2.resize(cv2.GaussianBlur(small, (5, 5), 2), gt.shape[::-1])
    blurry = np.clip(blurry * 0.9 + np.roll(blurry, 6, axis=1) * 0.3, 0, 1)
    plain = refine_mask(blurry, ann, PostOptions(), 0.5, True)
    options = PostOptions(grabcut_refine=True)
    refined = refine_mask(blurry, ann, options, 0.5, True, image)
    assert dice(refined, gt) > dice(plain, gt) + 0.02 and dice(refined, gt) > 0.9
    assert np.array_equal(refined, refine_mask(blurry, ann, options, 0.5, True, image))
    with pytest.raises(ValueError, match="needs the original image"):
        refine_mask(blurry, ann, options, 0.5, True)


def test_profiles_keep_their_names_and_the_tuned_one_post_processes():
    assert get_profile("tiny").post == PostOptions() and not get_profile("cpu").post.active
    tuned = get_profile("cpu_tuned")
    assert tuned.post.grabcut_refine and tuned.post.keep_seeded and tuned.roi_clip
    assert tuned.model == get_profile("cpu").model and get_profile("paper").roi_crop is None


def test_reprocess_variants_from_saved_probabilities(tmp_path):
    from yoho.evaluation.reprocess import VARIANTS, reprocess
    from yoho.evaluation.runner import method_dir

    root = make_dataset(tmp_path / "d", n=2)
    out = tmp_path / "out"
    items = load_dataset(root)
    store = ResultStore(out / "results.csv")
    run_local(pending_jobs(items, ProtocolSetting(), parse_methods("roi"), out, store), store)
    folder = method_dir(out, "m0.15_k3", "yoho(x)", "probability")
    for item in items:  # a perfect network: the ground truth as probability
        write_png(folder / f"{item.name}.png", read_mask(item.mask))
    added = reprocess(store, items, out, "m0.15_k3", "yoho(x)", list(VARIANTS))
    assert added == 2 * len(VARIANTS)
    rows = {r["method"]: r for r in store.select("m0.15_k3") if r["image"] == "img0"}
    assert rows["yoho(x) [no_postprocess]"]["dice"] == pytest.approx(1.0)
    assert rows["yoho(x) [full]"]["dice"] > 0.9
    assert rows["yoho(x) [control_flat_0.6]"]["dice"] < rows["yoho(x) [full]"]["dice"]
    # A perfect map fused with the random walker stays at least as good as the walker alone.
    walker = rows["yoho(x) [control_random_walker]"]["dice"]
    assert 0.5 < walker <= rows["yoho(x) [fuse_random_walker]"]["dice"] + 1e-9
    assert reprocess(store, items, out, "m0.15_k3", "yoho(x)", list(VARIANTS)) == 0  # resumed


def test_an_interrupted_evaluate_keeps_the_variants_of_every_finished_image(tmp_path, monkeypatch):
    # Variants are recomputed as each image finishes: a run stopped after its first image has
    # that image's variant rows, and the resumed run adds only the second image's.
    root = make_dataset(tmp_path / "d", n=2)
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(root), "--out", str(out), "--methods", "yoho",
            "--profile", "tiny", "--threads", "1", "--variants", "control_flat_0.4"]  # fmt: skip
    real = runner_module.run_image_job
    calls = []

    def stop_at_the_second(job):
        calls.append(job.item.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(runner_module, "run_image_job", stop_at_the_second)
    cli.invoke(app, args)
    rows = ResultStore(out / "results.csv").select("m0.15_k3")
    assert {(r["image"], r["method"]) for r in rows} == {
        ("img0", "yoho(tiny)"),
        ("img0", "yoho(tiny) [control_flat_0.4]"),
    }
    monkeypatch.setattr(runner_module, "run_image_job", real)
    assert cli.invoke(app, args).exit_code == 0
    rows = ResultStore(out / "results.csv").select("m0.15_k3")
    assert sorted((r["image"], r["method"]) for r in rows) == [
        ("img0", "yoho(tiny)"), ("img0", "yoho(tiny) [control_flat_0.4]"),
        ("img1", "yoho(tiny)"), ("img1", "yoho(tiny) [control_flat_0.4]"),
    ]  # fmt: skip


def test_the_leak_check_recomputed_from_a_results_file(tmp_path):
    # scripts/yoho_leak_check.py: the walk's row gives way to the flat row when its area
    # (recall / precision, in lesion areas) is more than the ratio times the flat one's, with
    # three lesion circles (the setting's k) and outside a complement ROI.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "scripts" / "yoho_leak_check.py"
    spec = importlib.util.spec_from_file_location("yoho_leak_check", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    walk, flat = "yoho(x) [guide_random_walker]", "yoho(x) [control_flat_0.4]"
    rows = [  # (image, setting, method, dice, precision, recall, complement)
        ("a", "m0.15_k3", walk, 0.60, 0.45, 1.00, "False"),  # area 2.2 lesions
        ("a", "m0.15_k3", flat, 0.90, 0.90, 0.90, "False"),  # area 1.0: ratio 2.2, fires
        ("b", "m0.15_k3", walk, 0.95, 0.95, 0.95, "False"),
        ("b", "m0.15_k3", flat, 0.80, 0.95, 0.70, "False"),  # ratio 1.36: kept
        ("c", "m0.15_k1", walk, 0.60, 0.45, 1.00, "False"),  # one circle: never
        ("c", "m0.15_k1", flat, 0.90, 0.90, 0.90, "False"),
        # complement: always. Reprocessed rows leave the column empty; the image's own rows
        # (a baseline's here) say it.
        ("d", "m0.15_k3", walk, 0.60, 0.45, 1.00, ""),
        ("d", "m0.15_k3", flat, 0.90, 0.90, 0.90, ""),
        ("d", "m0.15_k3", "grabcut", 0.85, 0.85, 0.85, "True"),
    ]
    store = ResultStore(tmp_path / "results.csv")
    store.add([dict(image=i, setting=s, method=m, kind="yoho", dice=d, precision=p, recall=r,
                    complement=c, error="") for i, s, m, d, p, r, c in rows])  # fmt: skip
    assert script.main([str(store.path), "--out", str(tmp_path / "o"), "--walk", walk,
                        "--flat", flat, "--control", "none"]) == 0  # fmt: skip
    table = list(csv.DictReader((tmp_path / "o" / "leak_check.csv").open()))
    fired = {t["image"]: t["fired"] == "True" for t in table}
    assert fired == {"a": True, "b": False, "c": False, "d": True}
    checked = {t["image"]: float(t["checked"]) for t in table}
    assert checked == {"a": 0.90, "b": 0.95, "c": 0.60, "d": 0.90}
    assert float(table[0]["area_ratio"]) == pytest.approx(1.0 / 0.45 / (0.9 / 0.9), abs=1e-4)
    assert "| all | 4 | 2 |" in (tmp_path / "o" / "leak_check.md").read_text()
    with pytest.raises(SystemExit, match="nope.csv: results file not found"):
        script.main([str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])


def test_walker_levels_on_a_synthetic_image(tmp_path):
    # scripts/yoho_walker_levels.py: the featureless walk is the clicks' geometry (1 on the
    # lesion circle, 0 outside the ROI, falling away from the circle); a network map with a
    # sharp step at the truth pulls the guided walk above that geometry on the truth's edge.
    import importlib.util
    from pathlib import Path

    from yoho.annotation import save_annotation
    from yoho.evaluation.runner import method_dir
    from yoho.physician import OracleOptions

    path = Path(__file__).parents[2] / "scripts" / "yoho_walker_levels.py"
    spec = importlib.util.spec_from_file_location("yoho_walker_levels", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    data = make_dataset(tmp_path / "data", n=1, size=96)
    item = load_dataset(data)[0]
    image = read_image(item.image)
    truth = read_mask(item.mask, image.shape)
    ann = simulate_annotation(image, truth, OracleOptions(margin_factor=0.3, lesion_circles=1))
    out = tmp_path / "out"
    save_annotation(ann, out / "annotations" / "m0.3_k1" / f"{item.name}.json")

    geometry = script.geometry_walk(ann)
    lesion = circles_mask(ann.lesion_circles, ann.shape)
    assert np.allclose(geometry[lesion], 1.0) and np.allclose(geometry[~ann.roi_mask()], 0.0)
    c = ann.lesion_circles[0]
    roi = ann.roi_mask()
    ray = [geometry[int(c.y), x] for x in range(int(c.x + c.r) + 1, 96) if roi[int(c.y), x]]
    assert len(ray) > 3 and all(a >= b - 1e-3 for a, b in zip(ray, ray[1:], strict=False))

    edge = script.edge_pixels(truth, ann.roi_mask())
    assert edge.any() and not (edge & ~ann.roi_mask()).any()
    assert math.isnan(script.level_on(geometry, np.zeros_like(edge)))

    folder = method_dir(out, "m0.3_k1", "yoho(cpu_guided)", "probability")
    write_png(folder / f"{item.name}.png", np.where(truth, 230, 25).astype(np.uint8))
    assert script.main(["--data", str(data), "--out", str(out), "--settings", "m0.3_k1",
                        "--bands", "0.3,0.1"]) == 0  # fmt: skip
    rows = list(csv.DictReader((out / "report" / "walker_levels" / "walker_levels.csv").open()))
    assert len(rows) == 1 and rows[0]["setting"] == "m0.3_k1"
    assert float(rows[0]["walk_on_edge"]) > float(rows[0]["geometry_on_edge"]) + 0.1
    assert float(rows[0]["dice_band_0.3"]) > 0.8 and "dice_band_0.1" in rows[0]
    # The step map ranks every lesion pixel above every normal one; geometry ranks well, not
    # perfectly; the ranking is over the ROI outside the clicked circles only.
    assert float(rows[0]["auc_network"]) == 1.0
    assert 0.5 < float(rows[0]["auc_geometry"]) < 1.0 and 0.5 < float(rows[0]["auc_walk"]) <= 1.0
    decide = script.unclicked_roi(ann)
    assert not (decide & lesion).any() and not (decide & ~roi).any() and decide.any()
    assert math.isnan(script.ranking(geometry, np.ones_like(truth), decide))
    table = (out / "report" / "walker_levels" / "walker_levels.md").read_text()
    assert "| m0.3_k1 | 1 |" in table and "| AUC network | AUC geometry | AUC walk |" in table
    with pytest.raises(SystemExit, match="no saved yoho\\(cpu_guided\\) maps for setting m0.5_k1"):
        script.main(["--data", str(data), "--out", str(out), "--settings", "m0.5_k1"])
    (out / "annotations" / "m0.3_k1" / f"{item.name}.json").unlink()
    with pytest.raises(SystemExit, match=f"{item.name}.json: annotation file not found"):
        script.main(["--data", str(data), "--out", str(out), "--settings", "m0.3_k1"])
    with pytest.raises(SystemExit, match="nodata: data folder not found"):
        script.main(["--data", str(tmp_path / "nodata"), "--out", str(out), "--settings", "x"])
    with pytest.raises(SystemExit, match="--bands: each band must lie in"):
        script.main(["--data", str(data), "--out", str(out), "--settings", "m0.3_k1",
                     "--bands", "1.5"])  # fmt: skip
