"""Training records from the configured sources, mixed into one HF `datasets.Dataset`.

A record is one labelled image: task, image path, ground truth on 0-100 (mapped with the
declared scale of its data set), optional rationale. Sources:

* ``records``: training-record JSONL (``task``, ``image``, ``gt_score``, ``dataset`` or
  ``scale``, optional ``rationale``, optional ``id``), read with the rationale pipeline's reader,
  so its ``kept.jsonl`` is SFT input as is;
* ``dataset``: a known labelled data set (`tatar.datasets`), no rationale (answer-only);
* ``toy``: synthetic images (`tatar.train.toy`), written under ``<run_dir>/toy``.

The dataset holds paths, not pixels: images are loaded when a row is read (the stage's
transform), so 16k training images cost no memory up front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tatar.train.config import DataConfig, Source

COLUMNS = ("index", "id", "task", "image", "solution", "rationale")


@dataclass(frozen=True)
class TrainRecord:
    id: str
    task: str  # iqa | iaa
    image: Path
    solution: float  # ground truth on 0-100
    rationale: str | None


def _from_records(src: Source) -> list[TrainRecord]:
    from tatar.rationales.records import load_items

    if not Path(src.value).is_file():
        raise FileNotFoundError(f"{src.where}: records file not found: {src.value}")
    if src.image_root is not None and not Path(src.image_root).is_dir():
        raise FileNotFoundError(f"{src.where}: image_root not found: {src.image_root}")
    items = load_items(src.value, image_root=src.image_root)
    out = [
        TrainRecord(it.id, it.task, it.image_path, it.target, (it.rationale or "").strip() or None)
        for it in items
    ]
    return out[: src.limit] if src.limit else out


def _from_dataset(src: Source) -> list[TrainRecord]:
    from tatar.datasets import load_dataset

    try:
        loaded = load_dataset(src.value, image_root=src.image_root, limit=src.limit)
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(f"{src.where}: {exc}") from None
    return [
        TrainRecord(f"{loaded.name}:{s.id}", s.task, s.image, float(s.gt_100), None)
        for s in loaded.samples
    ]


def _from_toy(src: Source, run_dir: Path) -> list[TrainRecord]:
    from tatar.train.toy import ToySpec, write_toy_data

    files = write_toy_data(run_dir / "toy", ToySpec(**src.value))
    return _from_records(Source("records", files["train"], None, src.limit, src.where))


def load_records(sources: Sequence[Source], run_dir: Path) -> list[TrainRecord]:
    """Every record of `sources`, in order; missing images are an error naming them."""
    records: list[TrainRecord] = []
    for src in sources:
        if src.kind == "records":
            part = _from_records(src)
        elif src.kind == "dataset":
            part = _from_dataset(src)
        else:
            part = _from_toy(src, run_dir)
        missing = [r.image for r in part if not r.image.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:3])
            raise FileNotFoundError(
                f"{src.where}: {len(missing)} of {len(part)} images are missing ({shown}"
                f"{', ...' if len(missing) > 3 else ''}); check image_root"
            )
        records.extend(part)
    if not records:
        raise ValueError("the training sources hold no records")
    return records


def records_dataset(records: Sequence[TrainRecord], data: DataConfig):
    """A `datasets.Dataset` of the records (columns `COLUMNS`), mixed per `data.iqa_fraction`.

    With a fraction, IQA and IAA rows are interleaved with probabilities (f, 1 - f) until both
    tasks are exhausted once, the smaller task oversampled (`datasets.interleave_datasets`, as the
    released SFT mixed them). ``index`` is the row number of the mixed dataset: the key of the
    per-sample thought-dropout draw and the GRPO group id (unique per row).
    """
    from datasets import Dataset, interleave_datasets

    def table(rows: Sequence[TrainRecord]) -> Dataset:
        return Dataset.from_dict(
            {
                "id": [r.id for r in rows],
                "task": [r.task for r in rows],
                "image": [str(r.image) for r in rows],
                "solution": [float(r.solution) for r in rows],
                "rationale": [r.rationale for r in rows],
            }
        )

    by_task = {t: [r for r in records if r.task == t] for t in ("iqa", "iaa")}
    if data.iqa_fraction is None or not by_task["iqa"] or not by_task["iaa"]:
        ds = table(records)
    else:
        f = data.iqa_fraction
        ds = interleave_datasets(
            [table(by_task["iqa"]), table(by_task["iaa"])],
            probabilities=[f, 1.0 - f],
            seed=data.seed,
            stopping_strategy="all_exhausted",
        )
    ds = ds.add_column("index", list(range(len(ds))))
    return ds.select_columns(list(COLUMNS))


def task_counts(dataset) -> dict[str, int]:
    tasks = dataset["task"]
    return {t: sum(1 for x in tasks if x == t) for t in ("iqa", "iaa")}
