"""Prepare a dataset: official labels -> training-record JSONL, one file per split.

``prepare("koniq", root, out)`` writes ``out/koniq_train.jsonl``, ``koniq_val.jsonl`` and
``koniq_test.jsonl`` (the names the configs and the rationale step read), each line a training
record (`tatar.rationales.records`): ``id``, ``task``, ``image`` (relative to `root`: pass the
root as ``image_root``), ``gt_score`` on the dataset's declared scale, ``dataset``, ``split`` and
what the dataset adds (``attributes`` for ArtiMuse, raw labels). Also ``<short>_prepare.json``
(counts, the split used, missing images) and, when images are missing, ``<short>_missing.txt``.

Splits: the official one where the dataset ships it; otherwise, when the benchmark label file of
the dataset is in the shared data (`tatar.datasets`), the images it lists are ``test`` (the paper's
evaluation set) and the rest ``train``; otherwise everything is ``all``.

Missing images are reported (count, first files, the full list in a file), never dropped: the
records keep them, so the problem is seen and fixed rather than silently shrinking the data.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from tatar.data.readers import LabelRow, Reader, reader_for
from tatar.outputs import atomic_write_json, atomic_write_text
from tatar.textio import parse_json, read_text


def _benchmark_images(reader: Reader) -> set[str] | None:
    from tatar.datasets import DATASETS, shared_data_dir
    from tatar.scales import dataset_key

    info = DATASETS.get(dataset_key(reader.dataset))
    if info is None or info.images_in_shared:
        return None
    path = shared_data_dir() / info.labels
    if not path.is_file():
        return None
    data = parse_json(read_text(path), path, whole_file=True)
    items = data.get("items", data) if isinstance(data, dict) else data
    return {Path(str(r.get("image", ""))).name for r in items if isinstance(r, dict)}


def _scale(reader: Reader, rows: list[LabelRow]) -> tuple[str | None, object]:
    from tatar.scales import Scale, scale_of

    if reader.short == "pipal":
        # PIPAL's labels are Elo scores with no fixed range: the file declares the range of the
        # released labels (the benchmark file rescaled them to 1-5 the same way).
        lo = math.floor(min(r.score for r in rows))
        hi = math.ceil(max(r.score for r in rows))
        text = f"{lo}:{hi if hi > lo else lo + 1}"
        return text, Scale.parse(text)
    if reader.scale:
        return reader.scale, Scale.parse(reader.scale)
    return None, scale_of(reader.dataset)


def prepare(
    name: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    benchmark_split: bool = True,
) -> dict:
    """Write the records of dataset `name` (its folder `root`) into `out`; return the summary.

    Raises FileNotFoundError (no label file) or ValueError (a malformed label, a score outside
    the declared scale), naming the file and line.
    """
    reader = reader_for(name)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    rows = reader.read(root)
    if not rows:
        raise ValueError(f"{root}: the label files list no images")
    first: dict[str, LabelRow] = {}
    for r in rows:
        if r.image in first:
            # two records with one id: the rationale and training steps would refuse the file
            raise ValueError(
                f"{r.where or root}: image {r.image} is listed a second time (first: "
                f"{first[r.image].where or 'above'}); give each image one label"
            )
        first[r.image] = r
    scale_text, scale = _scale(reader, rows)
    for r in rows:
        if not scale.low - 1e-9 <= r.score <= scale.high + 1e-9:
            raise ValueError(
                f"{root}: {r.image}: score {r.score:g} is outside the declared scale of "
                f"{reader.dataset} ({scale.low:g}-{scale.high:g})"
            )
    if reader.official_split and any(r.split for r in rows):
        split_rule = "official"
        splits = [r.split or "all" for r in rows]
    else:
        listed = _benchmark_images(reader) if benchmark_split else None
        if listed:
            split_rule = "benchmark test list (the paper's evaluation images) vs the rest"
            splits = ["test" if Path(r.image).name in listed else "train" for r in rows]
        else:
            split_rule = "none (no official split)"
            splits = ["all"] * len(rows)

    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[str]] = {}
    missing = []
    for r, split in zip(rows, splits, strict=True):
        rec = {
            "id": f"{reader.short}:{r.image}",
            "task": reader.task,
            "image": r.image,
            "gt_score": round(r.score, 6),
            "dataset": reader.dataset,
            **({"scale": scale_text} if scale_text else {}),
            "split": split,
            **r.extra,
        }
        by_split.setdefault(split, []).append(json.dumps(rec, ensure_ascii=False))
        if not (root / r.image).is_file():
            missing.append(r.image)
    files = {}
    for split, lines in sorted(by_split.items()):
        path = out / f"{reader.short}_{split}.jsonl"
        atomic_write_text(path, "\n".join(lines) + "\n")
        files[split] = {"file": str(path), "records": len(lines)}
    missing_file = out / f"{reader.short}_missing.txt"
    if missing:
        atomic_write_text(missing_file, "\n".join(missing) + "\n")
    else:
        missing_file.unlink(missing_ok=True)
    summary = {
        "dataset": reader.dataset,
        "task": reader.task,
        "root": str(root),
        "scale": scale_text or f"{scale.low:g}:{scale.high:g}",
        "split_rule": split_rule,
        "splits": files,
        "records": len(rows),
        "missing_images": len(missing),
        "missing_examples": missing[:5],
        "missing_file": str(missing_file) if missing else None,
    }
    atomic_write_json(out / f"{reader.short}_prepare.json", summary)
    return summary
