"""Evaluation harness: generate answers for labelled images, score them, write the reports.

Layout of an output folder::

    run.json                 model and generation settings (a rerun must match them)
    <dataset>/samples.jsonl  one record per image, appended per batch (resumable)
    <dataset>/metrics.json   metrics under both parse-failure conventions, think statistics
    <dataset>/scatter.png    predicted vs ground truth
    summary.md / .json       one table over every dataset of the call (both tasks)

A rerun with the same settings skips the images already in ``samples.jsonl`` and only
recomputes the metrics; the model is not even loaded when nothing is left to generate.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tatar import metrics
from tatar.datasets import LoadedDataset, Sample
from tatar.generation import Backend, GenerationSettings, load_image
from tatar.outputs import (
    JsonlStore,
    atomic_write_json,
    atomic_write_text,
    check_run_info,
    folder_lock,
)
from tatar.parsing import count_words, has_think, parse_answer, think_words
from tatar.plots import scatter_plot
from tatar.progress import progress_bar
from tatar.scales import clip_prediction
from tatar.scoring import generate_each

FAILURE_CONVENTION = (
    "scored: every image stays in N and an unparsed answer is replaced by the median of the "
    "parsed predictions of the same dataset (50 when none parsed); valid_only: unparsed answers "
    "are dropped"
)


def make_record(sample: Sample, completions: Sequence[str]) -> dict:
    """One per-sample record: completions, parsed scores, mean/std over samples, word counts."""
    scores = [parse_answer(c) for c in completions]
    parsed = [clip_prediction(s) for s in scores if s is not None]
    return {
        "id": sample.id,
        "image": str(sample.image),
        "dataset": sample.dataset,
        "task": sample.task,
        "gt": sample.gt,
        "gt_100": sample.gt_100,
        "completions": list(completions),
        "scores": scores,
        "pred": statistics.fmean(parsed) if parsed else None,
        "pred_std": statistics.pstdev(parsed) if parsed else None,
        "parse_rate": len(parsed) / len(completions) if completions else 0.0,
        "think_words": [think_words(c) for c in completions],
        "has_think": [has_think(c) for c in completions],
        "words": [count_words(c) for c in completions],
    }


def image_failure_record(sample: Sample, reason: str) -> dict:
    """The record of an image that could not be read or processed: no completion, so it
    counts as a failed answer (like a parse failure), and ``image_error`` says why. A rerun
    tries the image again."""
    return {**make_record(sample, []), "image_error": reason}


_RECORD_LISTS = ("completions", "scores", "think_words", "has_think", "words")


def check_record(rec: dict) -> str | None:
    """What is wrong with a per-sample record read back from ``samples.jsonl`` (None: fine)."""
    for key in _RECORD_LISTS:
        if not isinstance(rec.get(key), list):
            return f"record {rec.get('id')!r} has no list {key!r}"
    if len({len(rec[k]) for k in _RECORD_LISTS}) != 1:
        return f"record {rec.get('id')!r} has lists of different lengths"
    if not all(isinstance(c, str) for c in rec["completions"]):
        return f"record {rec.get('id')!r} has a completion that is not text"
    for key in ("pred", "pred_std", "gt_100"):
        v = rec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"record {rec.get('id')!r}: {key} is not a number"
    if not rec["completions"] and "image_error" not in rec:
        return f"record {rec.get('id')!r} has no completion"
    return None


def dataset_metrics(records: Sequence[dict], *, n_resamples: int = 1000) -> dict:
    """Metrics of one dataset's records (both conventions), think and sampling statistics."""
    pred = [r["pred"] for r in records]
    gt = [r["gt_100"] for r in records]
    out = metrics.summarize(pred, gt, n_resamples=n_resamples)
    tw = [w for r in records for w in r["think_words"]]
    ht = [h for r in records for h in r["has_think"]]
    cw = [w for r in records for w in r["words"]]
    out["completion_parse_failure_rate"] = (
        1.0 - float(np.mean([s is not None for r in records for s in r["scores"]]))
        if records
        else math.nan
    )
    out["think"] = metrics.think_word_stats(tw, ht, cw)
    n_samples = max((len(r["completions"]) for r in records), default=1)
    if n_samples > 1:
        stds = [r["pred_std"] for r in records if r["pred_std"] is not None]
        out["sampling"] = {
            "samples_per_image": n_samples,
            "mean_pred_std": float(np.mean(stds)) if stds else math.nan,
            "median_pred_std": float(np.median(stds)) if stds else math.nan,
            "mean_parse_rate": float(np.mean([r["parse_rate"] for r in records])),
        }
    return out


