"""bench/gpu_check_tatar.py is only run for real on a lent GPU machine; its --smoke mode runs
the same code path on CPU at tiny sizes, so the script cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_runs_sft_and_grpo_and_writes_figures(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check_tatar.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["smoke"] is True
    assert result["sft"]["steps"] == 4 and len(result["sft"]["step_times_s"]) == 4
    assert result["grpo"]["sampling"] == {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
    assert result["grpo"]["rollout_tokens"] > 0 and result["grpo"]["rollout_tokens_per_s"] > 0
    # The CPU-vs-GPU checks run on CPU too (the GPU half of `forward` needs CUDA).
    assert result["check_loss_mask"]["ok"] and len(result["check_loss_mask"]["rows"]) == 2
    rewards = result["check_rewards"]
    assert rewards["ok"] and rewards["calls"] == 9 and rewards["max_abs_diff"] == 0.0
    assert result["check_forward"]["supervised_tokens"] > 0
    assert result["check_forward"]["loss_cpu_fp32"] > 0
    breakdown = result["sft_breakdown"]
    assert breakdown["rows"] == 2 and breakdown["model_fwd_bwd_s"] > 0


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gpu_check_tatar", ROOT / "bench" / "gpu_check_tatar.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loss_mask_check_rejects_a_mask_that_covers_the_prompt():
    import torch

    from tatar.parsing import format_completion
    from tatar.tiny_model import build_tokenizer

    check = _load_script().check_loss_mask
    tok = build_tokenizer(1024)
    prompt = tok("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>rate<|im_end|>\n"
                 "<|im_start|>assistant\n")["input_ids"]  # fmt: skip
    completion = tok(format_completion(71.5) + "<|im_end|>")["input_ids"]
    ids = torch.tensor([prompt + completion])
    right = torch.tensor([[-100] * len(prompt) + completion])
    assert check(right, ids, tok)["ok"]
    # The released collator's bug: the tail of the prompt trained too.
    leaky = torch.tensor([[-100] * (len(prompt) - 3) + prompt[-3:] + completion])
    assert not check(leaky, ids, tok)["ok"]
    # A completion cut before its end-of-turn token.
    cut = torch.tensor([[-100] * len(prompt) + completion[:-1] + [-100]])
    assert not check(cut, ids, tok)["ok"]


def test_reward_recorder_detects_a_changed_reward():
    recorder_cls = _load_script().RewardRecorder
    from tatar.parsing import format_completion
    from tatar.rewards import reward_functions

    funcs, _ = reward_functions("paper")
    recorder = recorder_cls(funcs)
    texts = [format_completion(s) for s in (20.0, 55.0, 80.0, 90.0)]
    columns = {
        "task": ["iqa_score"] * 4,
        "solution": [22.0, 50.0, 85.0, 30.0],
        "group": [0, 1, 2, 3],
    }
    for fn in recorder.funcs:
        fn(completions=texts, **columns)
    assert recorder.compare_on_cpu("paper")["ok"]
    recorder.calls[1]["values"][0] += 0.25  # what a GPU-side difference would look like
    changed = recorder.compare_on_cpu("paper")
    assert not changed["ok"] and abs(changed["max_abs_diff"] - 0.25) < 1e-9
