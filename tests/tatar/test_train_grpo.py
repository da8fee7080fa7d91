"""GRPO: one real TRL GRPOTrainer step on the tiny checkpoint logs every reward per task, with
explicit sampling; the per-task summary and the global-batch wrapper in one process."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import yaml

from tatar.rewards import RewardSettings, reward_functions, score_completions
from tatar.train.global_rewards import TaskMetrics, gather_batch, globalize, task_summary

pytestmark = pytest.mark.filterwarnings("ignore")


def write_config(path, tiny_model_dir, run_dir, **sections):
    cfg = {
        "run_dir": str(run_dir),
        "model": {"path": str(tiny_model_dir)},
        # 2 IQA + 2 IAA prompts, in order (no mixing), all in one generation batch
        "data": {
            "train": [{"toy": {"train_iqa": 2, "train_iaa": 2, "test_iqa": 1, "test_iaa": 1}}]
        },
        "grpo": {
            "init": "base",
            "use_cpu": True,
            "bf16": False,
            "gradient_checkpointing": False,
            "num_generations": 4,
            "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 2,
            "max_completion_length": 12,
            "max_steps": 1,
            "shuffle_dataset": False,
            "save_steps": 1,
        },
        "launch": {"cpu_threads": 1},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_grpo_step_logs_every_reward_per_task_with_explicit_sampling(tiny_model_dir, tmp_path):
    from transformers import GenerationConfig

    from tatar.train.config import load_config
    from tatar.train.grpo import build_grpo_trainer
    from tatar.train.model import save_final
    from tatar.train.rundir import final_dir, prepare_run_dir

    cfg = load_config(write_config(tmp_path / "g.yaml", tiny_model_dir, tmp_path / "run"))
    prepare_run_dir(cfg, "grpo")
    trainer, processor = build_grpo_trainer(cfg, progress=False)
    assert [f.__name__ for f in trainer.reward_funcs] == [
        "format_reward",
        "score_gaussian",
        "iaa_thurstone",
    ]
    assert trainer.args.remove_unused_columns is False
    assert trainer.args.beta == 0.001 and trainer.args.epsilon == 0.2
    assert trainer.args.loss_type == "grpo"
    seen = []
    for i, fn in enumerate(trainer.reward_funcs):

        def spy(fn=fn, **kwargs):
            out = fn(**kwargs)
            seen.append((fn.__name__, kwargs, out))
            return out

        spy.__name__ = fn.__name__
        trainer.reward_funcs[i] = spy

    # The tiny checkpoint ships Qwen2.5-VL-Instruct-like near-greedy defaults (top_k 1, top_p
    # 0.001, temperature 0.1). Without explicit values they leak into generation ...
    model = trainer.model
    leaked, _ = model._prepare_generation_config(GenerationConfig(do_sample=True))
    assert leaked.top_k == 1 and leaked.temperature == pytest.approx(0.1)
    # ... the trainer passes its own, which win
    effective, _ = model._prepare_generation_config(None, **trainer.generation_kwargs)
    assert (effective.temperature, effective.top_k, effective.top_p) == (1.0, 0, 1.0)
    assert effective.repetition_penalty == 1.0 and effective.do_sample

    trainer.train()
    save_final(trainer, processor, final_dir(cfg, "grpo"))

    # one generation batch: 4 prompts x 4 completions, each group contiguous and not collapsed
    calls = [c for c in seen if c[0] == "format_reward"]
    assert len(calls) == 1
    kwargs = calls[0][1]
    assert len(kwargs["completions"]) == 16
    assert sorted(set(kwargs["task"])) == ["iaa", "iqa"]
    groups = kwargs["group"]
    texts = [c[0]["content"] for c in kwargs["completions"]]
    for g in sorted(set(groups)):
        rows = [i for i, x in enumerate(groups) if x == g]
        assert rows == list(range(rows[0], rows[0] + 4))  # contiguous
        assert len({texts[i] for i in rows}) > 1  # sampled, not near-greedy copies
        assert len({kwargs["solution"][i] for i in rows}) == 1

    log = trainer.state.log_history[0]
    for task in ("iqa", "iaa"):
        for name in ("format_reward", "score_gaussian", "iaa_thurstone"):
            assert f"task/{task}/rewards/{name}" in log
        for key in (
            "reward",
            "completion_words",
            "completion_tokens",
            "think_share",
            "parse_failure",
            "count",
        ):
            assert f"task/{task}/{key}" in log
        assert log[f"task/{task}/count"] == 8
    assert log["batch/iaa_thurstone/iaa_groups"] == 2
    assert "kl" in log  # beta > 0: TRL logs the KL to the reference model
    # the figures are those of the completions the rewards saw
    expected = task_summary(
        kwargs["task"],
        texts,
        [len(x) for x in kwargs["completion_ids"]],
        {name: out for name, _, out in seen},
        [1.0, 1.0, 1.0],
    )
    for key, value in expected.items():
        assert log[key] == pytest.approx(value), key

    folder = tmp_path / "run" / "grpo"
    history = [json.loads(x) for x in (folder / "log_history.jsonl").read_text().splitlines()]
    assert history[0]["task/iqa/count"] == 8
    for name in ("curves.png", "checkpoint-1", "final/config.json"):
        assert (folder / name).exists(), name


# transformers 5.x: "`gradient_checkpointing` is deprecated ... Use `activation_checkpointing`"
# (TrainingArguments) and "`is_gradient_checkpointing` is deprecated ..." (the model property).
CHECKPOINTING_DEPRECATIONS = r"`(is_)?gradient_checkpointing` is deprecated"


def test_grpo_checkpointing_without_deprecated_names(tiny_model_dir, tmp_path):
    """The configs' `gradient_checkpointing: true` reaches transformers as activation
    checkpointing: setting up the trainer warns about no deprecated name, and the model really
    checkpoints. (The training step itself still warns about `is_gradient_checkpointing`, from
    TRL's own generation helpers, trl/models/utils.py, whatever the config says.)"""
    from tatar.train.config import load_config
    from tatar.train.grpo import build_grpo_trainer
    from tatar.train.rundir import prepare_run_dir

    grpo = {"gradient_checkpointing": True, "max_completion_length": 4, "save_strategy": "no"}
    cfg = load_config(
        write_config(tmp_path / "g.yaml", tiny_model_dir, tmp_path / "run", grpo=grpo)
    )
    prepare_run_dir(cfg, "grpo")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", CHECKPOINTING_DEPRECATIONS, FutureWarning)
        trainer, _ = build_grpo_trainer(cfg, progress=False)
    assert trainer.args.activation_checkpointing is True
    trainer.train()  # the Trainer turns checkpointing on here
    model = trainer.accelerator.unwrap_model(trainer.model)
    assert model.is_activation_checkpointing


def test_grpo_needs_the_sft_model_first(tiny_model_dir, tmp_path):
    from tatar.train.config import load_config
    from tatar.train.grpo import init_model

    cfg = load_config(
        write_config(tmp_path / "g.yaml", tiny_model_dir, tmp_path / "run", grpo={"init": "sft"})
    )
    with pytest.raises(FileNotFoundError, match="run `tatar sft --config"):
        init_model(cfg)


# ---------------------------------------------------------------------------------------------
# Per-task figures and the global wrapper (one process)


def batch():
    completions = [
        "<answer>60.00</answer>",
        "<think>\nSharp, clean.\n</think>\n<answer>52.50</answer>",
        "<answer>around 80</answer>",
        "<think>\nBalanced composition and warm light.\n</think>\n<answer>72.00</answer>",
        "<think>\nFlat light.\n</think>\n<answer>35.00</answer>",
        "<think>\nPleasant colours.\n</think>\n<answer>58.00</answer>",
    ]
    columns = {
        "task": ["iqa", "iqa", "iqa", "iaa", "iaa", "iaa"],
        "solution": [60.0, 60.0, 60.0, 70.0, 30.0, 55.0],
        "group": [0, 0, 0, 1, 2, 3],
    }
    return completions, columns


def test_task_summary_numbers():
    completions, columns = batch()
    terms = score_completions(completions, "paper", **columns)
    names = ["format_reward", "score_gaussian", "iaa_thurstone"]
    s = task_summary(
        columns["task"],
        completions,
        [5, 9, 6, 12, 8, 9],
        {n: terms[n] for n in names},
        [1.0, 2.0, 1.0],
    )
    assert s["task/iqa/count"] == 3 and s["task/iaa/count"] == 3
    assert s["task/iqa/parse_failure"] == pytest.approx(1 / 3)
    assert s["task/iaa/parse_failure"] == 0.0
    assert s["task/iqa/think_share"] == pytest.approx(1 / 3)
    assert s["task/iaa/think_share"] == 1.0
    assert s["task/iqa/completion_words"] == pytest.approx((1 + 5 + 2) / 3)  # tags count
    assert s["task/iqa/completion_tokens"] == pytest.approx(20 / 3)
    assert s["task/iqa/think_words"] == pytest.approx(2 / 3)
    for task, rows in (("iqa", slice(0, 3)), ("iaa", slice(3, 6))):
        for n in names:
            assert s[f"task/{task}/rewards/{n}"] == pytest.approx(terms[n][rows].mean())
        total = terms["format_reward"] + 2 * terms["score_gaussian"] + terms["iaa_thurstone"]
        assert s[f"task/{task}/reward"] == pytest.approx(total[rows].mean())


def test_global_wrapper_is_the_plain_function_in_one_process_and_logs():
    completions, columns = batch()
    funcs, weights = reward_functions("paper")
    thurstone = funcs[2]
    wrapped = globalize(thurstone)
    logged = {}
    out = wrapped(
        completions=[[{"role": "assistant", "content": c}] for c in completions],
        image=[object()] * 6,  # not sent anywhere
        log_metric=lambda k, v: logged.setdefault(k, v),
        **columns,
    )
    assert out == pytest.approx(thurstone(completions=completions, **columns))
    assert np.count_nonzero(out[3:]) == 3
    assert logged == {"batch/iaa_thurstone/iaa_groups": 3.0}
    merged, own = gather_batch({"a": [1, 2], "b": [3, 4]})
    assert merged == {"a": [1, 2], "b": [3, 4]} and own == slice(0, 2)
    with pytest.raises(ValueError, match="different lengths"):
        gather_batch({"a": [1], "b": [1, 2]})


def test_task_metrics_wrapper_logs_once_per_step():
    completions, columns = batch()
    funcs, weights = reward_functions(RewardSettings.preset("released"))
    metrics = TaskMetrics(funcs, weights)
    logged = []
    msgs = [[{"role": "assistant", "content": c}] for c in completions]
    for fn in metrics.funcs[:-1]:
        fn(completions=msgs, log_metric=lambda k, v: logged.append(k), **columns)
    assert logged == []  # nothing until the last reward function of the step
    metrics.funcs[-1](completions=msgs, log_metric=lambda k, v: logged.append(k), **columns)
    assert "task/iaa/rewards/iaa_pairwise_rank" in logged and "task/iqa/reward" in logged
    with pytest.raises(ValueError, match="distinct"):
        TaskMetrics([funcs[0], funcs[0]], [1.0, 1.0])
