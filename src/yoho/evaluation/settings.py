"""What one evaluation run varies: the simulated physician's protocol and YOHO's ablations.

A *setting* is a protocol (margin factor, number of lesion and normal circles); its label,
e.g. `m0.15_k3`, keys the results. An *ablation* switches one design choice off; the YOHO
method label carries the profile and the ablations, e.g. `yoho(cpu_tuned)` or
`yoho(cpu_tuned; no_edge+no_rotation)`.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

from yoho.annotation import Annotation
from yoho.losses import LossWeights
from yoho.physician import OracleOptions
from yoho.profiles import Profile

__all__ = [
    "ProtocolSetting",
    "ABLATIONS",
    "parse_ablations",
    "apply_ablations",
    "image_seed",
    "yoho_label",
]


@dataclass(frozen=True)
class ProtocolSetting:
    """The simulated physician's parameters that an evaluation varies."""

    margin_factor: float = 0.15
    lesion_circles: int = 3
    normal_circles: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.margin_factor <= 5:
            raise ValueError(f"margin factor must lie in [0, 5], got {self.margin_factor}")
        if self.lesion_circles < 1:
            raise ValueError(f"need at least one lesion circle, got {self.lesion_circles}")
        if self.normal_circles < 0:
            raise ValueError(f"normal circles cannot be negative, got {self.normal_circles}")

    @property
    def label(self) -> str:
        base = f"m{self.margin_factor:g}_k{self.lesion_circles}"
        return base if self.normal_circles == 3 else f"{base}_n{self.normal_circles}"

    def oracle(self, seed: int) -> OracleOptions:
        return OracleOptions(
            margin_factor=self.margin_factor,
            lesion_circles=self.lesion_circles,
            normal_circles=self.normal_circles,
            seed=seed,
        )


def image_seed(name: str) -> int:
    """The simulated physician's seed for one image: fixed, and different between images."""
    return zlib.crc32(name.encode("utf-8")) % (2**31)


def _no_edge(p: Profile) -> Profile:
    model = dataclasses.replace(p.model, edge_branch=False)
    return dataclasses.replace(p, model=model, loss=dataclasses.replace(p.loss, edge=0, boundary=0))


def _no_boundary(p: Profile) -> Profile:
    return dataclasses.replace(p, loss=dataclasses.replace(p.loss, boundary=0.0))


def _render(**changes):
    def change(p: Profile) -> Profile:
        return dataclasses.replace(p, render=dataclasses.replace(p.render, **changes))

    return change


def _post(**changes):
    def change(p: Profile) -> Profile:
        return dataclasses.replace(p, post=dataclasses.replace(p.post, **changes))

    return change


# name -> (what it switches off, change of the profile). Annotation changes are in
# `apply_ablations` (`no_normal_circles`).
ABLATIONS = {
    "no_edge": ("no edge branch and no boundary head (segmentation loss only)", _no_edge),
    "no_boundary": ("no boundary (Laplacian) loss term", _no_boundary),
    "discs_only": ("patches pasted as discs only (no triangles)", _render(triangle_probability=0)),
    "no_magnify": (
        "no magnified scales (radius ladder capped at the clicked radius)",
        _render(max_zoom=1.0),
    ),
    "no_rotation": ("no rotated patches", _render(rotate_probability=0.0, rotate_triangles=False)),
    "no_normal_circles": ("the normal circles are not given to YOHO", lambda p: p),
    "no_roi_clip": (
        "the prediction is not clipped to the ROI",
        lambda p: dataclasses.replace(p, roi_clip=False),
    ),
    "roi_clip": (
        "the prediction is clipped to the ROI",
        lambda p: dataclasses.replace(p, roi_clip=True),
    ),
    "no_postprocess": (
        "plain threshold: no circle forcing, hole filling or seeded components",
        _post(force_circles=False, fill_holes=False, keep_seeded=False),
    ),
    "no_original_views": (
        "the original image is 1 sample only (the authors)",
        _render(original_views=1),
    ),
    "no_tta": ("no flip test-time augmentation", lambda p: dataclasses.replace(p, tta_flip=False)),
    "no_refine_focus": (
        "correction rounds may change the whole mask (no focus on the new clicks)",
        lambda p: dataclasses.replace(p, refine=dataclasses.replace(p.refine, focus=None)),
    ),
    # Not an ablation but a switch of the same kind: identical bits on any thread count.
    "thread_invariant": (
        "CPU math independent of the thread count (`--reproducible`)",
        lambda p: dataclasses.replace(p, thread_invariant=True),
    ),
}


def parse_ablations(text: str | None) -> tuple[str, ...]:
    """'no_edge,no_rotation' → ('no_edge', 'no_rotation'), checked and in a fixed order."""
    if not text:
        return ()
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablation(s) {', '.join(unknown)}; known: {', '.join(ABLATIONS)}")
    if "roi_clip" in names and "no_roi_clip" in names:
        raise ValueError("ablations roi_clip and no_roi_clip contradict each other")
    return tuple(n for n in ABLATIONS if n in names)


def apply_ablations(
    profile: Profile, annotation: Annotation, ablations: tuple[str, ...]
) -> tuple[Profile, Annotation]:
    """The profile and annotation YOHO is run with under `ablations`."""
    for name in ablations:
        profile = ABLATIONS[name][1](profile)
    if "no_normal_circles" in ablations:
        annotation = dataclasses.replace(annotation, normal_circles=[])
    # LossWeights is frozen; make sure a zeroed term stays a float for the summaries.
    assert isinstance(profile.loss, LossWeights)
    return profile, annotation


def yoho_label(profile: str, ablations: tuple[str, ...] = ()) -> str:
    return f"yoho({profile}; {'+'.join(ablations)})" if ablations else f"yoho({profile})"
