"""Score images with a TATAR model: a 0-100 score and the rationale, per image and task."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tatar.generation import Backend, GenerationSettings, load_image
from tatar.parsing import parse_answer, think_text
from tatar.progress import progress_bar
from tatar.prompts import check_task
from tatar.scales import clip_prediction


@dataclass
class ImageScore:
    """The answer(s) for one image and one task.

    ``score`` is the mean of the parsed answers (None when none parsed), ``std`` their
    population standard deviation (0 for one sample), ``rationale`` the ``<think>`` text of the
    first completion that has one. ``error`` says why an image could not be scored (unreadable,
    or refused by the processor); it is then the only answer and there are no completions.
    """

    image: str
    task: str
    score: float | None
    std: float | None
    parse_rate: float
    rationale: str | None
    completions: list[str]
    error: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["error"] is None:
            del d["error"]
        return d


def tasks_for(task: str) -> list[str]:
    return ["iqa", "iaa"] if task == "both" else [check_task(task)]


def score_images(
    backend: Backend,
    images: Sequence[str | Path],
    settings: GenerationSettings,
    *,
    task: str = "both",
    progress: bool = False,
) -> list[ImageScore]:
    """One `ImageScore` per image and task (images in order, IQA before IAA).

    An image that cannot be read or processed gets an `ImageScore` with ``error`` set; the
    other images are scored all the same. `progress` shows a bar (plain lines when the output
    is not a terminal).
    """
    paths = [Path(p) for p in images]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {p}")
    tasks = tasks_for(task)
    jobs = [(p, t) for p in paths for t in tasks]
    results: list[ImageScore] = []
    with progress_bar(enabled=progress and len(jobs) > 0) as bar:
        task_id = bar.add_task("scoring", total=len(jobs))
        for start in range(0, len(jobs), settings.batch_size):
            batch = jobs[start : start + settings.batch_size]
            results += score_batch(backend, batch, settings)
            bar.advance(task_id, len(batch))
    return results


def generate_each(
    backend: Backend,
    images: list,
    tasks: list[str],
    settings: GenerationSettings,
    *,
    key: str,
    keys: list[str],
) -> list[list[str] | str]:
    """`backend.generate` on a batch; where the processor refuses an image (a ValueError, e.g.
    an extreme aspect ratio), that image's entry is the reason (a str) and the others are
    answered all the same."""
    try:
        return backend.generate(images, tasks, settings, key=key)
    except ValueError as exc:
        if len(images) == 1:
            return [str(exc)]
    # One refused image fails its whole batch: alone, each image passes or fails on its own.
    out: list[list[str] | str] = []
    for im, t, k in zip(images, tasks, keys, strict=True):
        try:
            out.append(backend.generate([im], [t], settings, key=k)[0])
        except ValueError as exc:
            out.append(str(exc))
    return out


def _failed(p: Path, t: str, reason: str) -> ImageScore:
    return ImageScore(str(p), t, None, None, 0.0, None, [], error=reason)


def score_batch(
    backend: Backend, batch: list[tuple[Path, str]], settings: GenerationSettings
) -> list[ImageScore]:
    """One `ImageScore` per (image, task) job of `batch`, in order, from one generate call.

    An image listed for several tasks is read once. An image that is missing, cannot be read or
    is refused by the processor gets an `ImageScore` with ``error`` set.
    """
    out: dict[int, ImageScore] = {}
    ok, pil = [], []
    loaded: dict[Path, object] = {}
    for i, (p, t) in enumerate(batch):
        try:
            if p not in loaded:
                loaded[p] = load_image(p)
            pil.append(loaded[p])
            ok.append(i)
        except FileNotFoundError:
            out[i] = _failed(p, t, f"image not found: {p}")
        except (ValueError, OSError) as exc:
            out[i] = _failed(p, t, str(exc))
    outputs: list[list[str] | str] = []
    if ok:
        keys = [f"{batch[i][0]}:{batch[i][1]}" for i in ok]
        tasks = [batch[i][1] for i in ok]
        outputs = generate_each(backend, pil, tasks, settings, key="|".join(keys), keys=keys)
    for i, comps in zip(ok, outputs, strict=True):
        p, t = batch[i]
        if isinstance(comps, str):
            out[i] = _failed(p, t, f"cannot process image {p}: {comps}")
        else:
            out[i] = image_score(p, t, comps)
    return [out[i] for i in range(len(batch))]


def image_score(image: str | Path, task: str, completions: Sequence[str]) -> ImageScore:
    """The `ImageScore` of one image's completions: mean and population std of the parsed
    answers (clipped to 0-100), the first rationale."""
    parsed = [clip_prediction(s) for s in (parse_answer(c) for c in completions) if s is not None]
    return ImageScore(
        image=str(image),
        task=task,
        score=statistics.fmean(parsed) if parsed else None,
        std=statistics.pstdev(parsed) if parsed else None,
        parse_rate=len(parsed) / len(completions) if completions else 0.0,
        rationale=next((r for r in (think_text(c) for c in completions) if r), None),
        completions=list(completions),
    )
