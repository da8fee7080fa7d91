"""Strict answer parsing, shared by rewards, evaluation, scoring and rationale checks.

An answer parses only when the first `<answer>...</answer>` block holds exactly one number and
nothing else (whitespace aside). Anything else is a parse failure (None), never a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")

_OPEN, _CLOSE = "<answer>", "</answer>"


def parse_answer(text: str) -> float | None:
    """The number inside the first `<answer>` block, or None when it is not exactly one number."""
    # Same result as ANSWER_RE.search, with str.find: this runs once per completion in every
    # GRPO reward call, and find is several times faster than the regex engine here.
    text = text or ""
    start = text.find(_OPEN)
    if start < 0:
        return None
    end = text.find(_CLOSE, start + len(_OPEN))
    if end < 0:
        return None
    body = text[start + len(_OPEN) : end].strip()
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


def _ascii_whitespace(buf: np.ndarray) -> np.ndarray:
    """Where `buf` (ASCII bytes) holds a character str.split() treats as whitespace."""
    # Whitespace is 9-13, 28-31 and 32. The only other bytes <= 32 are control characters,
    # rare in text: test for them first and keep the common case to a single comparison.
    if not (buf < 9).any() and not ((buf - np.uint8(14)) <= 13).any():
        return buf <= 32
    return (buf == 32) | ((buf - np.uint8(9)) <= 4) | ((buf - np.uint8(28)) <= 3)


# What str.strip() removes from ASCII text, and NUMBER_RE for bytes.
_ASCII_WHITESPACE = bytes(c for c in range(128) if chr(c).isspace())
_NUMBER_BYTES_RE = re.compile(NUMBER_RE.pattern.encode())


def _tag_positions(buf: np.ndarray) -> dict[str, np.ndarray]:
    """Sorted start positions of <answer>, </answer>, <think>, </think> in `buf`.

    Every tag starts with '<': the 8 bytes after each '<' are read as one little-endian
    integer and compared with the tags' bytes (`buf` must have 8 spare bytes at the end).
    """
    lt = np.flatnonzero(buf == 60)
    window = buf[lt[:, None] + np.arange(9)]
    head = np.ascontiguousarray(window[:, :8]).view("<u8").ravel()
    value, seven = _TAG_VALUES, np.uint64((1 << 56) - 1)  # "<think>" is 7 bytes long
    return {
        "<answer>": lt[head == value["<answer>"]],
        "</answer>": lt[(head == value["</answer>"]) & (window[:, 8] == ord(">"))],
        "<think>": lt[(head & seven) == value["<think>"]],
        "</think>": lt[head == value["</think>"]],
    }


# The first 8 bytes of each tag as a little-endian integer (zero-padded).
_TAG_VALUES = {
    t: int.from_bytes(t[:8].encode().ljust(8, b"\0"), "little")
    for t in ("<answer>", "</answer>", "<think>", "</think>")
}


def _first_block(opens, closes, open_len, starts, ends) -> tuple[np.ndarray, np.ndarray]:
    """Per text [starts, ends): content span of the first open tag and the first close tag after
    it (what ``<tag>(.*?)</tag>`` finds); -1 where there is none."""
    i = np.searchsorted(opens, starts)
    a = np.append(opens, np.iinfo(np.int64).max)[i]
    has = a < ends
    lo = np.where(has, a + open_len, 0)
    j = np.searchsorted(closes, lo)
    b = np.append(closes, np.iinfo(np.int64).max)[j]
    has &= b < ends
    return np.where(has, lo, -1), np.where(has, b, -1)


def _parse_bodies(joined: bytes, lo: np.ndarray, hi: np.ndarray) -> list[float]:
    """NUMBER_RE-checked floats of the answer bodies joined[lo:hi] (NaN where none / not a number).

    The one per-text Python loop of the scan; plain ints and bytes keep it cheap (a numpy
    version over a bodies x bytes matrix measured twice as slow for a GRPO batch).
    """
    values = [math.nan] * len(lo)
    fullmatch = _NUMBER_BYTES_RE.fullmatch
    for k, a, b in zip(range(len(lo)), lo.tolist(), hi.tolist(), strict=True):
        if a >= 0:
            body = joined[a:b].strip(_ASCII_WHITESPACE)
            # digits with at most one '.' (the usual "73.42") skip the regex
            if body.replace(b".", b"", 1).isdigit() or fullmatch(body):
                values[k] = float(body)
    return values


@dataclass(frozen=True)
class CompletionScan:
    """Per text: the parsed answer (NaN when it does not parse, as `parse_answer` is None), the
    word count (`count_words`) and the words inside the first think block (`think_words`)."""

    answer: np.ndarray
    words: np.ndarray
    think_words: np.ndarray


def scan_completions(texts: Sequence[str]) -> CompletionScan:
    """`parse_answer`, `count_words` and `think_words` of many texts in one pass; same results.

    GRPO reward functions need these for every completion of a batch, and per-text Python
    (regex searches, one string per word from str.split) dominated the reward time. ASCII texts
    are joined into one byte buffer: tags are found among the positions of '<', and words are
    counted as whitespace-to-word transitions, with numpy. Only the short answer bodies are
    checked in Python. A non-ASCII text takes the plain per-text functions (Unicode whitespace).
    """
    texts = [t or "" for t in texts]
    n = len(texts)
    answer = np.full(n, np.nan)
    words = np.zeros(n, dtype=np.int64)
    think = np.zeros(n, dtype=np.int64)
    is_ascii = [t.isascii() for t in texts]
    for i in (i for i, a in enumerate(is_ascii) if not a):
        v = parse_answer(texts[i])
        answer[i] = np.nan if v is None else v
        words[i] = count_words(texts[i])
        think[i] = think_words(texts[i])
    idx = np.flatnonzero(is_ascii)
    if not len(idx):
        return CompletionScan(answer, words, think)
    chunk = texts if len(idx) == n else [texts[i] for i in idx.tolist()]
    # "\n" around every text: text k is buf[begin_k : begin_k + len_k]; tags cannot straddle
    # two texts, and each word start is a whitespace -> non-whitespace transition. Trailing spaces
    # let tag windows read past the last '<' safely.
    joined = ("\n" + "\n".join(chunk) + "\n" + " " * 9).encode("ascii")
    buf = np.frombuffer(joined, dtype=np.uint8)
    lengths = np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk))
    begin = np.concatenate(([1], np.cumsum(lengths + 1)[:-1] + 1))
    end = begin + lengths

    tags = _tag_positions(buf)
    ans_lo, ans_hi = _first_block(tags["<answer>"], tags["</answer>"], 8, begin, end)
    th_lo, th_hi = _first_block(tags["<think>"], tags["</think>"], 7, begin, end)
    answer[idx] = _parse_bodies(joined, ans_lo, ans_hi)

    ws = _ascii_whitespace(buf)
    starts = np.greater(ws[:-1], ws[1:]).view(np.uint8)  # starts[p]: a word begins at buf[p+1]
    has = th_hi > th_lo  # a non-empty think block (none: both are -1)
    # One reduceat over [begin - 1, lo - 1, hi - 1] per text: before, inside and after the think
    # content. Texts without one get lo = hi = end: starts[end - 1] looks at the separator after
    # the text, so it is 0, and reduceat returns that single entry for an empty segment.
    lo = np.where(has, th_lo, end)
    hi = np.where(has, th_hi, end)
    bounds = np.stack([begin - 1, lo - 1, hi - 1], axis=1).ravel()
    # A text of L characters has at most L/2 + 1 words: short texts sum in uint16.
    acc = np.uint16 if lengths.max(initial=0) < 120_000 else np.int64
    sums = np.add.reduceat(starts, bounds, dtype=acc).astype(np.int64).reshape(-1, 3)
    words[idx] = sums.sum(axis=1)
    # buf[lo - 1] is the '>' of <think>: a word right at lo has no whitespace before it.
    think[idx] = sums[:, 1] + (has & ~ws[lo])
    return CompletionScan(answer, words, think)


def word_counts_many(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(`count_words`, `think_words`) of many texts (see `scan_completions`)."""
    scan = scan_completions(texts)
    return scan.words, scan.think_words


def count_words_many(texts: Sequence[str]) -> np.ndarray:
    """`count_words` of many texts at once (see `scan_completions`)."""
    return scan_completions(texts).words
