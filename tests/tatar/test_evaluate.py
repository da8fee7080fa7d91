"""Evaluation harness: outputs, metrics, resume, think probe; end to end on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from tatar.datasets import load_dataset
from tatar.evaluate import evaluate, probe_markdown
from tatar.generation import GenerationSettings
from tatar.outputs import JsonlStore


class ScriptedBackend:
    """Answers gt_100 + offset per image (from a lookup by image size), counting calls."""

    name = "scripted"

    def __init__(self, answers: dict[tuple[int, int], list[str]], fail_after: int | None = None):
        self.answers = answers
        self.calls = 0
        self.images = 0
        self.fail_after = fail_after

    def generate(self, images, tasks, settings, *, key=""):
        if self.fail_after is not None and self.images >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        self.images += len(images)
        return [
            [self._continue(a, settings.prefill) for a in self.answers[im.size]][: settings.samples]
            for im in images
        ]

    @staticmethod
    def _continue(answer: str, prefill: str) -> str:
        # what a model writes after the prefill: after "<answer>" it skips the think block
        if prefill == "<answer>" and "<answer>" in answer:
            return prefill + answer.split("<answer>", 1)[1]
        return answer if answer.startswith(prefill) else prefill + answer


def make_dataset(tmp_path, n=10, task="iqa"):
    rng = np.random.default_rng(0)
    rows, answers = [], {}
    for i in range(n):
        size = (20 + i, 20)
        name = f"img{i}.png"
        Image.new("RGB", size, (i * 20, 50, 50)).save(tmp_path / name)
        gt = float(rng.uniform(1, 5))
        rows.append(f"{name},{gt}")
        pred = (gt - 1) / 4 * 100 + rng.normal(0, 5)
        if i == 3:
            answers[size] = ["<answer>unclear</answer>"] * 3  # a parse failure
        else:
            answers[size] = [
                f"<think>\nlooks fine\n</think>\n<answer>{pred + d:.2f}</answer>"
                for d in (0, 2, -2)
            ]
    (tmp_path / "labels.csv").write_text("image,mos\n" + "\n".join(rows) + "\n")
    return load_dataset(tmp_path / "labels.csv", task=task, scale="1:5"), answers


def test_outputs_metrics_and_resume(tmp_path):
    ds, answers = make_dataset(tmp_path)
    out = tmp_path / "out"
    crashing = ScriptedBackend(answers, fail_after=4)
    settings = GenerationSettings(batch_size=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate(crashing, [ds], out, settings, model="m", n_resamples=100, progress=False)
    assert len(JsonlStore(out / "labels" / "samples.jsonl").read()) == 4  # first batch kept

    backend = ScriptedBackend(answers)
    (res,) = evaluate(
        lambda: backend, [ds], out, settings, model="m", n_resamples=100, progress=False
    )
    assert backend.images == 6 and res.generated == 6  # only the rest was generated
    folder = out / "labels"
    for f in ("samples.jsonl", "metrics.json", "scatter.png"):
        assert (folder / f).stat().st_size > 0
    assert (out / "summary.md").read_text().count("| IQA | labels | 10 | 10.0% |") == 1
    m = json.loads((folder / "metrics.json").read_text())
    records = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 10 and m["n"] == 10 and m["n_parsed"] == 9
    assert m["parse_failure_rate"] == pytest.approx(0.1)
    by_id = {r["id"]: r for r in records}
    pred = [by_id[s.id]["pred"] for s in ds.samples]
    gt = [s.gt_100 for s in ds.samples]
    valid = [(p, g) for p, g in zip(pred, gt, strict=True) if p is not None]
    assert m["valid_only"]["srcc"] == pytest.approx(
        stats.spearmanr(*zip(*valid, strict=True)).statistic
    )
    fill = np.median([p for p, _ in valid])
    filled = [fill if p is None else p for p in pred]
    assert m["scored"]["srcc"] == pytest.approx(stats.spearmanr(filled, gt).statistic)
    assert m["think"]["think_rate"] == pytest.approx(0.9)

    # a rerun generates nothing and does not even build the backend
    def no_backend():
        raise AssertionError("backend built on a complete rerun")

    (res2,) = evaluate(no_backend, [ds], out, settings, model="m", n_resamples=100, progress=False)
    assert res2.generated == 0 and res2.metrics["scored"]["srcc"] == m["scored"]["srcc"]
    # a different run into the same folder is refused
    with pytest.raises(ValueError, match="differs in: generation"):
        evaluate(
            no_backend, [ds], out, GenerationSettings(think="force"), model="m", progress=False
        )


def test_truncated_last_line_is_dropped(tmp_path):
    store = JsonlStore(tmp_path / "s.jsonl")
    store.append([{"id": "a", "v": 1}, {"id": "b", "v": 2}])
    with (tmp_path / "s.jsonl").open("a") as fh:
        fh.write('{"id": "c", "v"')
    assert list(store.read()) == ["a", "b"]
    store.append([{"id": "c", "v": 3}])
    assert list(store.read()) == ["a", "b", "c"]


def test_sampling_statistics_and_think_probe(tmp_path):
    ds, answers = make_dataset(tmp_path, n=6, task="iaa")
    per_mode = {}
    for mode in ("force", "suppress"):
        backend = ScriptedBackend(answers)
        settings = GenerationSettings(samples=3, think=mode)
        per_mode[mode] = evaluate(
            backend, [ds], tmp_path / mode, settings, model="m", n_resamples=0, progress=False
        )
    m = per_mode["suppress"][0].metrics
    assert m["sampling"]["samples_per_image"] == 3
    # answers were +0, +2, -2 around the prediction: population std sqrt(8/3)
    assert m["sampling"]["mean_pred_std"] == pytest.approx(np.sqrt(8 / 3), abs=1e-6)
    assert "Mean std" in (tmp_path / "suppress" / "summary.md").read_text()
    table = probe_markdown(per_mode)
    assert "force: SRCC / PLCC" in table and "| IAA | labels |" in table


@pytest.mark.shared_data
def test_cli_eval_end_to_end_on_the_tiny_model(tiny_model_dir, tmp_path, shared_data):
    """`tatar eval` on 8 CLIVE + 8 PARA images writes every output; a rerun resumes."""
    from typer.testing import CliRunner

    from tatar.cli import app

    out = tmp_path / "eval"
    args = ["eval", "--model", str(tiny_model_dir), "--dataset", "clive", "--dataset", "para"]
    args += [
        "--limit",
        "8",
        "--out",
        str(out),
        "--max-new-tokens",
        "8",
        "--batch-size",
        "8",
        "--bootstrap",
        "100",
        "--backend",
        "hf",
        "--quiet",
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    for name in ("CLIVE", "PARA"):
        for f in ("samples.jsonl", "metrics.json", "scatter.png"):
            assert (out / name / f).stat().st_size > 0
        assert len((out / name / "samples.jsonl").read_text().splitlines()) == 8
    summary = (out / "summary.md").read_text()
    assert "| IQA | CLIVE | 8 |" in summary and "| IAA | PARA | 8 |" in summary
    assert json.loads((out / "run.json").read_text())["generation"]["max_new_tokens"] == 8
    stamp = {n: (out / n / "samples.jsonl").stat().st_mtime_ns for n in ("CLIVE", "PARA")}
    lines = {n: (out / n / "samples.jsonl").read_text() for n in ("CLIVE", "PARA")}

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    for n in ("CLIVE", "PARA"):  # nothing regenerated or appended
        assert (out / n / "samples.jsonl").stat().st_mtime_ns == stamp[n]
        assert (out / n / "samples.jsonl").read_text() == lines[n]


@pytest.mark.shared_data
def test_cli_reasoning_probe_in_one_command(tiny_model_dir, tmp_path, shared_data):
    from typer.testing import CliRunner

    from tatar.cli import app

    out = tmp_path / "probe"
    args = [
        "eval",
        "--model",
        str(tiny_model_dir),
        "--dataset",
        "clive",
        "--dataset",
        "para",
        "--limit",
        "2",
    ]
    args += [
        "--out",
        str(out),
        "--max-new-tokens",
        "4",
        "--think",
        "force,suppress",
        "--bootstrap",
        "0",
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for mode, prefix in (("force", "<think>\n"), ("suppress", "<answer>")):
        rec = json.loads(
            (out / f"think-{mode}" / "PARA" / "samples.jsonl").read_text().splitlines()[0]
        )
        assert rec["completions"][0].startswith(prefix)
    probe = (out / "probe.md").read_text()
    assert "force: SRCC / PLCC" in probe and "suppress: think words" in probe
    assert set(json.loads((out / "probe.json").read_text())) == {"force", "suppress"}
