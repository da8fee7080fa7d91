"""The fixed choices of `yoho` options, as Literal types: typer lists them in --help and
refuses anything else with the allowed values named.

Profile names are spelled out here rather than read from `yoho.profiles`, which imports torch
and would make every `yoho --help` take seconds; a test keeps the two lists equal.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DEFAULT_PROFILE", "Device", "Engine", "ProfileName", "PROFILE_NAMES"]

Device = Literal["auto", "cpu", "cuda", "mps"]
Engine = Literal["local", "ray"]
ProfileName = Literal[
    "cpu",
    "cpu_calibrated",
    "cpu_fused",
    "cpu_guided",
    "cpu_shuffled",
    "cpu_shuffled_ema",
    "cpu_shuffled_anneal",
    "cpu_shuffled_seeded",
    "cpu_tuned",
    "paper",
    "tiny",
]
# The profile behind the figures in docs/yoho_evaluation.md: what segment/evaluate/serve use.
DEFAULT_PROFILE = "cpu_guided"
PROFILE_NAMES = ProfileName.__args__
