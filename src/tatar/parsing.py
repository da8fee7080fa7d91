"""Strict answer parsing, shared by rewards, evaluation, scoring and rationale checks.

An answer parses only when the first `<answer>...</answer>` block holds exactly one number and
nothing else (whitespace aside). Anything else is a parse failure (None), never a guess.
"""

from __future__ import annotations

import re

ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def parse_answer(text: str) -> float | None:
    """The number inside the first `<answer>` block, or None when it is not exactly one number."""
    m = ANSWER_RE.search(text or "")
    if m is None:
        return None
    body = m.group(1).strip()
    if not NUMBER_RE.fullmatch(body):
        return None
    return float(body)


def think_text(text: str) -> str | None:
    """The text of the first `<think>` block, or None when there is none."""
    m = THINK_RE.search(text or "")
    return None if m is None else m.group(1).strip()


def has_think(text: str) -> bool:
    return THINK_RE.search(text or "") is not None


def count_words(text: str) -> int:
    """Whitespace-separated words (tags included), as the word gates of the reward count them."""
    return len((text or "").split())


def think_words(text: str) -> int:
    """Words inside the first `<think>` block (0 when there is none)."""
    t = think_text(text)
    return 0 if t is None else len(t.split())


def format_completion(answer: float, rationale: str | None = None) -> str:
    """The canonical completion text: optional `<think>` then `<answer>` with two decimals."""
    ans = f"<answer>{answer:.2f}</answer>"
    if rationale:
        return f"<think>\n{rationale.strip()}\n</think>\n{ans}"
    return ans
