"""Strict parsing and the batched word counter are exact replacements of the plain versions."""

from __future__ import annotations

import math
import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tatar.parsing import (
    ANSWER_RE,
    NUMBER_RE,
    count_words,
    count_words_many,
    format_completion,
    parse_answer,
    scan_completions,
    think_words,
    word_counts_many,
)


def regex_parse(text: str) -> float | None:
    m = ANSWER_RE.search(text or "")
    if m is None:
        return None
    body = m.group(1).strip()
    return float(body) if NUMBER_RE.fullmatch(body) else None


pieces = st.sampled_from(
    [
        "<answer>",
        "</answer>",
        "<think>",
        "</think>",
        "73.42",
        "5",
        "-1.",
        ".5",
        "+",
        "-",
        ".",
        "0",
        "1234567890123456789",
        " ",
        "\n",
        "\t",
        "x",
        "é",
        "\x1c",
        "\x00",
        "\u3000",
        "word",
    ]
)
texts = st.lists(pieces, max_size=25).map("".join)


@given(texts)
@settings(max_examples=400, deadline=None)
def test_parse_answer_matches_the_regex_definition(text):
    assert parse_answer(text) == regex_parse(text)


@given(st.lists(texts, max_size=12))
@settings(max_examples=600, deadline=None)
def test_batch_scan_matches_the_per_text_functions(batch):
    scan = scan_completions(batch)
    expected = [parse_answer(t) for t in batch]
    assert [None if math.isnan(v) else v for v in scan.answer.tolist()] == expected
    total, think = word_counts_many(batch)
    assert total.tolist() == [count_words(t) for t in batch]
    assert think.tolist() == [think_words(t) for t in batch]
    assert count_words_many(batch).tolist() == total.tolist()


def test_strict_answers():
    assert parse_answer("<think>a</think><answer>73.42</answer>") == 73.42
    assert parse_answer("<answer>\n 5.0 \n</answer>") == 5.0
    assert parse_answer("<answer>5</answer><answer>9</answer>") == 5.0  # the first block
    for bad in [
        "<answer>73.42 points</answer>",
        "<answer>1 2</answer>",
        "<answer>1e3</answer>",
        "73.42",
        "<answer>73.42",
        "",
    ]:
        assert parse_answer(bad) is None, bad
    assert format_completion(5, "why") == "<think>\nwhy\n</think>\n<answer>5.00</answer>"
    assert re.fullmatch(r"<answer>\d+\.\d\d</answer>", format_completion(73.456))


def test_batch_scan_numbers_are_exactly_float():
    rng = random.Random(0)
    bodies = [
        "5.",
        ".",
        ".5",
        "5..5",
        " -3.25 ",
        "+.5",
        "5-",
        "-",
        "+-1",
        "1 2",
        "\x1c73.42\x1f",
        "-0",
        "007.500",
        "99999999999999.9",
        "123456789012345678",
        "1" * 30,
        "",
        "  ",
        "1e5",
        "0.30000000000000004",
    ]
    for _ in range(20000):
        v = rng.uniform(-1e4, 1e4) * 10 ** rng.randint(-8, 4)
        bodies.append(f"{v:.{rng.randint(0, 16)}f}")
    texts = [f"<think>x</think><answer>{b}</answer>" for b in bodies]
    got = scan_completions(texts).answer.tolist()
    expected = [parse_answer(t) for t in texts]
    assert [None if math.isnan(v) else v for v in got] == expected
