"""One method on one image: a baseline or YOHO, timed, returning its lesion mask."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from yoho.annotation import Annotation
from yoho.baselines import BASELINES, run_baseline
from yoho.evaluation.settings import apply_ablations, yoho_label
from yoho.profiles import get_profile

__all__ = ["MethodSpec", "MethodOutput", "parse_methods", "run_method"]


@dataclass(frozen=True)
class MethodSpec:
    """A method to evaluate: `kind` is "yoho" or a baseline name."""

    kind: str
    profile: str = "cpu"
    ablations: tuple[str, ...] = ()
    seed: int = 0
    device: str | None = "cpu"

    @property
    def label(self) -> str:
        return yoho_label(self.profile, self.ablations) if self.kind == "yoho" else self.kind


@dataclass
class MethodOutput:
    mask: np.ndarray
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)
    probability: np.ndarray | None = None
    model: object | None = None  # YOHO's network, kept for correction rounds when asked
    profile: object | None = None  # the profile YOHO ran with (ablations applied)
    annotation: Annotation | None = None  # the annotation YOHO ran with (ablations applied)


def parse_methods(
    text: str,
    profile: str = "cpu",
    ablations: tuple[str, ...] = (),
    seed: int = 0,
    device: str | None = "cpu",
) -> list[MethodSpec]:
    """'yoho,roi,grabcut,random_walker' → method specs (YOHO gets the profile/ablations)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError("--methods names no method")
    known = ["yoho", *BASELINES]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if "yoho" in names:
        get_profile(profile)  # fail early on a bad profile name
    return [
        MethodSpec(n, profile, ablations, seed, device) if n == "yoho" else MethodSpec(n)
        for n in dict.fromkeys(names)
    ]


def run_method(
    spec: MethodSpec, image: np.ndarray, ann: Annotation, keep_model: bool = False
) -> MethodOutput:
    """Run `spec` on one image; YOHO also reports its Dice-free extras (timings).

    keep_model: YOHO's output keeps its network (and profile), for correction rounds.
    """
    t0 = time.perf_counter()
    if spec.kind != "yoho":
        mask = run_baseline(spec.kind, image, ann)
        return MethodOutput(mask=mask, seconds=time.perf_counter() - t0)
    from yoho.pipeline import segment  # torch is imported only when YOHO runs

    profile, yoho_ann = apply_ablations(get_profile(spec.profile), ann, spec.ablations)
    result = segment(
        image, yoho_ann, profile=profile, seed=spec.seed, device=spec.device,
        keep_model=keep_model,
    )  # fmt: skip
    return MethodOutput(
        mask=result.mask,
        seconds=time.perf_counter() - t0,
        extra={"train_s": result.timings["train"], "steps": float(len(result.curve))},
        probability=result.probability,
        model=result.model,
        profile=profile,
        annotation=yoho_ann,
    )
