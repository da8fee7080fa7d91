"""Score images with a TATAR model: a 0-100 score and the rationale, per image and task."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tatar.generation import Backend, GenerationSettings, load_image
from tatar.parsing import parse_answer, think_text
from tatar.prompts import check_task
from tatar.scales import clip_prediction


@dataclass
class ImageScore:
    """The answer(s) for one image and one task.

    ``score`` is the mean of the parsed answers (None when none parsed), ``std`` their
    population standard deviation (0 for one sample), ``rationale`` the ``<think>`` text of the
    first completion that has one.
    """

    image: str
    task: str
    score: float | None
    std: float | None
    parse_rate: float
    rationale: str | None
    completions: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def tasks_for(task: str) -> list[str]:
    return ["iqa", "iaa"] if task == "both" else [check_task(task)]


def score_images(
    backend: Backend,
    images: Sequence[str | Path],
    settings: GenerationSettings,
    *,
    task: str = "both",
) -> list[ImageScore]:
    """One `ImageScore` per image and task (images in order, IQA before IAA)."""
    paths = [Path(p) for p in images]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {p}")
    tasks = tasks_for(task)
    jobs = [(p, t) for p in paths for t in tasks]
    results: list[ImageScore] = []
    for start in range(0, len(jobs), settings.batch_size):
        batch = jobs[start : start + settings.batch_size]
        pil = [load_image(p) for p, _ in batch]
        key = "|".join(f"{p}:{t}" for p, t in batch)
        outputs = backend.generate(pil, [t for _, t in batch], settings, key=key)
        for (p, t), comps in zip(batch, outputs, strict=True):
            parsed = [clip_prediction(s) for s in (parse_answer(c) for c in comps) if s is not None]
            rationale = next((r for r in (think_text(c) for c in comps) if r), None)
            results.append(
                ImageScore(
                    image=str(p),
                    task=t,
                    score=statistics.fmean(parsed) if parsed else None,
                    std=statistics.pstdev(parsed) if parsed else None,
                    parse_rate=len(parsed) / len(comps) if comps else 0.0,
                    rationale=rationale,
                    completions=list(comps),
                )
            )
    return results
