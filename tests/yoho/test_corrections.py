"""Corrective clicks: the NoC click simulator, correction rounds in the annotation, a refine
round on a synthetic image, the result history (undo), `yoho refine` and
`yoho evaluate --corrections`."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from yoho.annotation import (
    Annotation,
    Circle,
    CorrectionRound,
    Roi,
    annotation_from_dict,
    load_annotation,
    save_annotation,
    validate_annotation,
)
from yoho.cli import app
from yoho.evaluation.clicks import next_click
from yoho.evaluation.corrections import baseline_corrector, click_curve, noc
from yoho.io import read_mask, write_png
from yoho.metrics import dice
from yoho.predict import predict_target_probability
from yoho.profiles import get_profile

cli = CliRunner()


def _box_annotation(h=100, w=120, complement=False, lesion=None, normal=None):
    roi = Roi(polygons=[np.array([[10, 10], [110, 10], [110, 90], [10, 90]], float)])
    return Annotation(
        w,
        h,
        roi,
        lesion if lesion is not None else [Circle(60, 50, 5)],
        normal if normal is not None else [Circle(5, 5, 3)],
        complement=complement,
        r_max=30,
    )


# --- the click simulator --------------------------------------------------------------------


def test_a_missed_square_gets_a_lesion_click_at_its_centre():
    ann = _box_annotation()
    truth = np.zeros((100, 120), bool)
    truth[30:70, 30:90] = True
    pred = truth.copy()
    pred[40:60, 70:90] = False  # a 20 × 20 missed square
    click = next_click(pred, truth, ann)
    assert click.lesion and click.depth == pytest.approx(10.0)
    # the deepest point of the square (first in raster order) and the inscribed disc − 1 px
    assert (click.circle.x, click.circle.y, click.circle.r) == (79.0, 49.0, 9.0)
    disc = np.hypot(*np.mgrid[0:100, 0:120][::-1] - np.array([79, 49])[:, None, None]) <= 9
    assert not (disc & ~(truth & ~pred)).any()  # the circle covers error pixels only


def test_the_deeper_error_wins_and_a_false_region_gets_a_normal_click():
    ann = _box_annotation()
    truth = np.zeros((100, 120), bool)
    truth[30:70, 30:90] = True
    pred = truth.copy()
    pred[40:44, 70:90] = False  # thin miss: depth 2
    pred[72:88, 20:100] = True  # 16 px tall false lesion: depth 8
    click = next_click(pred, truth, ann)
    assert not click.lesion and click.depth == pytest.approx(8.0)
    assert click.circle.y - click.circle.r >= 72 and click.circle.y + click.circle.r < 88
    assert click.as_round().normal_circles == [click.circle]


def test_no_click_when_right_or_when_errors_are_thin_or_outside_the_roi():
    ann = _box_annotation()
    truth = np.zeros((100, 120), bool)
    truth[30:70, 30:90] = True
    assert next_click(truth, truth, ann) is None
    thin = truth.copy()
    thin[30:70, 30] = False  # one-pixel sliver
    assert next_click(thin, truth, ann) is None
    outside = truth.copy()
    truth_out = truth.copy()
    truth_out[92:100, 0:120] = True  # lesion below the ROI: the ROI's error, not a circle's
    assert next_click(outside, truth_out, ann) is None


def test_radius_is_bounded_by_r_max_and_the_image_border():
    ann = _box_annotation()
    truth = np.zeros((100, 120), bool)
    truth[10:90, 10:110] = True
    pred = np.zeros_like(truth)
    click = next_click(pred, truth, ann)
    assert click.lesion and click.circle.r == 30  # r_max, although the region is 40 deep
    validate_annotation(ann.with_round(click.as_round()))


def test_complement_clicks_respect_the_sides_of_the_roi():
    # With complement the ROI covers normal tissue: lesion clicks outside it, normal inside.
    ann = _box_annotation(complement=True, lesion=[Circle(4, 50, 3)], normal=[Circle(60, 50, 5)])
    validate_annotation(ann)
    truth = ~ann.roi_mask()
    pred = truth.copy()
    pred[30:60, 30:60] = True  # false lesion inside the ROI
    click = next_click(pred, truth, ann)
    assert not click.lesion and ann.roi_mask()[int(click.circle.y), int(click.circle.x)]
    validate_annotation(ann.with_round(click.as_round()))


def test_noc_counts_click_zero_and_caps_failures():
    assert noc([0.91, 0.95], 0.90, 10) == (0, True)
    assert noc([0.5, 0.8, 0.86, 0.92], 0.90, 10) == (3, True)
    assert noc([0.5, 0.6], 0.90, 10) == (10, False)


# --- rounds in the annotation file ----------------------------------------------------------


def test_version_1_files_load_and_rounds_round_trip(tmp_path, synthetic_annotation):
    old = synthetic_annotation.to_dict()
    old["version"] = 1
    del old["rounds"]
    ann = annotation_from_dict(old)
    assert ann.rounds == []
    ann = ann.with_round(CorrectionRound([Circle(40, 40, 4)], [], source="simulated"))
    ann = ann.with_round(CorrectionRound([], [Circle(2, 2, 1), Circle(5, 5, 2)]))
    path = save_annotation(ann, tmp_path / "a.json")
    data = json.loads(path.read_text())
    assert data["version"] == 2 and [len(r["normal_circles"]) for r in data["rounds"]] == [0, 2]
    back = load_annotation(path)
    assert back.rounds == ann.rounds and back.rounds[0].source == "simulated"
    merged = back.merged()
    assert merged.lesion_circles[-1] == Circle(40, 40, 4) and merged.rounds == []
    assert len(merged.normal_circles) == len(ann.normal_circles) + 2


def test_a_round_circle_on_the_wrong_side_is_named(synthetic_annotation):
    h, w = synthetic_annotation.shape
    outside = [
        Circle(x, y, 2)
        for x, y in ((3, 3), (w - 4, 3), (3, h - 4), (w - 4, h - 4))
        if not synthetic_annotation.roi_mask()[y, x]
    ][0]
    bad = synthetic_annotation.with_round(CorrectionRound([outside], []))
    with pytest.raises(ValueError, match=r"rounds\[0\]\.lesion_circles\[0\].*inside the ROI"):
        validate_annotation(bad)


# --- refine ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_refine_round_follows_the_click_and_raises_dice(synthetic, synthetic_annotation):
    from yoho.pipeline import segment
    from yoho.profiles import Phase
    from yoho.refine import refine

    image, truth = synthetic
    truth = truth > 0
    # `tiny` trained a little longer, so that there is a sensible map to correct.
    profile = dataclasses.replace(get_profile("tiny"), phases=(Phase(8, 3e-3),))
    first = segment(image, synthetic_annotation, profile, seed=0, keep_model=True)
    click = next_click(first.raw_mask, truth, synthetic_annotation)
    assert click is not None
    ann = synthetic_annotation.with_round(click.as_round())
    before = predict_target_probability(first.model, image, profile.input_size)
    second = refine(image, ann, first.model, profile, seed=0)
    after = predict_target_probability(second.model, image, profile.input_size)
    yy, xx = np.mgrid[0 : truth.shape[0], 0 : truth.shape[1]]
    disc = (xx - click.circle.x) ** 2 + (yy - click.circle.y) ** 2 <= click.circle.r**2
    # The network itself moves towards the click's label, and its map gets better overall.
    change = float(after[disc].mean() - before[disc].mean())
    assert change > 0.1 if click.lesion else change < -0.1
    assert dice(second.raw_mask, truth) > dice(first.raw_mask, truth) + 0.02
    assert len(second.curve) == profile.refine.steps
    # The previous round's network is untouched (undo goes back to it).
    again = predict_target_probability(first.model, image, profile.input_size)
    np.testing.assert_array_equal(again, before)


def test_click_curve_with_grabcut_stops_when_satisfied(synthetic, synthetic_annotation):
    image, truth = synthetic
    truth = truth > 0
    corrector = baseline_corrector("grabcut", image)
    first = synthetic_annotation.roi_mask()  # a poor start (the ROI alone): clicks are needed
    rows = click_curve(corrector, synthetic_annotation, truth, first, max_clicks=4, min_clicks=1)
    assert [r["click"] for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0]["dice"] == pytest.approx(dice(first, truth))
    made = [r for r in rows[1:] if r["made"]]
    assert made[0]["click"] == 1 and made[0]["kind"] == "normal" and made[0]["r"] >= 1
    assert rows[1]["dice"] > rows[0]["dice"]
    for r in rows[1:]:  # a click not made carries the Dice forward
        if not r["made"]:
            assert r["dice"] == rows[r["click"] - 1]["dice"]


# --- history and the CLI --------------------------------------------------------------------


@pytest.mark.slow
def test_cli_segment_refine_undo(tmp_path, synthetic, synthetic_annotation, monkeypatch):
    import yoho.refine

    seen = []
    real_refine = yoho.refine.refine

    def recording_refine(*args, **kwargs):
        seen.append(kwargs.get("previous_mask"))
        return real_refine(*args, **kwargs)

    monkeypatch.setattr(yoho.refine, "refine", recording_refine)
    image, truth = synthetic
    write_png(tmp_path / "img.png", image)
    write_png(tmp_path / "gt.png", truth)
    save_annotation(synthetic_annotation, tmp_path / "a.json")
    out = tmp_path / "res"
    done = cli.invoke(
        app,
        ["segment", str(tmp_path / "img.png"), "-a", str(tmp_path / "a.json"), "-o", str(out),
         "--profile", "tiny", "--threads", "1", "--gt", str(tmp_path / "gt.png")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert load_annotation(out / "annotation.json").rounds == []
    mask0 = (out / "mask.png").read_bytes()
    click = next_click(read_mask(out / "mask.png"), truth > 0, synthetic_annotation)
    flag = "--add-lesion" if click.lesion else "--add-normal"
    c = click.circle
    args = ["refine", str(tmp_path / "img.png"), "-r", str(out), flag, f"{c.x},{c.y},{c.r}",
            "--threads", "1", "--gt", str(tmp_path / "gt.png")]  # fmt: skip
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "round 1" in first.output and "Dice" in first.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["round"] == 1 and summary["clicks"] == 1
    assert len(load_annotation(out / "annotation.json").rounds) == 1
    assert (out / "history" / "round_00" / "mask.png").read_bytes() == mask0
    # The round was given the mask being corrected (for the profile's refine focus).
    assert len(seen) == 1 and np.array_equal(seen[0], read_mask(out / "history/round_00/mask.png"))
    undo = cli.invoke(app, ["refine", str(tmp_path / "img.png"), "-r", str(out), "--undo"])
    assert undo.exit_code == 0 and "back at round 0" in undo.output
    assert (out / "mask.png").read_bytes() == mask0
    assert load_annotation(out / "annotation.json").rounds == []
    nothing = cli.invoke(app, ["refine", str(tmp_path / "img.png"), "-r", str(out), "--undo"])
    assert nothing.exit_code == 2 and "nothing to undo" in nothing.output


def test_cli_refine_bad_input_is_one_line(tmp_path, synthetic, synthetic_annotation):
    image, _ = synthetic
    write_png(tmp_path / "img.png", image)
    (tmp_path / "res").mkdir()
    base = ["refine", str(tmp_path / "img.png"), "-r", str(tmp_path / "res")]
    none = cli.invoke(app, base)
    assert none.exit_code == 2 and "at least one --add-lesion or --add-normal" in none.output
    bad = cli.invoke(app, [*base, "--add-lesion", "1,2"])
    assert bad.exit_code == 2 and "X,Y,R" in bad.output
    missing = cli.invoke(app, [*base, "--add-lesion", "10,10,3"])
    assert missing.exit_code == 2 and "model.pt" in missing.output


def _make_dataset(root, n=2, size=80):
    from yoho.synthetic import synthetic_endoscopy

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image, mask = synthetic_endoscopy(size=size, seed=20 + i)
        write_png(root / "images" / f"img{i}.png", image)
        write_png(root / "masks" / f"img{i}.png", mask)
    return root


@pytest.mark.slow
def test_evaluate_corrections_curves_report_and_resume(tmp_path):
    root = _make_dataset(tmp_path / "d")
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(root), "--out", str(out), "--methods",
            "yoho,grabcut,roi", "--profile", "tiny", "--corrections", "2", "--threads", "1"]  # fmt: skip
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    with (out / "corrections.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    methods = {r["method"] for r in rows}
    assert methods == {"yoho(tiny)", "grabcut"}  # the ROI alone takes no click
    for m in methods:
        for image in ("img0", "img1"):
            clicks = [int(r["click"]) for r in rows if r["method"] == m and r["image"] == image]
            assert clicks == [0, 1, 2]
    folder = out / "report" / "m0.15_k3"
    assert "NoC@90" in (folder / "noc.md").read_text()
    assert (folder / "dice_vs_clicks.png").stat().st_size > 1000
    again = cli.invoke(app, args)
    assert again.exit_code == 0 and "2 finished before, 0 to run" in again.output


def test_a_focused_round_keeps_the_previous_mask_away_from_the_click(
    synthetic, synthetic_annotation
):
    from yoho.pipeline import segment
    from yoho.postprocess import circles_mask
    from yoho.refine import refine

    image, truth = synthetic
    first = segment(image, synthetic_annotation, "tiny", keep_model=True)
    seed = synthetic_annotation.lesion_circles[0]
    click = Circle(seed.x, seed.y, 2.0)  # a small click: its focus is a small part of the image
    ann = synthetic_annotation.with_round(CorrectionRound([click]))
    previous = np.ones(truth.shape, bool)  # a mask unlike anything the round would draw
    out = refine(image, ann, first.model, "tiny", previous_mask=previous).mask
    floor = 0.1 * np.sqrt(ann.roi_mask().sum() / np.pi)
    radius = max(10 * click.r, floor)
    inner = circles_mask([Circle(click.x, click.y, radius - 1)], ann.shape)
    zone = circles_mask([Circle(click.x, click.y, radius + 1)], ann.shape)
    assert zone.mean() < 0.2 and out[~zone].all()
    unfocused = refine(image, ann, first.model, "tiny").mask  # no previous mask: no focus
    assert not unfocused[~zone].all() and np.array_equal(out[inner], unfocused[inner])


def test_the_walker_share_reaches_the_first_result_and_every_round(synthetic, synthetic_annotation):
    from yoho.baselines import random_walker_probability
    from yoho.pipeline import segment
    from yoho.postprocess import refine_mask
    from yoho.refine import refine

    image, truth = synthetic
    tiny = get_profile("tiny")
    post = dataclasses.replace(get_profile("cpu_fused").post, walker_share=1.0)
    walker_only = dataclasses.replace(tiny, post=post)  # the network's map does not count
    first = segment(image, synthetic_annotation, walker_only, keep_model=True)
    expected = refine_mask(random_walker_probability(image, synthetic_annotation),
                           synthetic_annotation, post, image=image)  # fmt: skip
    np.testing.assert_array_equal(first.mask, expected)
    seed = synthetic_annotation.lesion_circles[0]
    ann = synthetic_annotation.with_round(CorrectionRound([Circle(seed.x + 3, seed.y, 2.0)]))
    out = refine(image, ann, first.model, walker_only).mask  # no previous mask: no focus
    opt = tiny.refine
    round_post = dataclasses.replace(post, sure_high=opt.sure_high, sure_low=opt.sure_low,
                                     grabcut_iterations=opt.grabcut_iterations)  # fmt: skip
    expected = refine_mask(random_walker_probability(image, ann), ann, round_post, image=image)
    np.testing.assert_array_equal(out, expected)
    # The network's map is kept as it is: the result's probability is not the walker's.
    assert not np.allclose(
        first.probability, random_walker_probability(image, synthetic_annotation)
    )
    # `walker_guide`: the walker walks on the image and the network's calibrated map, in the
    # first result and in a round (whose map is the refined network's).
    guided = dataclasses.replace(post, walker_guide=10.0)
    walker_guided = dataclasses.replace(tiny, post=guided)
    as_is = dataclasses.replace(post, walker_share=0.0)  # the post-processing of a given map
    first = segment(image, synthetic_annotation, walker_guided, keep_model=True)
    walk = random_walker_probability(image, synthetic_annotation, guide=first.probability,
                                     guide_weight=10.0)  # fmt: skip
    np.testing.assert_array_equal(
        first.mask, refine_mask(walk, synthetic_annotation, as_is, image=image)
    )
    assert not np.allclose(walk, random_walker_probability(image, synthetic_annotation))
    again = refine(image, ann, first.model, walker_guided)
    walk = random_walker_probability(image, ann, guide=again.probability, guide_weight=10.0)
    round_as_is = dataclasses.replace(round_post, walker_share=0.0)
    np.testing.assert_array_equal(again.mask, refine_mask(walk, ann, round_as_is, image=image))


def test_focus_keeps_the_mask_away_from_the_last_clicks(synthetic_annotation):
    from yoho.postprocess import focus_on_clicks

    ann = synthetic_annotation
    h, w = ann.shape
    previous = np.zeros((h, w), bool)
    new = np.ones((h, w), bool)
    assert np.array_equal(focus_on_clicks(previous, new, ann, 3.0), new)  # no round: all new
    click = Circle(w / 2, h / 2, 4.0)
    one = ann.with_round(CorrectionRound(lesion_circles=[click]))
    out = focus_on_clicks(previous, new, one, 3.0)
    floor = 0.1 * np.sqrt(one.roi_mask().sum() / np.pi)
    radius = max(12.0, floor)
    yy, xx = np.ogrid[:h, :w]
    dist = np.sqrt((yy - click.y) ** 2 + (xx - click.x) ** 2)
    assert out[dist <= radius - 1].all() and not out[dist >= radius + 1].any()
    with pytest.raises(ValueError, match="differ in shape"):
        focus_on_clicks(previous[:10], new, one, 3.0)
