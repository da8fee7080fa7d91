"""SFT: thought-dropout rates, the assistant-only mask under both padding sides, end-of-turn
targets, and a short resumable run on the tiny checkpoint."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset
from PIL import Image

from tatar.parsing import has_think
from tatar.train.dropout import SFTTransform, drop_mask, end_of_turn

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def write_config(path, tiny_model_dir, run_dir, **sections):
    cfg = {
        "run_dir": str(run_dir),
        "model": {"path": str(tiny_model_dir)},
        "data": {
            "train": [{"toy": {"train_iqa": 6, "train_iaa": 6, "test_iqa": 2, "test_iaa": 2}}]
        },
        "sft": {
            "use_cpu": True,
            "bf16": False,
            "gradient_checkpointing": False,
            "per_device_train_batch_size": 4,
            "learning_rate": 1e-3,
            "save_steps": 1,
        },
        "launch": {"cpu_threads": 1},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path.write_text(yaml.safe_dump(cfg))
    return path


def rows_dataset(n, rationale="Strong blur; edges are soft."):
    tasks = ["iqa" if i % 2 == 0 else "iaa" for i in range(n)]
    return Dataset.from_dict(
        {
            "index": list(range(n)),
            "id": [f"r{i}" for i in range(n)],
            "task": tasks,
            "image": ["unused.png"] * n,
            "solution": [float(i % 101) for i in range(n)],
            "rationale": [rationale] * n,
        }
    )


# ---------------------------------------------------------------------------------------------
# Thought dropout


def test_dropout_rates_on_2000_samples_per_epoch_and_seeded(processor):
    # 2,000 samples, 1,000 per task. Tolerance 0.04 = 3.2 binomial standard deviations at
    # p = 0.8, n = 1000 (sqrt(0.8 * 0.2 / 1000) = 0.0126); IAA at 0.0 must never drop.
    ds = rows_dataset(2000)
    transform = SFTTransform(processor, {"iqa": 0.8, "iaa": 0.0}, seed=7, load_images=False)
    ds.set_transform(transform)
    kept = {}
    for epoch in (0, 1, 2):
        transform.epoch = epoch
        batch = ds[:]
        think = np.array([has_think(c) for c in batch["completion"]])
        tasks = np.array(batch["task"])
        iqa_drop = 1.0 - think[tasks == "iqa"].mean()
        assert abs(iqa_drop - 0.8) < 0.04, (epoch, iqa_drop)
        assert think[tasks == "iaa"].all()
        assert batch["has_think"] == think.tolist()
        kept[epoch] = think[tasks == "iqa"]
    # a new, independent draw every epoch: agreement of two epochs ~ p^2 + (1-p)^2 = 0.68
    agree = (kept[0] == kept[1]).mean()
    assert 0.62 < agree < 0.74 and not np.array_equal(kept[0], kept[1])
    # pure function of (seed, epoch, index): batch order and re-reading do not matter
    transform.epoch = 1
    reverse = [ds[i]["has_think"] for i in range(1998, -1, -2)]  # the IQA rows, backwards
    assert reverse == [bool(kept[1][i // 2]) for i in range(1998, -1, -2)]
    other_seed = drop_mask(8, 1, range(0, 2000, 2), ["iqa"] * 1000, {"iqa": 0.8})
    assert not np.array_equal(~other_seed, kept[1])


def test_other_rates_and_validation(processor):
    ds = rows_dataset(2000)
    transform = SFTTransform(processor, {"iqa": 0.25, "iaa": 0.6}, seed=0, load_images=False)
    ds.set_transform(transform)
    batch = ds[:]
    think = np.array([has_think(c) for c in batch["completion"]])
    tasks = np.array(batch["task"])
    assert abs((1 - think[tasks == "iqa"].mean()) - 0.25) < 0.04
    assert abs((1 - think[tasks == "iaa"].mean()) - 0.6) < 0.045
    with pytest.raises(ValueError, match="must lie in"):
        SFTTransform(processor, {"iqa": 1.5}, seed=0, load_images=False)


def test_targets_end_with_end_of_turn_and_answer_only_without_rationale(processor):
    eot = end_of_turn(processor)
    assert eot == "<|im_end|>"
    ds = Dataset.from_dict(
        {
            "index": [0, 1, 2],
            "id": ["a", "b", "c"],
            "task": ["iaa", "iaa", "iqa"],
            "image": ["x.png"] * 3,
            "solution": [61.25, 23.0, 99.999],
            "rationale": ["Balanced framing, vivid colour.", None, "Clean and sharp."],
        }
    )
    transform = SFTTransform(processor, {"iqa": 0.0, "iaa": 0.0}, seed=0, load_images=False)
    ds.set_transform(transform)
    rows = ds[:]
    assert rows["completion"] == [
        "<think>\nBalanced framing, vivid colour.\n</think>\n<answer>61.25</answer><|im_end|>",
        "<answer>23.00</answer><|im_end|>",  # no rationale: answer-only
        "<think>\nClean and sharp.\n</think>\n<answer>100.00</answer><|im_end|>",
    ]
    # the prompt is exactly what evaluation and GRPO render
    from tatar.generation import prompt_text

    assert rows["prompt"][0] == prompt_text(processor, "iaa")
    assert rows["prompt"][2].endswith("<|im_start|>assistant\n")


# ---------------------------------------------------------------------------------------------
# Assistant-only mask


def _examples(processor):
    transform = SFTTransform(processor, {"iqa": 0.0, "iaa": 0.0}, seed=0, load_images=False)
    rows = [
        ("iqa", 61.25, None, (56, 56)),
        (
            "iaa",
            23.0,
            "A long narrative: balanced framing, vivid colour, strong impact.",
            (112, 84),
        ),
        ("iqa", 7.5, "Severe noise.", (84, 84)),
    ]
    examples = []
    for i, (task, gt, rationale, size) in enumerate(rows):
        out = transform(
            {
                "index": [i],
                "task": [task],
                "solution": [gt],
                "rationale": [rationale],
                "image": [""],
            }
        )
        examples.append(
            {
                "prompt": out["prompt"][0],
                "completion": out["completion"][0],
                "image": Image.new("RGB", size, (40 * i, 90, 160)),
            }
        )
    return examples


def _left_pad(batch):
    """The same batch re-aligned to the right edge (left padding), every per-token tensor moved
    with its tokens: what a left-padding collator such as the released one produces."""
    mask = batch["attention_mask"]
    out = dict(batch)
    length = mask.shape[1]
    for key in ("input_ids", "attention_mask", "labels", "mm_token_type_ids"):
        t = batch[key]
        fill = {"input_ids": 0, "attention_mask": 0, "labels": -100, "mm_token_type_ids": 0}[key]
        new = torch.full_like(t, fill)
        for i in range(t.shape[0]):
            n = int(mask[i].sum())
            new[i, length - n :] = t[i, :n]
        out[key] = new
    return out


def _check_rows(batch, examples, tokenizer, side):
    eot_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for i, ex in enumerate(examples):
        labels = batch["labels"][i]
        pos = torch.nonzero(labels != -100).flatten()
        assert len(pos) > 0
        # one contiguous run ...
        assert (pos.diff() == 1).all(), side
        # ... holding exactly the completion's tokens, the last one the end-of-turn token
        want = tokenizer(ex["completion"], add_special_tokens=False).input_ids
        got = labels[pos].tolist()
        assert got == want, side
        assert got[-1] == eot_id
        assert tokenizer.decode(got) == ex["completion"]
        # the labelled tokens are the row's own tokens, and are the last real tokens of the row
        assert batch["input_ids"][i, pos].tolist() == want
        real = torch.nonzero(batch["attention_mask"][i]).flatten()
        assert pos[-1] == real[-1] and len(real) > len(pos)


def test_mask_is_exactly_completion_plus_end_of_turn_for_both_padding_sides(
    processor, tiny_model_dir
):
    from transformers import AutoModelForImageTextToText
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    examples = _examples(processor)
    collator = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
    right = collator([dict(e) for e in examples])
    lengths = right["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) == 3  # rows of three different lengths
    # right-padded (what TRL's collator returns)
    assert (right["attention_mask"][:, 0] == 1).all()
    _check_rows(right, examples, processor.tokenizer, "right")
    # left-padded: the same rows moved to the right edge
    left = _left_pad(right)
    assert (left["attention_mask"][:, -1] == 1).all() and (left["attention_mask"][:, 0] == 0).any()
    _check_rows(left, examples, processor.tokenizer, "left")
    # the tokenizer's own padding side does not change TRL's collation
    processor.tokenizer.padding_side = "left"
    try:
        again = collator([dict(e) for e in examples])
    finally:
        processor.tokenizer.padding_side = "right"
    assert torch.equal(again["labels"], right["labels"])

    # the released mask (labels[i, :prompt_len_i] = -100 on left-padded rows) trains on prompt
    # tokens of every row but the longest: the check above would catch it
    prompt_lens = [
        len(processor(text=[e["prompt"]], images=[e["image"]]).input_ids[0]) for e in examples
    ]
    released = left["input_ids"].clone()
    released[left["attention_mask"] == 0] = -100
    for i, n in enumerate(prompt_lens):
        released[i, :n] = -100
    leaked = [
        (released[i] != -100).sum().item() - (left["labels"][i] != -100).sum().item()
        for i in range(3)
    ]
    assert sorted(leaked)[0] == 0 and max(leaked) > 0

    # and the model's loss is the same for both paddings (positions follow the attention mask)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        loss_right = model(**right).loss.item()
        loss_left = model(**left).loss.item()
    assert math.isfinite(loss_right) and loss_left == pytest.approx(loss_right, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# A short run: run folder, logs, curves, resume


# transformers 5.x: "`gradient_checkpointing` is deprecated ... Use `activation_checkpointing`"
# (TrainingArguments) and "`is_gradient_checkpointing` is deprecated ..." (the model property).
CHECKPOINTING_DEPRECATIONS = r"`(is_)?gradient_checkpointing` is deprecated"


def test_sft_checkpointing_without_deprecated_names(tiny_model_dir, tmp_path):
    """The configs' `gradient_checkpointing: true` reaches transformers as activation
    checkpointing, without its deprecation warnings, and the model really checkpoints."""
    from tatar.train.config import load_config
    from tatar.train.rundir import prepare_run_dir
    from tatar.train.sft import build_sft_trainer

    config = write_config(
        tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run", sft={"gradient_checkpointing": True}
    )
    cfg = load_config(config)
    prepare_run_dir(cfg, "sft")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", CHECKPOINTING_DEPRECATIONS, FutureWarning)
        trainer, _ = build_sft_trainer(cfg, progress=False, max_steps=1, save_strategy="no")
        assert trainer.args.activation_checkpointing is True
        trainer.train()  # the Trainer turns checkpointing on here
    model = trainer.accelerator.unwrap_model(trainer.model)
    assert model.is_activation_checkpointing


def test_sft_runs_writes_the_run_folder_and_resumes(tiny_model_dir, tmp_path, capsys):
    from tatar.train.config import load_config
    from tatar.train.sft import run_sft

    config = write_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    cfg = load_config(config)
    run_sft(cfg, progress=False, max_steps=2)
    run = tmp_path / "run"
    assert (run / "config.yaml").read_text() == config.read_text()
    assert json.loads((run / "config.resolved.json").read_text())["sft"]["thought_dropout"] == {
        "iqa": 0.8,
        "iaa": 0.0,
    }
    for name in ("log_history.jsonl", "curves.png", "checkpoint-1", "checkpoint-2", "final"):
        assert (run / "sft" / name).exists(), name
    history = [json.loads(x) for x in (run / "sft" / "log_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "loss" in h] == [1, 2]

    # an interrupted run: remove the final model and the last checkpoint, run for 3 steps
    import shutil

    shutil.rmtree(run / "sft" / "final")
    shutil.rmtree(run / "sft" / "checkpoint-2")
    capsys.readouterr()
    run_sft(cfg, progress=False, max_steps=3)
    out = capsys.readouterr().out
    assert "resuming from" in out and "checkpoint-1" in out
    history = [json.loads(x) for x in (run / "sft" / "log_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3]  # no duplicates
    assert (run / "sft" / "final" / "config.json").is_file()
    # a trial run (max_steps) is never the finished stage: its final model says so
    stage = json.loads((run / "sft" / "final" / "tatar_stage.json").read_text())
    assert (stage["trial"], stage["global_step"], stage["planned_steps"]) == (True, 3, 3)
    card = (run / "sft" / "final" / "README.md").read_text()
    assert "Trial run" in card and f"Base model: `{tiny_model_dir}`" in card
    assert "Commit" in card or "commit" in card
    run_sft(cfg, progress=False, max_steps=3)
    assert "trial run of 3 steps already done" in capsys.readouterr().out
    # the full plan (12 rows, batch 4, 3 epochs = 9 steps) continues from the trial's checkpoint
    run_sft(cfg, progress=False)
    out = capsys.readouterr().out
    assert "resuming from" in out and "checkpoint-3" in out
    stage = json.loads((run / "sft" / "final" / "tatar_stage.json").read_text())
    assert (stage["trial"], stage["global_step"], stage["planned_steps"]) == (False, 9, 9)
    assert stage["base_model"] == str(tiny_model_dir) and stage["stage"] == "sft"
    # a finished stage is not trained again
    run_sft(cfg, progress=False)
    assert "already finished" in capsys.readouterr().out

    # another config in the same folder is refused
    other = write_config(
        tmp_path / "d.yaml", tiny_model_dir, run, sft={"thought_dropout": {"iqa": 0.5}}
    )
    with pytest.raises(ValueError, match=r"different config \(differs in: sft.thought_dropout.iqa"):
        run_sft(load_config(other), progress=False)

    # GRPO settings may still change: the GRPO stage has not started in this folder
    retuned = write_config(tmp_path / "e.yaml", tiny_model_dir, run, grpo={"learning_rate": 1e-7})
    run_sft(load_config(retuned), progress=False)
    assert "already finished" in capsys.readouterr().out
