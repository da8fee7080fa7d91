"""Rule checks on a teacher completion, run before any judge call.

A completion passes when it is exactly one `<think>` block followed by one `<answer>` block,
the answer (parsed by the shared strict parser) equals the given score, the think's word count
is inside the task's range, it holds no role markers, chat tokens or code fences, it does not
state the score, and (IAA) it touches enough of the eight aesthetic aspects. Every failed check
is reported, each with a code (counted in the summary) and a detail (kept with the record).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from tatar.parsing import count_words, parse_answer
from tatar.rationales.config import RuleConfig
from tatar.rationales.prompts import AESTHETIC_ASPECTS

# Stems matched at a word start; one hit marks the aspect as touched. The released judge
# counted substring hits of per-attribute keyword lists the same way.
ASPECT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "visual_elements": (
        "colo",  # colour, color, colourful
        "light",
        "tone",
        "tonal",
        "hue",
        "palette",
        "contrast",
        "texture",
        "shadow",
        "highlight",
        "saturat",
        "vibran",
        "shape",
    ),
    "composition_structure": (
        "composition",
        "compos",
        "layout",
        "framing",
        "frame",
        "balance",
        "symmetr",
        "rule of thirds",
        "leading line",
        "placement",
        "negative space",
        "perspective",
        "crop",
        "foreground",
        "background",
    ),
    "overall_gestalt": (
        "gestalt",
        "harmon",
        "cohesi",
        "coheren",
        "unity",
        "unified",
        "holistic",
        "as a whole",
        "integrat",
    ),
    "technical_execution": (
        "sharp",
        "focus",
        "exposure",
        "exposed",
        "noise",
        "grain",
        "technical",
        "technique",
        "execution",
        "depth of field",
        "blur",
        "clarity",
        "detail",
        "resolution",
    ),
    "theme_communication": (
        "theme",
        "thematic",
        "subject",
        "story",
        "narrative",
        "message",
        "concept",
        "meaning",
        "convey",
        "communicat",
    ),
    "emotion_viewer_response": (
        "emotion",
        "mood",
        "feel",
        "atmospher",
        "evoc",
        "evok",
        "viewer",
        "calm",
        "seren",
        "tension",
        "nostalg",
        "warmth",
        "engag",
        "melanchol",
    ),
    "originality_creativity": (
        "original",
        "creativ",
        "unique",
        "novel",
        "fresh",
        "imaginat",
        "distinctive",
        "style",
        "stylis",
        "clich",
        "conventional",
        "generic",
    ),
    "overall_evaluation": (
        "overall",
        "ultimately",
        "in sum",
        "altogether",
        "in the end",
        "impression",
        "appeal",
        "succeed",
        "falls short",
        "verdict",
        "aesthetic value",
    ),
}
assert set(ASPECT_KEYWORDS) == set(AESTHETIC_ASPECTS)

_ASPECT_RES = {
    aspect: re.compile(r"\b(?:" + "|".join(re.escape(s) for s in stems) + ")", re.IGNORECASE)
    for aspect, stems in ASPECT_KEYWORDS.items()
}
LINKING_RE = re.compile(
    r"\b(because|due to|therefore|thus|so|as a result|which makes|leading to|hence|so that)\b",
    re.IGNORECASE,
)

# Role labels at a line start, chat-template tokens, tool/role tags and code fences: signs that
# the teacher leaked protocol text into the rationale.
ROLE_LINE_RE = re.compile(r"(?im)^\s*(system|user|assistant|developer|human|gpt)\s*:")
PROTOCOL_RE = re.compile(
    r"<\|[a-z_]+\|>|</?(tool_call|function_call|system|assistant|user|script)\b[^>]*>",
    re.IGNORECASE,
)
FENCE_RE = re.compile(r"```|~~~")
TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9_-]*\s*/?>")
NUMBER_RE = re.compile(r"(?<![\w.])[+-]?(?:\d+(?:[.,]\d+)?|\.\d+)(?![\w])")
_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")


@dataclass(frozen=True)
class Violation:
    """One failed check: a short code (counted in summaries) and a human-readable detail."""

    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


@dataclass
class RuleResult:
    """The outcome of the rule checks on one completion."""

    rationale: str | None  # the text inside <think>, stripped (None without a think block)
    words: int = 0
    aspects: tuple[str, ...] = ()
    has_linking: bool = False
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def local_checks(self) -> dict:
        return {
            "think_words": self.words,
            "aspects_touched": len(self.aspects),
            "aspects": list(self.aspects),
            "has_causal_linking_terms": self.has_linking,
        }


def aspects_touched(text: str) -> tuple[str, ...]:
    """The aesthetic aspects (ArtiMuse keys, in their order) that `text` mentions."""
    return tuple(a for a, rx in _ASPECT_RES.items() if rx.search(text))


def _states_score(think: str, target_100: float, native: float | None) -> str | None:
    """The first number in `think` that gives the score away, or None.

    On 0-100 any number within 0.5 of the target counts (73, 73.4, 73.42). A native-scale
    score (e.g. 3.45 on 1-5) counts when written with decimals and equal at that precision;
    bare small integers are left alone ("two factors", "1-2 stops").
    """
    for m in NUMBER_RE.finditer(think):
        token = m.group(0).replace(",", ".")
        value = float(token)
        if abs(value - target_100) <= 0.5 + 1e-9:
            return m.group(0)
        if native is not None and "." in token:
            decimals = len(token.split(".")[1])
            if round(native, decimals) == value:
                return m.group(0)
    return None


def check_completion(
    text: str,
    task: str,
    target_100: float,
    rules: RuleConfig,
    *,
    native_score: float | None = None,
) -> RuleResult:
    """Run every rule check on a teacher completion.

    Parameters
    ----------
    text : the completion, `<think>...</think><answer>...</answer>`.
    task : 'iqa' or 'iaa'.
    target_100 : the score the teacher was given, on 0-100 (two decimals).
    rules : word ranges and the IAA aspect minimum.
    native_score : the label on its native scale, also forbidden inside `<think>`
        (None when the native scale is 0-100).

    Returns
    -------
    RuleResult with the rationale (think text) and every violation found.
    """
    text = text or ""
    out = RuleResult(rationale=None)
    bad = out.violations

    counts = {tok: text.count(tok) for tok in _TOKENS}
    if any(n != 1 for n in counts.values()):
        found = ", ".join(f"{tok} x{n}" for tok, n in counts.items())
        bad.append(
            Violation("tags", f"need exactly one <think> and one <answer> block; found {found}")
        )
    m = re.fullmatch(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", text, re.DOTALL)
    if m is None and counts["<think>"] == 1 == counts["</think>"]:
        tm = re.search(r"<think>(.*?)</think>", text, re.DOTALL)
        out.rationale = tm.group(1).strip() if tm else None
        if not any(v.code == "tags" for v in bad):
            bad.append(
                Violation(
                    "layout",
                    "the completion must be <think>...</think> then <answer>...</answer> and nothing else",
                )
            )
    elif m is not None:
        out.rationale = m.group(1).strip()
        if TAG_RE.search(m.group(1)) or TAG_RE.search(m.group(2)):
            bad.append(Violation("nested_tags", "markup tags inside <think> or <answer>"))

    if ROLE_LINE_RE.search(text) or PROTOCOL_RE.search(text):
        bad.append(Violation("role_marker", "role labels, chat tokens or tool tags in the text"))
    if FENCE_RE.search(text):
        bad.append(Violation("code_fence", "code fences in the text"))

    answer = parse_answer(text)
    if answer is None:
        bad.append(Violation("answer_not_number", "the <answer> block is not exactly one number"))
    elif not math.isclose(answer, target_100, abs_tol=5e-7):
        bad.append(
            Violation(
                "answer_mismatch",
                f"answer {answer:g} differs from the given score {target_100:.2f}",
            )
        )

    think = out.rationale
    if think is None:
        if not any(v.code == "tags" for v in bad):
            bad.append(Violation("tags", "no <think> block"))
        return out
    out.words = count_words(think)
    lo, hi = rules.words(task)
    if not lo <= out.words <= hi:
        bad.append(Violation("word_count", f"<think> has {out.words} words; allowed {lo}-{hi}"))
    leaked = _states_score(think, target_100, native_score)
    if leaked is not None:
        bad.append(Violation("score_in_think", f"<think> states the score ({leaked})"))
    out.aspects = aspects_touched(think)
    out.has_linking = LINKING_RE.search(think) is not None
    if task == "iaa" and len(out.aspects) < rules.iaa_min_aspects:
        bad.append(
            Violation(
                "aspects",
                f"<think> touches {len(out.aspects)} of 8 aesthetic aspects; at least "
                f"{rules.iaa_min_aspects} needed",
            )
        )
    return out