@dataclass
class DatasetResult:
    dataset: LoadedDataset
    metrics: dict
    folder: Path
    generated: int  # images generated in this call (0 on a complete rerun)
    unreadable: list[str] = field(default_factory=list)  # "image: reason", counted as failures


def evaluate(
    backend: Backend | Callable[[], Backend],
    datasets: Sequence[LoadedDataset],
    out_dir: str | Path,
    settings: GenerationSettings,
    **kw,
) -> list[DatasetResult]:
    """Evaluate `backend` on `datasets`, writing everything under `out_dir` (resumable).

    `backend` may be a zero-argument factory: it is called only if something is left to
    generate. Keyword arguments: `model` and `pixels` identify the run in ``run.json``;
    `n_resamples` (bootstrap), `overwrite`, `progress`. An image that cannot be read or
    processed becomes a failed answer of its dataset (counted like a parse failure, listed in
    `DatasetResult.unreadable`), not a stop. `out_dir` is locked while the evaluation runs: a
    second one into the same folder stops with a ValueError.
    """
    with folder_lock(out_dir):
        return _evaluate(backend, datasets, Path(out_dir), settings, **kw)


def _generate_batch(live: Backend, batch: list[Sample], settings: GenerationSettings) -> list[dict]:
    """Records of one batch; unreadable or unprocessable images become failure records."""
    records: dict[str, dict] = {}
    readable, images = [], []
    for s in batch:
        try:
            images.append(load_image(s.image))
            readable.append(s)
        except (ValueError, OSError) as exc:
            records[s.id] = image_failure_record(s, str(exc))
    if readable:
        keys = [s.id for s in readable]
        tasks = [s.task for s in readable]
        answers = generate_each(live, images, tasks, settings, key="|".join(keys), keys=keys)
        for s, c in zip(readable, answers, strict=True):
            if isinstance(c, str):
                records[s.id] = image_failure_record(s, f"cannot process image {s.image}: {c}")
            else:
                records[s.id] = make_record(s, c)
    return [records[s.id] for s in batch]


def _other_item(rec: dict, s: Sample) -> str | None:
    """Why a stored record was not made for sample `s` (None: it was)."""
    if rec.get("task") != s.task:
        return f"task {rec.get('task')} there, {s.task} now"
    if rec.get("gt") != s.gt:
        return f"ground truth {rec.get('gt')!r} there, {s.gt:g} now"
    image = rec.get("image")
    if image != str(s.image):
        try:
            same = os.path.samefile(str(image), s.image)
        except (OSError, TypeError, ValueError):
            same = False
        if not same:
            return f"image {image} there, {s.image} now"
    return None


def _drop_records_of_other_items(d: LoadedDataset, done: dict[str, dict], store) -> None:
    """Records whose id is one of `d`'s samples but that were made for another image, label or
    task (another label file with the same name evaluated into this folder, a corrected label)
    are named and computed again, never used for this run's metrics."""
    others = []
    for s in d.samples:
        rec = done.get(s.id)
        why = None if rec is None else _other_item(rec, s)
        if why:
            others.append(f"{s.id}: {why}")
            del done[s.id]
    if others:
        shown = "; ".join(others[:3]) + ("; ..." if len(others) > 3 else "")
        store.warn(
            f"{store.path}: {len(others)} record(s) were made for another image, label "
            f"or task ({shown}); they are computed again"
        )


