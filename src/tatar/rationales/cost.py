"""Estimated calls and tokens of a rationale run, from record counts.

An estimate, not a measurement: text tokens are counted as characters / 4 on the rendered
prompts (English BPE), output tokens from the word targets (1.35 tokens per word), image tokens
from the Qwen-VL resize rule (one token per `patch` x `patch` pixels after the 2x2 merge: 28 for
Qwen2-VL/Qwen2.5-VL, 32 for Qwen3-VL). The real counts of a run are in its summary
(`prompt_tokens`, `completion_tokens`, as reported by the server).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from tatar.rationales.config import RuleConfig
from tatar.rationales.prompts import (
    AESTHETIC_ASPECTS,
    JUDGE_NOTE_MAX_CHARS,
    judge_prompt,
    teacher_prompt,
)

CHAT_TEMPLATE_TOKENS = 20  # role headers and end-of-turn tokens of a system + user + reply chat
ANSWER_TOKENS = 12  # <think></think><answer>73.42</answer> and line breaks


@dataclass(frozen=True)
class CostAssumptions:
    iqa_image: tuple[int, int] = (1024, 768)  # KonIQ-10k images are 1024 x 768
    iaa_image: tuple[int, int] = (1024, 1024)  # ~1 MP; ArtiMuse sizes vary
    patch: int = 28
    min_pixels: int = 3136
    max_pixels: int = 12_845_056  # the Qwen2.5-VL processor default: 1 MP images pass unscaled
    chars_per_token: float = 4.0
    tokens_per_word: float = 1.35
    attribute_chars: int = 4000  # 8 ArtiMuse expert notes per record, ~500 characters each
    iaa_teacher_vision: bool = True  # False: text-only teacher from the notes (as released)
    iaa_has_notes: bool = True
    judge_vision: bool = True
    judge_output_tokens: tuple[int, int] = (120, 150)  # (IQA, IAA) JSON verdicts
    rule_pass_rate: float = 1.0  # share of teacher outputs that reach the judge (1.0: upper bound)


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int):
    """Qwen-VL's resize rule (sides to multiples of `factor`, pixel count within bounds).

    Same arithmetic as `transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize`
    (a test checks they agree); copied because importing that module loads torch (~6 s) for an
    estimate that is pure arithmetic.
    """
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def image_tokens(size: tuple[int, int], a: CostAssumptions) -> int:
    """Tokens of one image (width, height), including the vision start/end tokens."""
    w, h = size
    rh, rw = smart_resize(h, w, a.patch, a.min_pixels, a.max_pixels)
    return (rh // a.patch) * (rw // a.patch) + 2


def _text_tokens(text: str, a: CostAssumptions) -> int:
    return math.ceil(len(text) / a.chars_per_token)


def estimate(
    n_iqa: int,
    n_iaa: int,
    a: CostAssumptions | None = None,
    rules: RuleConfig | None = None,
) -> dict:
    """Calls and tokens of teacher + judge for `n_iqa` IQA and `n_iaa` IAA records.

    Returns a dict with one row per (stage, task): calls, prompt and completion tokens per call
    and in total, and the grand totals; the assumptions are included.
    """
    a = a or CostAssumptions()
    rules = rules or RuleConfig()
    notes = {k: "x" * (a.attribute_chars // len(AESTHETIC_ASPECTS)) for k in AESTHETIC_ASPECTS}
    rows = []
    for task, n in (("iqa", n_iqa), ("iaa", n_iaa)):
        if n <= 0:
            continue
        lo, hi = rules.words(task)
        out_tokens = math.ceil((lo + hi) / 2 * a.tokens_per_word) + ANSWER_TOKENS
        has_notes = task == "iaa" and a.iaa_has_notes
        vision = task == "iqa" or a.iaa_teacher_vision
        system, user = teacher_prompt(
            task,
            73.42,
            words=(lo, hi),
            min_aspects=rules.iaa_min_aspects,
            vision=vision,
            attributes=notes if has_notes else None,
        )
        img = image_tokens(a.iqa_image if task == "iqa" else a.iaa_image, a)
        teacher_in = CHAT_TEMPLATE_TOKENS + _text_tokens(system + user, a) + (img if vision else 0)
        rows.append(_row("teacher", task, n, teacher_in, out_tokens))

        rationale = "word " * math.ceil((lo + hi) / 2)
        judge_notes = {k: v[:JUDGE_NOTE_MAX_CHARS] for k, v in notes.items()} if has_notes else None
        system, user = judge_prompt(
            task,
            73.42,
            rationale,
            vision=a.judge_vision,
            min_aspects=rules.iaa_min_aspects,
            attributes=judge_notes,
        )
        # the placeholder rationale is counted as text; count it as words instead
        judge_in = (
            CHAT_TEMPLATE_TOKENS
            + _text_tokens((system + user).replace(rationale, ""), a)
            + math.ceil((lo + hi) / 2 * a.tokens_per_word)
            + (img if a.judge_vision else 0)
        )
        judge_out = a.judge_output_tokens[0 if task == "iqa" else 1]
        rows.append(_row("judge", task, math.ceil(n * a.rule_pass_rate), judge_in, judge_out))
    totals = {k: sum(r[k] for r in rows) for k in ("calls", "prompt_tokens", "completion_tokens")}
    totals["tokens"] = totals["prompt_tokens"] + totals["completion_tokens"]
    return {
        "records": {"iqa": n_iqa, "iaa": n_iaa},
        "rows": rows,
        "totals": totals,
        "assumptions": asdict(a),
        "rules": rules.public_dict(),
    }


def _row(stage: str, task: str, calls: int, prompt_per_call: int, completion_per_call: int):
    return {
        "stage": stage,
        "task": task,
        "calls": calls,
        "prompt_tokens_per_call": prompt_per_call,
        "completion_tokens_per_call": completion_per_call,
        "prompt_tokens": calls * prompt_per_call,
        "completion_tokens": calls * completion_per_call,
    }
