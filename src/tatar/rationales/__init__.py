"""Fast-slow rationale construction: a teacher writes `<think>` rationales for the true score,
rule checks and a judge filter them, and the kept records are the SFT input.

IQA gets short, concrete, distortion-focused rationales; IAA gets deliberative aesthetic
narratives. Everything talks to any OpenAI-compatible chat endpoint (vLLM serve, a hosted API).
"""

from tatar.rationales.prompts import PROMPT_VERSION

__all__ = ["PROMPT_VERSION"]
