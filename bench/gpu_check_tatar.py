"""TATAR training on a GPU: a few SFT and GRPO steps of a Qwen2.5-VL-3B-architecture model.

Nothing is downloaded: the model is built from the 3B configuration below with random weights
(bf16), with the project's small BPE tokenizer (the model keeps Qwen's 151,936-row embedding),
the standard Qwen2.5-VL processor with the training pixel limits, and synthetic 896 x 896 images
(1,024 image tokens each, about a KonIQ photo's budget). The stages run through the project's own
SFT and GRPO code (TRL's trainers) with the real settings: bf16, gradient checkpointing, SFT
batch 8 per device, GRPO G=8 with 8 completions per device, 256 new tokens (a random model never
stops early, so every rollout is the full 256), beta 0.001 with the reference model.

Printed and written to JSON: the step times (median after the first step), rollout tokens/s of
the generation (HF generate), and the peak GPU memory of each stage. Three checks that the GPU
path computes what the CPU path does:
  loss_mask  the first SFT batch of the GPU run: every row's supervised tokens are one contiguous
             span, right after the assistant header, that is a parseable completion ending in
             its one <|im_end|>, with no image token in it;
  rewards    every reward the GPU GRPO run computed equals a fresh CPU computation on the same
             completions and columns;
  forward    one SFT batch through the same small model: the masked loss on CPU (fp32) and on the
             GPU (fp32, and bf16 autocast) agree.

    bash bench/gpu_check.sh                                   # on the GPU machine
    .venv/bin/python bench/gpu_check_tatar.py --smoke         # CPU, tiny sizes (the test runs this)

Without a CUDA device and without --smoke it says so and exits 0 without writing anything
(`make bench` runs every script in bench/).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_check_tatar.json"

# Qwen2.5-VL-3B-Instruct's architecture (its config.json), field names of transformers'
# Qwen2_5_VLTextConfig / Qwen2_5_VLVisionConfig.
QWEN25_VL_3B = {
    "text": {
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [16, 24, 24],
        },
    },
    "vision": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "window_size": 112,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "tokens_per_second": 2,
    },
    "tie_word_embeddings": True,
}
# CPU smoke sizes: the same code path in seconds.
SMOKE = {
    "text": {
        "vocab_size": 1024,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [2, 3, 3],
        },
    },
    "vision": {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
        "window_size": 112,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "tokens_per_second": 2,
    },
    "tie_word_embeddings": False,
}


def build_model(folder: Path, sizes: dict, dtype: str, *, max_pixels: int) -> int:
    """Write a random-weight Qwen2.5-VL checkpoint of `sizes`; return its parameter count."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from tatar.tiny_model import SPECIAL_TOKENS, build_tokenizer, instruct_generation_config

    tokenizer = build_tokenizer(1024)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = {
        **sizes["text"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=sizes["vision"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=sizes["tie_word_embeddings"],
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config).to(getattr(torch, dtype))
    # Qwen2.5-VL-Instruct's near-greedy sampling defaults: the trainer must override them.
    model.generation_config = instruct_generation_config(ids)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    del model
    Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=3136, max_pixels=max_pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=qwen2_5_vl_chat_template,
    ).save_pretrained(folder)
    return n_params


def write_config(
    path: Path, run_dir: Path, model_dir: Path, smoke: bool, steps: tuple[int, int]
) -> Path:
    device = {"use_cpu": True, "bf16": False} if smoke else {"bf16": True}
    common = {
        **device,
        "gradient_checkpointing": not smoke,
        "save_strategy": "no",
        "logging_steps": 1,
    }
    cfg = {
        "run_dir": str(run_dir),
        "model": {
            "path": str(model_dir),
            "init_kwargs": {
                "dtype": "float32" if smoke else "bfloat16",
                "attn_implementation": "sdpa",
            },
        },
        "processor": {"min_pixels": 3136, "max_pixels": 12544 if smoke else 1572864},
        "data": {
            "train": [
                {
                    "toy": {
                        "train_iqa": 32,
                        "train_iaa": 32,
                        "test_iqa": 0,
                        "test_iaa": 0,
                        "size": 84 if smoke else 896,
                    }
                }
            ],
            "iqa_fraction": 0.5,
        },
        "sft": {
            **common,
            "per_device_train_batch_size": 2 if smoke else 8,
            "max_steps": steps[0],
            "learning_rate": 2e-5,
        },
        "grpo": {
            **common,
            "init": "base",
            "num_generations": 4 if smoke else 8,
            "per_device_train_batch_size": 4 if smoke else 8,
            "gradient_accumulation_steps": 2,
            "max_steps": steps[1],
            "max_completion_length": 16 if smoke else 256,
            "beta": 0.001,
        },
        "launch": {"num_processes": 1, "cpu_threads": 1 if smoke else None},
    }
    if not smoke:
        del cfg["launch"]["cpu_threads"]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def check_loss_mask(labels, input_ids, tokenizer) -> dict:
    """Is each row's supervised span (labels != -100) one completion and nothing else: it starts
    right after the assistant header, ends with its one <|im_end|>, holds no image token and
    parses as an answer?"""
    from tatar.parsing import parse_answer

    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    image = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    header = tokenizer("<|im_start|>assistant\n")["input_ids"]
    rows = []
    for lab, ids in zip(labels.tolist(), input_ids.tolist(), strict=True):
        pos = [i for i, v in enumerate(lab) if v != -100]
        span = ids[pos[0] : pos[-1] + 1] if pos else []
        text = tokenizer.decode(span[:-1]) if span else ""
        rows.append(
            {
                "tokens": len(pos),
                "contiguous": bool(pos) and pos == list(range(pos[0], pos[-1] + 1)),
                "labels_are_inputs": all(lab[i] == ids[i] for i in pos),
                "after_assistant_header": bool(pos) and ids[: pos[0]][-len(header) :] == header,
                "ends_with_im_end": bool(span) and span[-1] == end and span.count(end) == 1,
                "no_image_tokens": image not in span,
                "parses": parse_answer(text) is not None,
            }
        )
    ok = bool(rows) and all(all(v for k, v in r.items() if k != "tokens") for r in rows)
    return {"ok": ok, "rows": rows}


class RewardRecorder:
    """Wraps a trainer's reward functions; keeps each call's completions, columns and values."""

    COLUMNS = ("task", "solution", "group")

    def __init__(self, funcs):
        self.calls: list[dict] = []
        self.funcs = [self._wrap(f) for f in funcs]

    def _wrap(self, fn):
        from tatar.rewards import completion_text

        def reward(completions, **kwargs):
            out = fn(completions=completions, **kwargs)
            self.calls.append(
                {
                    "name": fn.__name__,
                    "completions": [completion_text(c) for c in completions],
                    "columns": {
                        k: list(kwargs[k]) for k in self.COLUMNS if kwargs.get(k) is not None
                    },
                    "values": [float("nan") if v is None else float(v) for v in out],
                }
            )
            return out

        reward.__name__ = fn.__name__
        return reward

    def compare_on_cpu(self, settings) -> dict:
        """Recompute every recorded call with fresh reward functions; the largest difference."""
        import numpy as np

        from tatar.rewards import clear_caches, reward_functions

        clear_caches()
        fresh = {f.__name__: f for f in reward_functions(settings)[0]}
        worst, n = 0.0, 0
        for call in self.calls:
            again = fresh[call["name"]](completions=call["completions"], **call["columns"])
            a = np.array(call["values"], float)
            b = np.array([np.nan if v is None else v for v in again], float)
            same_nan = np.array_equal(np.isnan(a), np.isnan(b))
            diff = float(np.nanmax(np.abs(a - b))) if np.isfinite(a).any() else 0.0
            worst = max(worst, diff if same_nan else float("inf"))
            n += len(a)
        parsed = sum(
            1
            for c in self.calls
            if c["name"] == "format_reward"
            for v in c["values"]
            if v and v > 0
        )
        return {
            "ok": bool(self.calls) and worst <= 1e-9,
            "values": n,
            "max_abs_diff": worst,
            "well_formed": parsed,
            "calls": len(self.calls),
        }


def forward_parity(work: Path, smoke: bool) -> dict:
    """One SFT batch through one small model on the CPU and on the GPU: the masked losses."""
    import inspect

    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from tatar.train.config import load_config
    from tatar.train.model import load_processor
    from tatar.train.sft import sft_dataset

    # No trainer here: one process cannot hold a CPU and a GPU accelerate state at once.
    folder = work / "parity"
    build_model(folder / "model", SMOKE, "float32", max_pixels=12544)
    cfg = load_config(
        write_config(folder / "config.yaml", folder / "run", folder / "model", True, (1, 1))
    )
    processor = load_processor(str(folder / "model"), cfg.processor)
    dataset, _, _ = sft_dataset(cfg, processor)
    collate = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
    batch = collate([dataset[i] for i in range(4)])
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        folder / "model", dtype=torch.float32
    )
    model.eval()
    accepted = set(inspect.signature(model.forward).parameters)
    batch = {k: v for k, v in batch.items() if k in accepted}
    out: dict = {"supervised_tokens": int((batch["labels"] != -100).sum())}
    with torch.no_grad():
        out["loss_cpu_fp32"] = float(model(**batch).loss)
        if torch.cuda.is_available() and not smoke:
            model.to("cuda")
            gpu = {k: v.to("cuda") if torch.is_tensor(v) else v for k, v in batch.items()}
            out["loss_gpu_fp32"] = float(model(**gpu).loss)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out["loss_gpu_bf16"] = float(model(**gpu).loss)
            ref = out["loss_cpu_fp32"]
            out["rel_diff_fp32"] = abs(out["loss_gpu_fp32"] - ref) / abs(ref)
            out["rel_diff_bf16"] = abs(out["loss_gpu_bf16"] - ref) / abs(ref)
            out["ok"] = out["rel_diff_fp32"] < 1e-3 and out["rel_diff_bf16"] < 3e-2
    del model
    return out