def _evaluate(
    backend: Backend | Callable[[], Backend],
    datasets: Sequence[LoadedDataset],
    out_dir: Path,
    settings: GenerationSettings,
    *,
    model: str,
    pixels: dict | None = None,
    n_resamples: int = 1000,
    overwrite: bool = False,
    progress: bool = True,
) -> list[DatasetResult]:
    names = [d.slug for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"the same dataset is listed twice: {', '.join(names)}")
    run_info = {"model": model, "generation": settings.fingerprint(), "pixels": pixels or {}}
    if overwrite:
        for d in datasets:
            (out_dir / d.slug / "samples.jsonl").unlink(missing_ok=True)
    check_run_info(out_dir, run_info, overwrite=overwrite)

    stores = {
        d.slug: JsonlStore(out_dir / d.slug / "samples.jsonl", validate=check_record)
        for d in datasets
    }
    done = {d.slug: stores[d.slug].read() for d in datasets}
    for d in datasets:
        _drop_records_of_other_items(d, done[d.slug], stores[d.slug])
    # an image that could not be read last time is tried again (it may have been replaced)
    todo = {
        d.slug: [
            s for s in d.samples if s.id not in done[d.slug] or "image_error" in done[d.slug][s.id]
        ]
        for d in datasets
    }
    generated = {d.slug: 0 for d in datasets}

    if any(todo.values()):
        live = backend() if callable(backend) and not hasattr(backend, "generate") else backend
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with progress_bar(*columns, enabled=progress) as bar:
            for d in datasets:
                task_id = bar.add_task(
                    d.name, total=len(d.samples), completed=len(d.samples) - len(todo[d.slug])
                )
                pending = todo[d.slug]
                for start in range(0, len(pending), settings.batch_size):
                    batch = pending[start : start + settings.batch_size]
                    records = _generate_batch(live, batch, settings)
                    stores[d.slug].append(records)
                    done[d.slug].update((r["id"], r) for r in records)
                    generated[d.slug] += len(batch)
                    bar.advance(task_id, len(batch))

    results = []
    for d in datasets:
        records = [done[d.slug][s.id] for s in d.samples]
        unreadable = [f"{r['image']}: {r['image_error']}" for r in records if "image_error" in r]
        m = dataset_metrics(records, n_resamples=n_resamples)
        m["unreadable_images"] = len(unreadable)
        m.update(
            dataset=d.name,
            task=d.task,
            scale=f"{d.scale.low:g}-{d.scale.high:g}",
            labels=str(d.labels),
            image_root=str(d.image_root),
            label_records=d.total,
            missing_images_skipped=len(d.missing),
            failure_convention=FAILURE_CONVENTION,
            model=model,
            generation=settings.fingerprint(),
        )
        folder = out_dir / d.slug
        atomic_write_json(folder / "metrics.json", m)
        scatter_plot(
            folder / "scatter.png",
            [r["gt_100"] for r in records],
            [r["pred"] for r in records],
            title=f"{d.name} ({d.task.upper()})",
            failure_fill=m["failure_fill"],
            pred_std=[r["pred_std"] for r in records] if settings.samples > 1 else None,
            srcc=m["scored"]["srcc"],
            plcc=m["scored"]["plcc"],
        )
        results.append(DatasetResult(d, m, folder, generated[d.slug], unreadable))
    write_summary(out_dir, results, model=model, settings=settings)
    return results


def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _ci(v, ci) -> str:
    if not ci or any(c is None or (isinstance(c, float) and math.isnan(c)) for c in ci):
        return _f(v)
    return f"{_f(v)} [{_f(ci[0], 2)}, {_f(ci[1], 2)}]"


def summary_rows(results: Sequence[DatasetResult]) -> list[dict]:
    rows = []
    for r in results:
        m = r.metrics
        rows.append(
            {
                "task": m["task"],
                "dataset": m["dataset"],
                "n": m["n"],
                "parse_failure_rate": m["parse_failure_rate"],
                "srcc": m["scored"]["srcc"],
                "srcc_ci95": m["scored"].get("srcc_ci95"),
                "plcc": m["scored"]["plcc"],
                "plcc_ci95": m["scored"].get("plcc_ci95"),
                "plcc_logistic": m["scored"]["plcc_logistic"],
                "plcc_logistic_fit": m["scored"].get("plcc_logistic_fit", metrics.LOGISTIC),
                "krcc": m["scored"]["krcc"],
                "mae": m["scored"]["mae"],
                "valid_srcc": m["valid_only"]["srcc"],
                "valid_plcc": m["valid_only"]["plcc"],
                "think_rate": m["think"]["think_rate"],
                "mean_think_words": m["think"]["mean_think_words"],
                "mean_pred_std": m.get("sampling", {}).get("mean_pred_std"),
                "missing_images_skipped": m["missing_images_skipped"],
                "unreadable_images": m.get("unreadable_images", 0),
            }
        )
    return rows


