"""The `tatar` commands: scoring output, one-line errors with exit code 2, the demo."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from tatar.cli import app
from tatar.datasets import shared_data_dir

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def assert_one_line_error(code, output, match):
    assert code == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], output


def test_help_lists_the_commands():
    code, out = run("--help")
    assert code == 0
    for cmd in ("tiny-model", "eval", "score", "demo", "datasets"):
        assert cmd in out


def test_user_errors_are_one_line(tmp_path, tiny_model_dir):
    img = tmp_path / "a.png"
    Image.new("RGB", (32, 32)).save(img)
    assert_one_line_error(
        *run("eval", "--model", tmp_path, "--dataset", "clive", "--out", tmp_path / "o"),
        "not a model folder",
    )
    assert_one_line_error(
        *run("eval", "--model", tiny_model_dir, "--dataset", "nosuchset", "--out", tmp_path / "o"),
        "neither a known dataset",
    )
    # AVA's labels come from ../shared/data; without them the label file is named first.
    have_ava = (shared_data_dir() / "benchmarks" / "vr" / "IAA_AVA.json").is_file()
    assert_one_line_error(
        *run("eval", "--model", tiny_model_dir, "--dataset", "AVA", "--out", tmp_path / "o"),
        "needs --image-root" if have_ava else "label file of AVA not found",
    )
    # a fixed-choice option refuses other values at parsing, listing the allowed ones
    code, out = run(
        "eval",
        "--model",
        tiny_model_dir,
        "--dataset",
        "clive",
        "--think",
        "maybe",
        "--out",
        tmp_path / "o",
        "--limit",
        "1",
    )
    flat = " ".join(out.replace("│", " ").split())
    assert code == 2 and "Traceback" not in out and "must be one of auto, force, suppress" in flat
    assert_one_line_error(
        *run("score", "--model", tiny_model_dir, tmp_path / "missing.png"), "image not found"
    )
    code, out = run("score", "--model", tiny_model_dir, "--task", "vqa", img)
    flat = " ".join(out.replace("│", " ").split())
    assert code == 2 and "Traceback" not in out and "'vqa' is not one of" in flat
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "f").write_text("x")
    assert_one_line_error(*run("tiny-model", "--out", tmp_path / "m"), "--overwrite")


def test_score_json_with_samples(tiny_model_dir, tmp_path):
    imgs = []
    for i in range(2):
        imgs.append(tmp_path / f"{i}.png")
        Image.new("RGB", (64 + 32 * i, 64), (i * 90, 40, 200)).save(imgs[-1])
    args = [
        "score",
        "--model",
        tiny_model_dir,
        *imgs,
        "--json",
        "--samples",
        2,
        "--max-new-tokens",
        6,
    ]
    result = runner.invoke(app, [str(a) for a in [*args, "--think", "suppress", "--backend", "hf"]])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)  # stdout is pure JSON; progress bars go to stderr
    assert [(r["image"], r["task"]) for r in results] == [
        (str(imgs[0]), "iqa"),
        (str(imgs[0]), "iaa"),
        (str(imgs[1]), "iqa"),
        (str(imgs[1]), "iaa"),
    ]
    for r in results:
        assert len(r["completions"]) == 2 and all(
            c.startswith("<answer>") for c in r["completions"]
        )
        assert set(r) == {"image", "task", "score", "std", "parse_rate", "rationale", "completions"}
    code, out = run(
        "score",
        "--model",
        tiny_model_dir,
        imgs[0],
        "--task",
        "iqa",
        "--max-new-tokens",
        "4",
        "--backend",
        "hf",
    )
    assert code == 0 and "IQA" in out


@pytest.mark.shared_data
def test_demo_runs(tmp_path, shared_data):
    from tatar.demo import run as demo_run

    demo_run(tmp_path)
    assert (tmp_path / "tiny-model" / "config.json").is_file()
    summary = (tmp_path / "eval" / "summary.md").read_text()
    assert "| IQA | CLIVE | 8 |" in summary and "| IAA | PARA | 8 |" in summary
    # The training part: both stages ran, logged and plotted, and both models were evaluated.
    for stage in ("sft", "grpo"):
        assert (tmp_path / "train" / stage / "final" / "config.json").is_file()
        assert (tmp_path / "train" / stage / "curves.png").stat().st_size > 0
        for task in ("iqa", "iaa"):
            metrics = json.loads(
                (tmp_path / f"eval-{stage}" / f"toy-{task}" / "metrics.json").read_text()
            )
            assert metrics["n"] == 16