def sft_breakdown(trainer, rows: int) -> dict:
    """Where one SFT step's time goes: the collator (image processing on the CPU), the vision
    tower's forward + backward, and the whole model's forward + backward, on one batch."""
    import torch

    examples = [trainer.train_dataset[i] for i in range(rows)]
    t = time.perf_counter()
    batch = trainer.data_collator(examples)
    collate_s = time.perf_counter() - t
    model = trainer.model
    device = next(model.parameters()).device
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    dtype = next(model.parameters()).dtype
    visual = model.model.visual
    model.train()

    def vision():
        out = visual(batch["pixel_values"].to(dtype), grid_thw=batch["image_grid_thw"])
        if not torch.is_tensor(out):
            pooled = getattr(out, "pooler_output", None)
            out = pooled if pooled is not None else out.last_hidden_state
        out.float().sum().backward()

    def whole():
        model(**batch).loss.backward()

    def timed(fn) -> float:
        times = []
        for _ in range(3):
            StepTimer._sync()
            t = time.perf_counter()
            fn()
            StepTimer._sync()
            times.append(time.perf_counter() - t)
            model.zero_grad(set_to_none=True)
        return round(statistics.median(times[1:]), 3)

    return {
        "rows": rows,
        "collate_s": round(collate_s, 3),
        "vision_fwd_bwd_s": timed(vision),
        "model_fwd_bwd_s": timed(whole),
        "image_tokens_per_row": int(batch["image_grid_thw"].prod(-1)[0]) // 4,
        "attn_implementation": model.config._attn_implementation,
    }