def task_mean(values) -> dict:
    """Mean of one metric over a task's datasets, with its coverage.

    ``mean`` is NaN as soon as one dataset's value is undefined (nothing parsed, a constant
    answer): a mean over a silent subset would not be comparable with a complete one.
    ``mean_of_defined`` is the mean over the datasets that have a value, and ``defined`` /
    ``datasets`` say how many those are.
    """
    v = np.array([math.nan if x is None else x for x in values], dtype=float)
    ok = np.isfinite(v)
    return {
        "mean": float(v.mean()) if v.size and ok.all() else math.nan,
        "mean_of_defined": float(v[ok].mean()) if ok.any() else math.nan,
        "defined": int(ok.sum()),
        "datasets": int(v.size),
    }


def _mean_cell(values) -> str:
    t = task_mean(values)
    if t["defined"] == t["datasets"]:
        return _f(t["mean"])
    return (
        f"n/a ({t['datasets'] - t['defined']} of {t['datasets']} undefined; "
        f"mean of the rest {_f(t['mean_of_defined'])})"
    )


def _plcc_logistic_cell(value, fit) -> str:
    return _f(value) + (" (raw: fit failed)" if fit == metrics.RAW_FALLBACK else "")


def summary_markdown(rows: Sequence[dict], *, model: str, settings: GenerationSettings) -> str:
    sampling = settings.samples > 1
    head = [
        "Task",
        "Dataset",
        "N",
        "Parse fail",
        "SRCC [95% CI]",
        "PLCC [95% CI]",
        "PLCC (logistic)",
        "KRCC",
        "MAE",
        "SRCC / PLCC (parsed only)",
        "Think rate",
        "Think words",
    ] + (["Mean std"] if sampling else [])
    lines = [
        "# TATAR evaluation",
        "",
        f"Model: `{model}`  ",
        f"Decoding: {'sampled, ' + str(settings.samples) + ' completions per image (score = mean)' if sampling else 'greedy'}; "
        f"think: {settings.think}; max new tokens: {settings.max_new_tokens}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for task in ("iqa", "iaa"):
        task_rows = [r for r in rows if r["task"] == task]
        for r in task_rows:
            cells = [
                task.upper(),
                r["dataset"]
                + (
                    f" ({r['missing_images_skipped']} missing skipped)"
                    if r["missing_images_skipped"]
                    else ""
                )
                + (
                    f" ({r['unreadable_images']} unreadable, counted as failures)"
                    if r.get("unreadable_images")
                    else ""
                ),
                str(r["n"]),
                _pct(r["parse_failure_rate"]),
                _ci(r["srcc"], r["srcc_ci95"]),
                _ci(r["plcc"], r["plcc_ci95"]),
                _plcc_logistic_cell(r["plcc_logistic"], r.get("plcc_logistic_fit")),
                _f(r["krcc"]),
                _f(r["mae"], 2),
                f"{_f(r['valid_srcc'])} / {_f(r['valid_plcc'])}",
                _f(r["think_rate"], 2),
                _f(r["mean_think_words"], 1),
            ] + ([_f(r["mean_pred_std"], 2)] if sampling else [])
            lines.append("| " + " | ".join(cells) + " |")
        if len(task_rows) > 1:
            avg = [
                f"**{task.upper()} mean**",
                "",
                "",
                "",
                _mean_cell(r["srcc"] for r in task_rows),
                _mean_cell(r["plcc"] for r in task_rows),
            ]
            lines.append("| " + " | ".join(avg + [""] * (len(head) - len(avg))) + " |")
    lines += [
        "",
        f"Parse failures ({FAILURE_CONVENTION}). SRCC, PLCC, KRCC, MAE: scored convention, "
        "scores on 0-100. 95% CIs: percentile bootstrap over images. PLCC (logistic): after "
        "the monotone increasing 4-parameter logistic; 'raw: fit failed' marks the raw PLCC "
        "where the fit failed or found no increasing relation. A task mean is n/a when one of "
        "its datasets has no value.",
        "",
    ]
    return "\n".join(lines)


def per_task_summary(results: Sequence[DatasetResult]) -> dict:
    """Mean SRCC/PLCC over the datasets of each task, and think statistics over all its answers."""
    out = {}
    for task in ("iqa", "iaa"):
        ms = [r.metrics for r in results if r.metrics["task"] == task]
        if not ms:
            continue
        weights = np.array([m["think"]["completions"] for m in ms], dtype=float)
        total = weights.sum()

        def weighted(key, ms=ms, weights=weights, total=total):
            vals = np.array([m["think"][key] for m in ms], dtype=float)
            return float((vals * weights).sum() / total) if total else math.nan

        srcc = task_mean(m["scored"]["srcc"] for m in ms)
        plcc = task_mean(m["scored"]["plcc"] for m in ms)
        out[task] = {
            "datasets": [m["dataset"] for m in ms],
            "mean_srcc": srcc["mean"],
            "mean_plcc": plcc["mean"],
            "mean_srcc_of_defined": srcc["mean_of_defined"],
            "mean_plcc_of_defined": plcc["mean_of_defined"],
            "datasets_with_srcc": srcc["defined"],
            "datasets_with_plcc": plcc["defined"],
            "n_datasets": len(ms),
            "parse_failure_rate": weighted_rate(ms),
            "think_rate": weighted("think_rate"),
            "mean_think_words": weighted("mean_think_words"),
            "mean_completion_words": weighted("mean_completion_words"),
        }
    return out


def weighted_rate(ms: Sequence[dict]) -> float:
    n = sum(m["n"] for m in ms)
    return sum(m["parse_failure_rate"] * m["n"] for m in ms) / n if n else math.nan


def write_summary(
    out_dir: Path, results: Sequence[DatasetResult], *, model: str, settings: GenerationSettings
) -> None:
    rows = summary_rows(results)
    per_task = per_task_summary(results)
    atomic_write_json(
        out_dir / "summary.json",
        {
            "model": model,
            "generation": settings.fingerprint(),
            "datasets": rows,
            "per_task": per_task,
        },
    )
    text = summary_markdown(rows, model=model, settings=settings)
    if per_task:
        text += "\nPer task (all answers of the task's datasets):\n\n"
        text += "| Task | Datasets | Mean SRCC | Mean PLCC | Parse fail | Think rate | Think words | Completion words |\n"
        text += "|---|---|---|---|---|---|---|---|\n"
        for task, t in per_task.items():
            ms = [r for r in rows if r["task"] == task]
            text += (
                f"| {task.upper()} | {t['n_datasets']} | {_mean_cell(r['srcc'] for r in ms)} | "
                f"{_mean_cell(r['plcc'] for r in ms)} | "
                f"{_pct(t['parse_failure_rate'])} | {_f(t['think_rate'], 2)} | "
                f"{_f(t['mean_think_words'], 1)} | {_f(t['mean_completion_words'], 1)} |\n"
            )
    atomic_write_text(out_dir / "summary.md", text)


def probe_markdown(per_mode: dict[str, list[DatasetResult]]) -> str:
    """The reasoning probe: one row per dataset, SRCC/PLCC and think words per think mode."""
    modes = list(per_mode)
    head = (
        ["Task", "Dataset"]
        + [f"{m}: SRCC / PLCC" for m in modes]
        + [f"{m}: think words" for m in modes]
    )
    lines = [
        "# Reasoning probe (think modes)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    first = per_mode[modes[0]]
    for i, r in enumerate(first):
        cells = [r.metrics["task"].upper(), r.metrics["dataset"]]
        for m in modes:
            s = per_mode[m][i].metrics["scored"]
            cells.append(f"{_f(s['srcc'])} / {_f(s['plcc'])}")
        for m in modes:
            cells.append(_f(per_mode[m][i].metrics["think"]["mean_think_words"], 1))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Each mode's full report is in its own folder (think-<mode>/).", ""]
    return "\n".join(lines)
