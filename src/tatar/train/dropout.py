"""Asymmetric thought dropout: per task, the probability that a sample's `<think>` is removed.

The draw for a sample is a function of ``(seed, epoch, index)`` only: the same sample gets a new,
independent draw every epoch, the draw does not depend on batch order, worker or process, and a
resumed run redraws exactly what an uninterrupted one drew.

Why a dataset transform keyed by ``(seed, epoch, index)`` rather than materialising one dataset
per epoch: the vision datasets hold image paths and are read lazily, so a transform costs
nothing up front and keeps the Trainer's own epoch loop, sampler and resume logic untouched.
The epoch is advanced by `EpochCallback` at the start of every epoch, before the Trainer creates
the epoch's data iterator (so non-persistent dataloader workers fork with the right epoch;
persistent workers are refused by the config).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from transformers import TrainerCallback

from tatar.parsing import format_completion

DEFAULT_RATES = {"iqa": 0.8, "iaa": 0.0}


def uniforms(seed: int, epoch: int, indices: Sequence[int]) -> np.ndarray:
    """One U[0, 1) number per index, a pure function of (seed, epoch, index)."""
    return np.array(
        [np.random.default_rng([seed, epoch, int(i)]).random() for i in indices], dtype=float
    )


def drop_mask(
    seed: int, epoch: int, indices: Sequence[int], tasks: Sequence[str], rates: Mapping[str, float]
) -> np.ndarray:
    """True where the sample's rationale is dropped this epoch."""
    p = np.array([rates.get(t, 0.0) for t in tasks], dtype=float)
    return uniforms(seed, epoch, indices) < p


def end_of_turn(processor) -> str:
    """The text the chat template puts after an assistant message (``<|im_end|>`` for Qwen).

    Read from the template itself (what follows the assistant content, trailing whitespace
    removed), so the SFT target ends exactly as a turn ends at inference, for any chat model.
    Falls back to the tokenizer's eos token when the template writes nothing after the message.
    """
    from tatar.prompts import build_messages

    marker = "TATAR_END_OF_TURN_PROBE"
    messages = build_messages("iqa") + [
        {"role": "assistant", "content": [{"type": "text", "text": marker}]}
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    tail = text[text.rindex(marker) + len(marker) :].strip()
    tokenizer = getattr(processor, "tokenizer", processor)
    eot = tail or tokenizer.eos_token
    if not eot:
        raise ValueError(
            "the chat template ends an assistant turn with nothing and there is no eos token"
        )
    return eot


class SFTTransform:
    """`datasets` transform: rows of `records_dataset` -> TRL prompt-completion examples.

    ``prompt`` is the chat-templated system + user turn with the generation prompt (exactly what
    evaluation and GRPO render from `tatar.prompts.build_messages`); ``completion`` is
    ``format_completion(solution, rationale or None) + end_of_turn`` with the rationale dropped
    per `drop_mask`; ``image`` is the loaded RGB image.
    """

    def __init__(
        self,
        processor,
        rates: Mapping[str, float],
        seed: int,
        *,
        load_images: bool = True,
    ):
        from tatar.generation import prompt_text

        for task, p in rates.items():
            if not (0.0 <= p <= 1.0 and math.isfinite(p)):
                raise ValueError(f"thought dropout rate of {task} must lie in [0, 1], got {p}")
        self.rates = dict(rates)
        self.seed = int(seed)
        self.epoch = 0
        self.load_images = load_images
        self.prompts = {t: prompt_text(processor, t) for t in ("iqa", "iaa")}
        self.eot = end_of_turn(processor)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        from tatar.generation import load_image

        dropped = drop_mask(self.seed, self.epoch, batch["index"], batch["task"], self.rates)
        completions, has_think = [], []
        for solution, rationale, drop in zip(
            batch["solution"], batch["rationale"], dropped, strict=True
        ):
            keep = rationale if (rationale and not drop) else None
            completions.append(format_completion(solution, keep) + self.eot)
            has_think.append(keep is not None)
        out = {
            "prompt": [self.prompts[t] for t in batch["task"]],
            "completion": completions,
            "task": list(batch["task"]),
            "index": list(batch["index"]),
            "has_think": has_think,
        }
        if self.load_images:
            out["image"] = [load_image(p) for p in batch["image"]]
        return out


class EpochCallback(TrainerCallback):
    """Sets the transform's epoch at the start of every epoch (resume included)."""

    def __init__(self, transform: SFTTransform):
        self.transform = transform

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is the float epoch reached so far (e.g. 1.5 after resuming mid-epoch 1).
        self.transform.epoch = int(math.floor((state.epoch or 0.0) + 1e-6))
