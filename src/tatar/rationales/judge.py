"""Reading the judge's JSON verdict and deciding whether a rationale is kept.

A verdict that cannot be read (no JSON object, a bad decision, a missing or out-of-range
criterion score) is a rejection with its reason, never a crash.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from tatar.rationales.config import JUDGE_CRITERIA, JudgePolicy
from tatar.rationales.rules import Violation

_FENCE_RE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_THINK_RE = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


class VerdictError(ValueError):
    """The judge's answer is not a usable verdict; `code` is counted in the summary."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def violation(self) -> Violation:
        return Violation(self.code, self.detail)


@dataclass
class Verdict:
    decision: str  # 'keep' or 'reject', as the judge said
    scores: dict[str, float]
    raw: dict[str, Any]  # the judge's JSON object, as returned
    major_issues: list[str] = field(default_factory=list)


def _json_object(text: str) -> dict[str, Any]:
    s = _THINK_RE.sub("", text or "").strip()  # a reasoning judge served without a parser
    s = _FENCE_RE.sub("", s).strip()
    start = s.find("{")
    if start < 0:
        raise VerdictError(
            "judge_unparseable", f"no JSON object in the judge's answer: {s[:120]!r}"
        )
    try:
        obj, _ = json.JSONDecoder().raw_decode(s[start:])
    except json.JSONDecodeError as e:
        raise VerdictError(
            "judge_unparseable", f"the judge's JSON does not parse ({e.msg} at char {e.pos})"
        ) from None
    if not isinstance(obj, dict):
        raise VerdictError("judge_unparseable", "the judge's JSON is not an object")
    return obj


def parse_verdict(text: str, task: str) -> Verdict:
    """The verdict in a judge answer (JSON, optionally fenced); VerdictError when unusable."""
    obj = _json_object(text)
    decision = obj.get("decision")
    if not isinstance(decision, str) or decision.strip().lower() not in ("keep", "reject"):
        raise VerdictError("judge_invalid", f"'decision' must be keep or reject, got {decision!r}")
    scores_in = obj.get("scores")
    if not isinstance(scores_in, dict):
        raise VerdictError("judge_invalid", "'scores' is missing or not an object")
    scores: dict[str, float] = {}
    for name in JUDGE_CRITERIA[task]:
        v = scores_in.get(name)
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = float(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise VerdictError("judge_invalid", f"score '{name}' is missing or not a number: {v!r}")
        if not 0 <= v <= 5:
            raise VerdictError("judge_invalid", f"score '{name}' = {v:g} is outside 0-5")
        scores[name] = float(v)
    issues = obj.get("major_issues")
    issues = [str(x) for x in issues] if isinstance(issues, list) else []
    return Verdict(decision=decision.strip().lower(), scores=scores, raw=obj, major_issues=issues)


def policy_violations(verdict: Verdict, task: str, policy: JudgePolicy) -> list[Violation]:
    """Why a verdict rejects the rationale under `policy` (empty: keep)."""
    out: list[Violation] = []
    if policy.require_keep and verdict.decision != "keep":
        why = "; ".join(verdict.major_issues)[:300]
        out.append(
            Violation("judge_decision", "the judge decided reject" + (f": {why}" if why else ""))
        )
    for name, bound in policy.must_exceed.get(task, {}).items():
        score = verdict.scores[name]
        if not score > bound:
            out.append(Violation("judge_score", f"{name} = {score:g}, must exceed {bound:g}"))
    return out