def _guarded(name: str, fn, *args) -> dict:
    """A check's result, or its error: one failing check must not lose the others' figures."""
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - recorded in the JSON and printed
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(f"check {name}: {json.dumps(result)[:400]}", flush=True)
    return result


class StepTimer:
    """A TrainerCallback recording the wall time of every optimizer step."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer._sync()
                timer._t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                timer._sync()
                timer.steps.append(time.perf_counter() - timer._t0)

        self.steps: list[float] = []
        self.callback = _CB()

    @staticmethod
    def _sync():
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def summary(self) -> dict:
        warm = self.steps[1:] or self.steps
        return {
            "steps": len(self.steps),
            "step_times_s": [round(s, 3) for s in self.steps],
            "step_time_s_median": round(statistics.median(warm), 3) if warm else None,
        }


def _peak_gb(reset: bool = False) -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    peak = torch.cuda.max_memory_allocated() / 2**30
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return round(peak, 2)


def run(args) -> dict:
    import torch

    from tatar.train.config import load_config
    from tatar.train.grpo import build_grpo_trainer
    from tatar.train.rundir import prepare_run_dir
    from tatar.train.sft import build_sft_trainer

    smoke = args.smoke
    sizes = SMOKE if smoke else QWEN25_VL_3B
    work = Path(args.work or tempfile.mkdtemp(prefix="tatar-gpu-check-"))
    model_dir = work / "model"
    t0 = time.perf_counter()
    n_params = build_model(
        model_dir, sizes, "float32" if smoke else "bfloat16", max_pixels=12544 if smoke else 1572864
    )
    build_s = time.perf_counter() - t0
    cfg = load_config(
        write_config(
            work / "config.yaml", work / "run", model_dir, smoke, (args.sft_steps, args.grpo_steps)
        )
    )
    out: dict = {
        "device": torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else platform.processor() or "cpu",
        "smoke": smoke,
        "model": "Qwen2.5-VL (tiny smoke sizes)"
        if smoke
        else "Qwen2.5-VL-3B architecture, random weights, bf16",
        "parameters": n_params,
        "build_s": round(build_s, 1),
        "image_px": cfg.raw["data"]["train"][0]["toy"]["size"],
    }
    print(
        f"model: {out['model']}, {n_params / 1e6:,.1f} M parameters, built in {build_s:.0f} s",
        flush=True,
    )

    # SFT
    prepare_run_dir(cfg, "sft", overwrite=True)
    timer = StepTimer()
    trainer, _ = build_sft_trainer(cfg, progress=False)
    trainer.add_callback(timer.callback)
    first: dict = {}
    compute_loss = trainer.compute_loss

    def capturing_compute_loss(model, inputs, *a, **k):
        if not first:
            first.update(labels=inputs["labels"].cpu(), input_ids=inputs["input_ids"].cpu())
        return compute_loss(model, inputs, *a, **k)

    trainer.compute_loss = capturing_compute_loss
    _peak_gb(reset=True)
    trainer.train()
    tokenizer = trainer.processing_class.tokenizer
    out["check_loss_mask"] = _guarded(
        "loss_mask", check_loss_mask, first.get("labels"), first.get("input_ids"), tokenizer
    )
    bs = trainer.args.per_device_train_batch_size
    out["sft_breakdown"] = _guarded("sft_breakdown", sft_breakdown, trainer, bs)
    out["sft"] = {
        **timer.summary(),
        "batch_per_device": bs,
        "gradient_checkpointing": trainer.args.gradient_checkpointing,
        "peak_memory_gb": _peak_gb(reset=True),
        "loss": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }
    med = out["sft"]["step_time_s_median"]
    out["sft"]["samples_per_s"] = round(bs / med, 2) if med else None
    print(
        f"SFT: {out['sft']['step_time_s_median']} s/step at batch {bs}, peak {out['sft']['peak_memory_gb']} GB",
        flush=True,
    )
    del trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    # GRPO
    prepare_run_dir(cfg, "grpo", overwrite=True)
    timer = StepTimer()
    trainer, _ = build_grpo_trainer(cfg, progress=False)
    trainer.add_callback(timer.callback)
    rollouts = {"tokens": 0, "seconds": 0.0, "calls": 0}
    generate = trainer._generate  # TRL's rollout step (HF generate or vLLM), timed here

    def timed_generate(prompts):
        StepTimer._sync()
        t = time.perf_counter()
        result = generate(prompts)
        StepTimer._sync()
        rollouts["seconds"] += time.perf_counter() - t
        rollouts["tokens"] += sum(len(ids) for ids in result[1])
        rollouts["calls"] += 1
        return result

    trainer._generate = timed_generate
    recorder = RewardRecorder(trainer.reward_funcs)
    trainer.reward_funcs = recorder.funcs
    _peak_gb(reset=True)
    trainer.train()
    out["check_rewards"] = _guarded("rewards", recorder.compare_on_cpu, cfg.grpo.rewards)
    a = trainer.args
    log = [h for h in trainer.state.log_history if "reward" in h]
    out["grpo"] = {
        **timer.summary(),
        "num_generations": a.num_generations,
        "completions_per_step": a.per_device_train_batch_size * a.gradient_accumulation_steps,
        "max_completion_length": a.max_completion_length,
        "beta": a.beta,
        "sampling": {"temperature": a.temperature, "top_k": a.top_k, "top_p": a.top_p},
        "rollout_tokens": rollouts["tokens"],
        "rollout_s": round(rollouts["seconds"], 2),
        "rollout_tokens_per_s": round(rollouts["tokens"] / rollouts["seconds"], 1)
        if rollouts["seconds"]
        else None,
        "peak_memory_gb": _peak_gb(reset=True),
        "mean_completion_tokens": [h.get("completions/mean_length") for h in log],
        "kl": [h.get("kl") for h in log],
    }
    g = out["grpo"]
    print(
        f"GRPO: {g['step_time_s_median']} s/step ({g['completions_per_step']} completions, G={g['num_generations']}, "
        f"{g['max_completion_length']} new tokens), rollout {g['rollout_tokens_per_s']} tokens/s, "
        f"peak {g['peak_memory_gb']} GB",
        flush=True,
    )
    del trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    out["check_forward"] = _guarded("forward", forward_parity, work, smoke)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, tiny sizes (checks the script runs)"
    )
    parser.add_argument("--sft-steps", type=int, default=4)
    parser.add_argument("--grpo-steps", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=None, help=f"JSON file (default {RESULTS}; --smoke: none)"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="scratch folder (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print(
            "gpu_check_tatar: no CUDA device here; nothing measured (use --smoke for the CPU check)"
        )
        return 0
    from tatar import __version__

    t0 = time.perf_counter()
    result = run(args)
    import transformers
    import trl

    result["versions"] = {
        "tatar": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }
    result["total_s"] = round(time.perf_counter() - t0, 1)
    out = args.out or (None if args.smoke else RESULTS)
    if out is not None:
        from tatar.outputs import atomic_write_json

        atomic_write_json(out, result)
        print(f"wrote {out}")
    print(json.dumps({k: result[k] for k in ("device", "parameters", "total_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
