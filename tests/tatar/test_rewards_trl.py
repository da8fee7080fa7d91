"""The reward callables inside TRL's own GRPOTrainer (one step on the tiny model, CPU)."""

from __future__ import annotations

import pytest


def test_rewards_run_inside_grpo_trainer(tiny_model_dir, tmp_path):
    from datasets import Dataset
    from PIL import Image
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from tatar.prompts import build_messages
    from tatar.rewards import reward_functions

    seen = []
    funcs, weights = reward_functions("paper")

    def spy(fn):
        def wrapped(**kwargs):
            out = fn(**kwargs)
            seen.append((fn.__name__, kwargs, out))
            return out

        wrapped.__name__ = fn.__name__
        return wrapped

    tasks = ["iaa", "iaa", "iqa", "iaa"]
    data = Dataset.from_dict(
        {
            "prompt": [build_messages(t) for t in tasks],
            "image": [Image.new("RGB", (64, 64), (60 * i, 100, 50)) for i in range(4)],
            "task": tasks,
            "solution": [70.0, 30.0, 50.0, 55.0],
            "group": ["a", "b", "c", "d"],
        }
    )
    config = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=8,
        max_steps=1,
        use_cpu=True,
        bf16=False,
        remove_unused_columns=False,
        report_to=[],
        beta=0.0,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        reward_weights=weights,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[spy(f) for f in funcs],
        args=config,
        train_dataset=data,
        processing_class=AutoProcessor.from_pretrained(tiny_model_dir),
    )
    trainer.train()

    assert [name for name, _, _ in seen] == ["format_reward", "score_gaussian", "iaa_thurstone"]
    for _, kwargs, out in seen:
        completions = kwargs["completions"]
        assert len(completions) == 8 and len(out) == 8
        assert completions[0][0]["role"] == "assistant"
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in out)
        # each prompt's generations arrive contiguous, with their columns aligned
        groups = kwargs["group"]
        assert groups[:4] == [groups[0]] * 4 and groups[4:] == [groups[4]] * 4
        by_group = dict(zip(data["group"], data["task"], strict=True))
        assert kwargs["task"] == [by_group[g] for g in groups]
    logged = trainer.state.log_history[0]
    assert {"rewards/format_reward/mean", "rewards/iaa_thurstone/mean"} <= set(logged)


pytestmark = pytest.mark.filterwarnings("ignore")
