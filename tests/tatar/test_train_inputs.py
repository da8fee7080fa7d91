"""Inputs checked before any model is loaded (one-line errors, exit 2), and models given as a
local folder or a hub id resolved from a local HF cache (never the network)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from typer.testing import CliRunner

from tatar.cli import app

pytestmark = pytest.mark.filterwarnings("ignore")


def _config(tmp_path, **sections):
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "model": {"path": "tiny"},
        "data": {"train": [{"toy": {"train_iqa": 4, "train_iaa": 4}}]},
        "sft": {"use_cpu": True, "bf16": False},
        "grpo": {"use_cpu": True, "bf16": False},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize(
    ("section", "value", "key", "problem"),
    [
        ("sft", {"num_train_epochs": -2}, "sft.num_train_epochs", "must be positive"),
        ("sft", {"learning_rate": "fast"}, "sft.learning_rate", "expected a number, got 'fast'"),
        ("sft", {"lr_scheduler_type": "cosin"}, "sft.lr_scheduler_type", "expected one of"),
        ("sft", {"max_steps": 0}, "sft.max_steps", "positive integer"),
        ("sft", {"bf16": "yes"}, "sft.bf16", "expected true/false"),
        ("grpo", {"beta": -0.1}, "grpo.beta", "must not be negative"),
        ("grpo", {"top_p": 1.5}, "grpo.top_p", "in [0, 1]"),
    ],
)
def test_bad_training_values_are_refused_naming_the_key(tmp_path, section, value, key, problem):
    path = _config(tmp_path, **{section: value})
    line = _one_line_error(CliRunner().invoke(app, ["sft", "--config", str(path)]))
    assert f"{path}: {key}: " in line and problem in line, line
    assert not (tmp_path / "run").exists()  # refused before anything was built


def test_a_yaml_number_written_as_text_is_read_as_a_number(tmp_path):
    from tatar.train.config import load_config

    cfg = load_config(_config(tmp_path, sft={"learning_rate": "1e-5"}))  # YAML reads 1e-5 as text
    assert cfg.sft.args["learning_rate"] == 1e-5


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_gpu_settings_without_a_gpu_are_one_line_errors(tmp_path, tiny_model_dir):
    path = _config(tmp_path, sft={"use_cpu": False, "bf16": True})
    line = _one_line_error(CliRunner().invoke(app, ["sft", "--config", str(path)]))
    assert "sft.bf16: true needs a CUDA GPU" in line
    assert not (tmp_path / "run").exists()
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    for cmd in (
        ["score", "--model", str(tiny_model_dir), str(image), "--device", "cuda"],
        ["eval", "--model", str(tiny_model_dir), "--dataset", "x.csv", "--device", "cuda:1"],
    ):
        if cmd[0] == "eval":
            (tmp_path / "x.csv").write_text("image,mos\na.png,50\n")
            cmd += ["--task", "iqa", "--scale", "0:100", "--out", str(tmp_path / "ev")]
            cmd[4] = str(tmp_path / "x.csv")
        line = _one_line_error(CliRunner().invoke(app, cmd))
        assert "no CUDA GPU" in line, line


def test_missing_records_are_reported_before_the_model_is_built(tmp_path):
    path = _config(tmp_path, data={"train": [{"records": "nowhere.jsonl"}]})
    line = _one_line_error(CliRunner().invoke(app, ["sft", "--config", str(path)]))
    assert "data.train[0]: records file not found" in line
    assert not (tmp_path / "run" / "base-model").exists()  # the tiny model was not even built


def test_unreadable_images_are_reported_before_the_model_is_built(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "empty.jpg").write_bytes(b"")
    (tmp_path / "img" / "text.png").write_text("not an image")
    records = tmp_path / "r.jsonl"
    records.write_text(
        "\n".join(
            json.dumps({"task": "iqa", "image": name, "gt_score": 50.0, "dataset": "koniq"})
            for name in ("empty.jpg", "text.png")
        )
        + "\n"
    )
    path = _config(
        tmp_path, data={"train": [{"records": str(records), "image_root": str(tmp_path / "img")}]}
    )
    line = _one_line_error(CliRunner().invoke(app, ["sft", "--config", str(path)]))
    assert "cannot read image" in line and "empty.jpg" in line
    assert not (tmp_path / "run" / "base-model").exists()


def test_a_full_grpo_run_refuses_a_trial_sft_model(tmp_path):
    from tatar.train.config import load_config
    from tatar.train.grpo import init_model

    cfg = load_config(_config(tmp_path))
    final = tmp_path / "run" / "sft" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    (final / "tatar_stage.json").write_text(json.dumps({"trial": True, "global_step": 4}))
    with pytest.raises(ValueError, match=r"is a trial SFT run \(4 steps\)"):
        init_model(cfg)
    assert init_model(cfg, trial=True) == str(final)  # a trial GRPO may start from it
    (final / "tatar_stage.json").write_text(json.dumps({"trial": False, "global_step": 40}))
    assert init_model(cfg) == str(final)


# ---------------------------------------------------------------------------------------------
# Models from the hub, resolved from a local HF cache


def fake_hub_cache(cache, repo_id, model_dir, commit="0123456789abcdef0123456789abcdef01234567"):
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "refs" / "v1").write_text(commit)
    return repo / "snapshots" / commit


def test_resolve_model_from_a_local_cache_offline(tmp_path, tiny_model_dir, monkeypatch):
    from tatar.hub import resolve_model

    cache = tmp_path / "hub"
    snapshot = fake_hub_cache(cache, "tatar-test/tiny-qwen", tiny_model_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    got = resolve_model("tatar-test/tiny-qwen")
    assert got.path.resolve() == snapshot.resolve()
    assert got.name == f"tatar-test/tiny-qwen@{snapshot.name}"
    assert resolve_model("tatar-test/tiny-qwen", revision="v1").path.resolve() == snapshot.resolve()
    with pytest.raises(FileNotFoundError, match="not in the HF cache .* HF_HUB_OFFLINE is set"):
        resolve_model("tatar-test/not-cached")
    with pytest.raises(FileNotFoundError, match="not in the HF cache"):
        resolve_model("tatar-test/tiny-qwen", revision="v2")
    # local folders: no hub involved, a revision makes no sense
    assert resolve_model(tiny_model_dir).path == tiny_model_dir.resolve()
    with pytest.raises(ValueError, match="--revision applies to a hub id"):
        resolve_model(tiny_model_dir, revision="main")
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        resolve_model("./no/such/folder")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model(tmp_path)


def test_score_with_a_hub_id_resolves_from_the_local_cache(tmp_path, tiny_model_dir, monkeypatch):
    from PIL import Image

    cache = tmp_path / "hub"
    fake_hub_cache(cache, "tatar-test/tiny-qwen", tiny_model_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (120, 30, 30)).save(image)
    args = ["score", "--model", "tatar-test/tiny-qwen", str(image), "--task", "iqa"]
    result = CliRunner().invoke(app, [*args, "--json", "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("[") :])
    assert out[0]["task"] == "iqa"
    result = CliRunner().invoke(app, [*args, "--revision", "main", "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    line = _one_line_error(
        CliRunner().invoke(app, ["score", "--model", "tatar-test/absent", str(image)])
    )
    assert "not in the HF cache" in line


# ---------------------------------------------------------------------------------------------
# Command-line overrides of training-argument fields, and experiment trackers


def test_trl_style_overrides_reach_the_stage_and_are_checked(tmp_path):
    from tatar.train.config import load_config, parse_overrides

    assert parse_overrides(
        ["--learning_rate", "1e-5", "--bf16=false", "--gradient-checkpointing"]
    ) == {
        "learning_rate": "1e-5",
        "bf16": False,
        "gradient_checkpointing": True,
    }
    cfg = load_config(_config(tmp_path))
    over = cfg.with_overrides("sft", parse_overrides(["--learning_rate", "1e-5", "--seed", "3"]))
    assert over.sft.args["learning_rate"] == 1e-5 and over.sft.args["seed"] == 3
    assert over.resolved()["sft"]["learning_rate"] == 1e-5  # part of what shaped the run
    grpo = cfg.with_overrides("grpo", {"beta": 0.0})
    assert grpo.grpo.args["beta"] == 0.0 and "beta" not in grpo.sft.args

    runner = CliRunner()
    path = _config(tmp_path)
    for args, problem in (
        (["--learning_rate", "fast"], "--learning_rate: expected a number, got 'fast'"),
        (["--num_train_epochs", "-2"], "--num_train_epochs: must be positive"),
        (["--learning_rat", "1"], "--learning_rat: not a field of trl.SFTConfig"),
        (["--output_dir", "x"], "--output_dir: set by TATAR"),
        (["stray"], "unexpected argument 'stray'"),
        # Both were accepted and the last one trained.
        (["--learning_rate", "1e-5", "--learning-rate=2e-5"], "--learning_rate is given twice"),
        (["--report-to", "none", "--report_to", "tensorboard"], "--report-to is given twice"),
    ):
        line = _one_line_error(runner.invoke(app, ["sft", "--config", str(path), *args]))
        assert problem in line, line
    assert not (tmp_path / "run").exists()


def test_report_to_from_config_or_command_line(tmp_path, monkeypatch):
    from tatar.train import config as config_mod
    from tatar.train.config import check_report_to, load_config

    assert check_report_to("none") == [] and check_report_to([]) == []
    assert check_report_to("tensorboard,wandb") == ["tensorboard", "wandb"]
    with pytest.raises(ValueError, match="unknown tracker 'mlflow'"):
        check_report_to(["mlflow"])
    cfg = load_config(_config(tmp_path, sft={"report_to": ["trackio"]}))
    assert cfg.sft.args["report_to"] == ["trackio"]
    assert load_config(_config(tmp_path)).sft.args["report_to"] == []  # off by default

    # a tracker whose package is missing stops the run before anything is built
    monkeypatch.setattr(config_mod, "missing_reporters", lambda names: list(names))
    path = _config(tmp_path)
    line = _one_line_error(
        CliRunner().invoke(app, ["sft", "--config", str(path), "--report-to", "wandb"])
    )
    assert "sft.report_to: wandb is not installed; pip install -e '.[wandb]'" in line
    assert not (tmp_path / "run" / "base-model").exists()
