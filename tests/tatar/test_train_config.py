"""Training configs: every shipped config loads and builds its TRL configs; bad configs fail
with the file and the key; the CLI turns them into one-line errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tatar.cli import app
from tatar.train.config import load_config

pytestmark = pytest.mark.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
SHIPPED = ("tiny-cpu", "paper-8gpu", "single-gpu-lora")
CHECKPOINTING_DEPRECATIONS = r"`(is_)?gradient_checkpointing` is deprecated"


def build_args(cfg):
    """The TRL config objects, as on the machine the config is for, except that this machine has
    no GPU: bf16 off and use_cpu on (TrainingArguments refuses bf16 without one)."""
    from tatar.train.grpo import grpo_args
    from tatar.train.sft import sft_args

    cpu = {"bf16": False, "use_cpu": True}
    with warnings.catch_warnings():  # transformers 5.x deprecated names: never passed
        warnings.filterwarnings("error", CHECKPOINTING_DEPRECATIONS, FutureWarning)
        return sft_args(cfg, "/tmp/unused-sft", **cpu), grpo_args(cfg, "/tmp/unused-grpo", **cpu)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_and_build_trl_configs(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    sft, grpo = build_args(cfg)
    assert sft.completion_only_loss is True and sft.remove_unused_columns is False
    assert sft.max_length is None  # vision sequences are never truncated
    assert grpo.remove_unused_columns is False
    assert (grpo.temperature, grpo.top_k, grpo.top_p, grpo.repetition_penalty) == (1.0, 0, 1.0, 1.0)
    assert grpo.reward_weights == [1.0, 1.0, 1.0]
    assert cfg.grpo.rewards.thurstone_weight == 1.0  # paper preset
    assert cfg.sft.thought_dropout == {"iqa": 0.8, "iaa": 0.0}
    # the files' gradient_checkpointing (transformers' deprecated name) as activation_checkpointing
    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert sft.activation_checkpointing is raw["sft"]["gradient_checkpointing"]
    assert grpo.activation_checkpointing is raw["grpo"]["gradient_checkpointing"]
    n = cfg.launch.num_processes
    # every prompt's completions fit in one generation batch
    assert (
        grpo.per_device_train_batch_size * n * grpo.steps_per_generation
    ) % grpo.num_generations == 0
    if name != "tiny-cpu":
        assert cfg.sft.args["bf16"] is True and cfg.grpo.args["bf16"] is True
        assert cfg.processor == {"min_pixels": 3136, "max_pixels": 1572864}
        assert cfg.model.init_kwargs["dtype"] == "bfloat16"
        assert (grpo.num_generations, grpo.beta, grpo.epsilon, grpo.max_completion_length) == (
            8,
            0.001,
            0.2,
            256,
        )
        # effective SFT batch 128, GRPO 128 completions (16 images) per step
        assert sft.per_device_train_batch_size * sft.gradient_accumulation_steps * n == 128
        assert grpo.per_device_train_batch_size * grpo.gradient_accumulation_steps * n == 128
        assert sft.num_train_epochs == 2 and grpo.vllm_mode == "colocate"


def test_paper_config_is_the_paper_setting():
    cfg = load_config(CONFIGS / "paper-8gpu.yaml")
    sft, grpo = build_args(cfg)
    assert cfg.model.path == "Qwen/Qwen2.5-VL-7B-Instruct" and cfg.peft is None
    assert cfg.launch.num_processes == 8
    assert (sft.per_device_train_batch_size, sft.gradient_accumulation_steps) == (8, 2)
    assert sft.learning_rate == 2e-5 and grpo.learning_rate == 1e-6
    assert grpo.loss_type == "grpo"
    acc = yaml.safe_load(cfg.launch.accelerate_config.read_text())
    assert acc["distributed_type"] == "DEEPSPEED" and acc["num_processes"] == 8
    ds = json.loads((REPO / acc["deepspeed_config"]["deepspeed_config_file"]).read_text())
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_lora_config_targets_only_the_language_model(tiny_model_dir):
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText

    from tatar.train.model import peft_config

    cfg = load_config(CONFIGS / "single-gpu-lora.yaml")
    lora = peft_config(cfg)
    assert lora.r == 64 and cfg.launch.accelerate_config is None
    model = get_peft_model(AutoModelForImageTextToText.from_pretrained(tiny_model_dir), lora)
    adapted = {n.split(".lora_")[0] for n, _ in model.named_parameters() if "lora_" in n}
    assert adapted and all("language_model" in n for n in adapted)
    assert any(n.endswith("mlp.down_proj") for n in adapted)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in trainable)


def test_accelerate_configs_point_at_existing_deepspeed_files():
    for path in sorted((CONFIGS / "accelerate").glob("*.yaml")):
        acc = yaml.safe_load(path.read_text())
        if acc["distributed_type"] == "DEEPSPEED":
            ds_file = REPO / acc["deepspeed_config"]["deepspeed_config_file"]
            stage = json.loads(ds_file.read_text())["zero_optimization"]["stage"]
            assert f"zero{stage}" in path.stem, path


def write(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


BASE = "model: {path: tiny}\ndata: {train: [{toy: {train_iqa: 2}}]}\n"


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ("data: {train: [{toy: {}}]}\n", "model", "missing"),
        (BASE + "sft: {learning_rat: 1.0e-5}\n", "sft.learning_rat", "unknown key"),
        (BASE + "sft: {output_dir: x}\n", "sft.output_dir", "set by TATAR"),
        (
            BASE + "grpo: {remove_unused_columns: true}\n",
            "grpo.remove_unused_columns",
            "set by TATAR",
        ),
        (BASE + "sft: {thought_dropout: {iqa: 1.2}}\n", "sft.thought_dropout.iqa", "[0, 1]"),
        (BASE + "sft: {thought_dropout: {vqa: 0.5}}\n", "sft.thought_dropout.vqa", "unknown key"),
        (
            BASE + "grpo: {num_generations: 3, per_device_train_batch_size: 8}\n",
            "grpo.num_generations",
            "must be divisible by num_generations (3)",
        ),
        (BASE + "grpo: {rewards: {preset: bogus}}\n", "grpo.rewards", "unknown reward preset"),
        (BASE + "grpo: {rewards: {tua: 0.1}}\n", "grpo.rewards", "unknown reward setting"),
        (BASE + "grpo: {top_k: 0.5}\n", "grpo.top_k", "integer"),
        (BASE + "peft: {rank: 8}\n", "peft.rank", "unknown key"),
        ("model: {path: tiny}\ndata: {train: [koniq.jsonl]}\n", "data.train[0]", "as a mapping"),
        (
            "model: {path: tiny}\ndata: {train: [{dataset: nosuch}]}\n",
            "data.train[0].dataset",
            "unknown data set",
        ),
        (
            "model: {path: tiny}\ndata: {train: [{toy: {train_iqa: -1}}]}\n",
            "data.train[0].toy",
            "must be >= 0",
        ),
        (
            "model: {path: tiny}\ndata: {train: [{toy: {}}], iqa_fraction: 1.0}\n",
            "data.iqa_fraction",
            "strictly between 0 and 1",
        ),
        (BASE + "data2: 1\n", "data2", "unknown key"),
        (
            "model: {path: ./nowhere}\n" + BASE[len("model: {path: tiny}\n") :],
            "model.path",
            "not a model folder",
        ),
        (
            BASE + "sft: {dataloader_persistent_workers: true}\n",
            "sft.dataloader_persistent_workers",
            "redrawn every epoch",
        ),
        (
            BASE + "sft: {gradient_checkpointing: true, activation_checkpointing: false}\n",
            "sft.gradient_checkpointing",
            "the older name of activation_checkpointing; give one of them",
        ),
        (
            BASE + "grpo: {gradient_checkpointing: maybe}\n",
            "grpo.gradient_checkpointing",
            "true/false",
        ),
        ("model: [1]\n", "model", "expected a mapping"),
        ("{", "", "not valid YAML"),
    ],
)
def test_bad_configs_name_the_file_and_the_key(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    if key:
        assert f": {key}: " in msg, msg
    assert problem in msg, msg


def test_checkpointing_under_either_name_reaches_trl_as_activation_checkpointing(tmp_path):
    """`gradient_checkpointing` (the configs' key, deprecated in transformers 5.x) is read as
    `activation_checkpointing`; TRL always gets the new name, set to TRL's own default (on) when
    neither is given, so no deprecation warning is raised either way (`build_args`)."""
    from trl import GRPOConfig, SFTConfig

    from tatar.train.config import default_activation_checkpointing
    from tatar.train.rundir import prepare_run_dir

    assert default_activation_checkpointing(SFTConfig) is True  # TRL's default
    assert default_activation_checkpointing(GRPOConfig) is True
    base = BASE + f"run_dir: {tmp_path / 'run'}\n"
    old_names = (
        "{gradient_checkpointing: false, gradient_checkpointing_kwargs: {use_reentrant: false}}"
    )
    for stages, expected, sft_kwargs in (
        (f"sft: {old_names}\ngrpo: {{gradient_checkpointing: true}}\n", (False, True), {"use_reentrant": False}),
        ("sft: {activation_checkpointing: true}\ngrpo: {activation_checkpointing: false}\n", (True, False), None),
        ("", (True, True), None),
    ):  # fmt: skip
        cfg = load_config(write(tmp_path, base + stages))
        given = {*cfg.sft.args, *cfg.grpo.args}
        assert not {"gradient_checkpointing", "gradient_checkpointing_kwargs"} & given
        sft, grpo = build_args(cfg)
        assert (sft.activation_checkpointing, grpo.activation_checkpointing) == expected
        assert sft.activation_checkpointing_kwargs == sft_kwargs
        assert sft.gradient_checkpointing is sft.activation_checkpointing  # transformers' mirror
    # command-line overrides (--gradient-checkpointing false) take either name too
    off = cfg.with_overrides("sft", {"gradient_checkpointing": False})
    assert off.sft.args["activation_checkpointing"] is False
    assert build_args(off)[0].activation_checkpointing is False
    both = {"gradient_checkpointing": True, "activation_checkpointing": True}
    with pytest.raises(ValueError, match="--gradient_checkpointing: the older name"):
        cfg.with_overrides("sft", both)
    with pytest.raises(ValueError, match="--gradient_checkpointing: expected true/false"):
        cfg.with_overrides("grpo", {"gradient_checkpointing": "often"})

    # a run folder written before the rename (config.resolved.json with the old name) resumes
    old = load_config(write(tmp_path, base + "sft: {gradient_checkpointing: false}\n"))
    prepare_run_dir(old, "sft")
    saved = tmp_path / "run" / "config.resolved.json"
    resolved = json.loads(saved.read_text())
    resolved["sft"]["gradient_checkpointing"] = resolved["sft"].pop("activation_checkpointing")
    saved.write_text(json.dumps(resolved))
    prepare_run_dir(old, "sft")
    resolved["sft"]["gradient_checkpointing"] = True
    saved.write_text(json.dumps(resolved))
    with pytest.raises(ValueError, match=r"differs in: sft.activation_checkpointing"):
        prepare_run_dir(old, "sft")


def test_missing_data_is_reported_when_read_with_the_config_key(tmp_path):
    from tatar.train.records import load_records

    path = write(tmp_path, "model: {path: tiny}\ndata: {train: [{records: nowhere.jsonl}]}\n")
    cfg = load_config(path)  # a config for another machine still loads
    with pytest.raises(
        FileNotFoundError, match=r"bad.yaml: data.train\[0\]: records file not found"
    ):
        load_records(cfg.data.train, cfg.run_dir)


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    for cmd in ("sft", "grpo"):
        result = runner.invoke(app, [cmd, "--config", str(tmp_path / "none.yaml")])
        assert result.exit_code == 2, result.output
        lines = [x for x in result.output.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: config file not found"), (
            result.output
        )
    bad = write(tmp_path, BASE + "sft: {learning_rat: 1}\n")
    result = runner.invoke(app, ["sft", "--config", str(bad)])
    assert result.exit_code == 2 and "sft.learning_rat: unknown key" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["--help"])
    assert " sft " in result.output and " grpo " in result.output
