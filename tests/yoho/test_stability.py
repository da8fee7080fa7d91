"""Stability of the per-image training: calibration to the clicks, balanced loss, threads."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from yoho.annotation import Annotation, Circle, Roi
from yoho.cli import app
from yoho.evaluation.settings import apply_ablations
from yoho.losses import class_balanced_bce, masked_bce
from yoho.metrics import dice
from yoho.physician import simulate_annotation
from yoho.pipeline import segment
from yoho.postprocess import calibrate_to_clicks, click_evidence
from yoho.profiles import DEFAULT_PROFILE, get_profile
from yoho.synthetic import synthetic_endoscopy
from yoho.threads import default_threads, set_threads


def _square_case():
    gt = np.zeros((100, 100), bool)
    gt[35:65, 35:65] = True
    roi = np.array([[25, 25], [74, 25], [74, 74], [25, 74]], float)
    ann = Annotation(
        100, 100, Roi(polygons=[roi]),
        lesion_circles=[Circle(50, 50, 6)], normal_circles=[Circle(10, 90, 5)],
    )  # fmt: skip
    return gt, ann


def test_click_evidence_is_the_circles_and_a_ring_outside_the_roi():
    gt, ann = _square_case()
    lesion, normal = click_evidence(ann)
    roi = ann.roi_mask()
    assert lesion[50, 50] and not lesion[~roi].any()
    assert normal[90, 10]  # the normal circle
    assert normal[50, 22] and not normal[50, 10]  # a ring just outside the ROI, not beyond
    assert not normal[roi].any()
    assert not (lesion & normal).any()


def test_calibration_turns_a_low_but_right_map_into_the_right_mask():
    # The network drew the right shape at the wrong level: lesion 0.4, normal 0.05.
    gt, ann = _square_case()
    prob = np.where(gt, 0.4, 0.05).astype(np.float32)
    assert not (prob > 0.5).any()  # a plain 0.5 threshold loses the lesion entirely
    q = calibrate_to_clicks(prob, ann)
    assert q.min() == 0.0 and q.max() == 1.0
    assert np.array_equal(q > 0.5, gt)
    # A level shift of the whole map changes nothing after calibration.
    assert np.allclose(calibrate_to_clicks(prob + 0.3, ann), q, atol=1e-6)


def test_calibration_leaves_a_map_that_separates_nothing_alone():
    _, ann = _square_case()
    flat = np.full((100, 100), 0.4, np.float32)
    assert np.array_equal(calibrate_to_clicks(flat, ann), flat)


def test_class_balanced_bce_gives_each_class_half_the_loss():
    logit = torch.tensor([[0.0, 0.0, 0.0, 0.0, 2.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
    valid = torch.ones_like(target)
    ln2 = float(np.log(2.0))
    neg = (3 * ln2 + float(np.log1p(np.exp(2.0)))) / 4
    assert float(class_balanced_bce(logit, target, valid)) == pytest.approx((ln2 + neg) / 2)
    assert float(masked_bce(logit, target, valid)) == pytest.approx(
        (4 * ln2 + np.log1p(np.e**2)) / 5
    )
    # Ignored pixels count for nothing; one class alone is its own mean.
    valid = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
    assert float(class_balanced_bce(logit, target, valid)) == pytest.approx(ln2)


def test_default_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() >= 1
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="--threads"):
            set_threads(bad)


def test_default_threads_leave_the_cores_other_processes_keep_busy(monkeypatch):
    import yoho.threads as threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    for others, expected in ((0.0, 4), (0.4, 4), (1.6, 2), (3.9, 1), (7.0, 1)):
        monkeypatch.setattr(threads, "busy_cores_of_others", lambda interval=0.3, o=others: o)
        assert default_threads() == expected


def test_busy_cores_count_another_process_and_not_this_one():
    import subprocess
    import sys
    import threading
    import time

    from yoho.threads import available_cores, busy_cores_of_others

    # Against what the machine's other work keeps busy already: the suite may run beside
    # another job. A spinner is visible only where a core is left for it.
    before = busy_cores_of_others(0.5)
    if before <= available_cores() - 1:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.3)
            assert busy_cores_of_others(0.5) >= before + 0.5  # one more core spinning
        finally:
            spinner.kill()
            spinner.wait()
    before = busy_cores_of_others(0.5)
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])
    worker.start()  # this process spinning is not another job
    try:
        assert busy_cores_of_others(0.5) < before + 0.5
    finally:
        stop.set()
        worker.join()


def test_the_web_tool_measures_each_jobs_threads_when_it_starts(monkeypatch, tmp_path):
    # A server runs for days: the load it saw at start-up says little about the next job.
    import types

    import yoho.threads as threads
    import yoho.web.segment_job as segment_job

    measured = iter([2, 1])
    monkeypatch.setattr(threads, "default_threads", lambda: next(measured))
    sent = []
    monkeypatch.setattr(segment_job, "run_in_child", lambda fn, args, *rest: sent.append(args))
    store = types.SimpleNamespace(job_dir=lambda *a: tmp_path, image_path=lambda *a: tmp_path)
    job = types.SimpleNamespace(kind="segment", image_id="i", id="j", profile="tiny", seed=0)
    run = segment_job.make_runner(store, "cpu")
    run(job, None, None)
    run(job, None, None)
    assert [args[5] for args in sent] == [2, 1]  # the threads each child sets
    segment_job.make_runner(store, "cpu", threads=3)(job, None, None)  # --threads 3: fixed
    assert sent[-1][5] == 3


@pytest.mark.parametrize(
    "command", [["segment"], ["render-preview"], ["evaluate"], ["sweep"], ["serve"]]
)
def test_every_training_command_takes_threads(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--threads" in result.output


def _train_on_threads(profile, threads: int):
    image, gt = synthetic_endoscopy(size=128, seed=11)
    ann = simulate_annotation(image, gt)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        return segment(image, ann, profile, seed=0, device="cpu"), gt
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="needs torch built with MKL")
def test_thread_invariant_training_gives_the_same_bits_on_one_and_two_threads():
    profile = dataclasses.replace(get_profile("tiny"), thread_invariant=True)
    (one, gt), (two, _) = (_train_on_threads(profile, t) for t in (1, 2))
    assert one.curve == two.curve  # every step's loss, bit for bit
    assert np.array_equal(one.probability, two.probability)
    assert np.array_equal(one.mask, two.mask)
    assert dice(one.mask, two.mask) >= 0.98  # the stability goal, here met exactly


def test_thread_invariant_is_a_switch_of_the_evaluation_and_the_cli():
    profile, _ = apply_ablations(
        get_profile(DEFAULT_PROFILE), _square_case()[1], ("thread_invariant",)
    )
    assert profile.thread_invariant and not get_profile(DEFAULT_PROFILE).thread_invariant
    result = CliRunner().invoke(app, ["segment", "--help"], env={"COLUMNS": "200"})
    assert "--reproducible" in result.output


def test_grabcut_on_a_scaled_copy_keeps_the_seeds_and_the_answer():
    from yoho.postprocess import refine_mask

    image, gt = synthetic_endoscopy(size=320, seed=3)
    gt = np.asarray(gt, bool)
    ann = simulate_annotation(image, gt)
    prob = np.where(gt, 0.7, 0.3).astype(np.float32)
    post = get_profile(DEFAULT_PROFILE).post
    assert post.grabcut_max_pixels == 500_000  # 720 x 576 endoscopy frames stay full size
    full = refine_mask(
        prob, ann, dataclasses.replace(post, grabcut_max_pixels=None), 0.5, True, image
    )
    small = refine_mask(
        prob, ann, dataclasses.replace(post, grabcut_max_pixels=20_000), 0.5, True, image
    )
    assert dice(full, gt) > 0.85 and dice(small, gt) > 0.85 and dice(small, full) > 0.95
    roi = ann.roi_mask()
    lesion = np.zeros_like(gt)
    for c in ann.lesion_circles:
        yy, xx = np.ogrid[: gt.shape[0], : gt.shape[1]]
        lesion |= (yy - c.y) ** 2 + (xx - c.x) ** 2 <= (c.r - 1) ** 2
    assert not small[~roi].any() and small[lesion].all()
