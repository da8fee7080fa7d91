"""Dataset registry and label loading: every set declares its task and native score scale.

Known sets (`DATASETS`):

* the eight benchmarks of the paper (UniPercept-Bench VR split) - labels from
  ``<shared data>/benchmarks/vr/{IQA,IAA}_<name>.json``, images under a user-given root;
* CLIVE (``iqa/clive``, 0-100) and PARA (``iaa/para_giaa_test_224``, aesthetics mean on 1-5),
  labels and images both in the shared data folder.

Any CSV, JSON (array of objects) or JSONL file works as a user dataset when its task and scale
are declared. Ground truth is mapped to 0-100 with the declared scale (`tatar.scales`), never
from the range of the values; labels outside the declared scale are an error, since they mean
the declared scale is wrong.

The shared data folder is ``$SHARED_DATA`` or ``<repository>/../shared/data``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from tatar.prompts import Task, check_task
from tatar.scales import Scale, dataset_key, scale_of

IMAGE_COLUMNS = ("image", "image_path", "path", "file", "filename", "img")
SCORE_COLUMNS = ("gt_score", "mos", "score", "MOS")


def shared_data_dir() -> Path:
    """``$SHARED_DATA``, else ``<repository>/../shared/data``."""
    env = os.environ.get("SHARED_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass(frozen=True)
class DatasetInfo:
    """A known dataset: its display name, task, label file and where its images live."""

    name: str
    task: Task
    labels: str  # relative to the shared data folder
    images_in_shared: bool  # images sit next to the labels (else --image-root is needed)
    score_column: str | None = None
    note: str = ""

    @property
    def key(self) -> str:
        return dataset_key(self.name)

    @property
    def scale(self) -> Scale:
        return scale_of(self.name)


DATASETS: dict[str, DatasetInfo] = {
    d.key: d
    for d in (
        DatasetInfo("KonIQ-10K", "iqa", "benchmarks/vr/IQA_KonIQ-10K.json", False),
        DatasetInfo("SPAQ", "iqa", "benchmarks/vr/IQA_SPAQ.json", False),
        DatasetInfo("KADID", "iqa", "benchmarks/vr/IQA_KADID.json", False),
        DatasetInfo("PIPAL", "iqa", "benchmarks/vr/IQA_PIPAL.json", False),
        DatasetInfo("AVA", "iaa", "benchmarks/vr/IAA_AVA.json", False),
        DatasetInfo("TAD66K", "iaa", "benchmarks/vr/IAA_TAD66K.json", False),
        DatasetInfo("FLICKR-AES", "iaa", "benchmarks/vr/IAA_FLICKR-AES.json", False),
        DatasetInfo("ArtiMuse-10K", "iaa", "benchmarks/vr/IAA_ArtiMuse-10K.json", False),
        DatasetInfo("CLIVE", "iqa", "iqa/clive/labels.csv", True, "mos", "146-image subset"),
        DatasetInfo(
            "PARA", "iaa", "iaa/para_giaa_test_224/labels.csv", True, "mos", "300 images, 224x224"
        ),
    )
}


@dataclass(frozen=True)
class Sample:
    """One labelled image."""

    id: str
    image: Path
    gt: float  # on the dataset's native scale
    gt_100: float  # mapped to 0-100 with the declared scale
    task: Task
    dataset: str


@dataclass
class LoadedDataset:
    name: str
    task: Task
    scale: Scale
    labels: Path
    image_root: Path
    samples: list[Sample]
    missing: list[str] = field(default_factory=list)  # skipped with skip_missing
    total: int = 0  # records in the label file

    @property
    def slug(self) -> str:
        return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.name)


def _read_records(path: Path) -> list[dict]:
    from tatar.textio import parse_json, read_csv, read_text

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise ValueError(
            f"{path}: unsupported label file type {suffix or '(none)'}; use .csv, .json or .jsonl"
        )
    # Both readers drop a leading byte-order mark (spreadsheet exports, Windows editors), which
    # would otherwise become part of the first column's name or break the JSON.
    if suffix == ".csv":
        return read_csv(path)
    text = read_text(path)
    if suffix == ".jsonl":
        return [
            parse_json(line, f"{path}:{lineno}")
            for lineno, line in enumerate(text.split("\n"), 1)
            if line.strip()
        ]
    data = parse_json(text, path, whole_file=True)
    if isinstance(data, dict):
        # {"items": [...]} or {"<image>": score, ...}
        if isinstance(data.get("items"), list):
            data = data["items"]
        else:
            data = [{"image": k, "gt_score": v} for k, v in data.items()]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of objects")
    return data


def _absent(root: Path, image: str) -> str:
    """A missing image's name, with why when something is there: a folder, a broken link."""
    path = Path(image) if Path(image).is_absolute() else root / image
    if path.is_dir():
        return f"{image} (a folder)"
    if path.is_symlink():
        return f"{image} (a link to nothing, or a link loop)"
    return image


def _pick(record: dict, names: tuple[str, ...], wanted: str | None) -> str | None:
    if wanted is not None:
        return wanted if wanted in record else None
    return next((n for n in names if n in record), None)


def load_labels(
    labels: str | os.PathLike,
    *,
    name: str | None = None,
    task: str | None = None,
    scale: Scale | str | None = None,
    image_root: str | os.PathLike | None = None,
    score_column: str | None = None,
    limit: int | None = None,
    skip_missing: bool = False,
    check_images: bool = True,
) -> LoadedDataset:
    """Load a label file (CSV/JSON/JSONL) with a declared task and scale.

    Parameters
    ----------
    labels : path
        The label file. Records need an image column (``image``, ``image_path``, ``path``...)
        and a score column (``gt_score``, ``mos``, ``score``; or `score_column`).
    name : str, optional
        Display name (default: the file stem).
    task : 'iqa' | 'iaa', optional
        Required unless every record has a ``task`` field.
    scale : Scale or 'LOW:HIGH', optional
        The native scale of the scores. Required unless `name` is a known dataset or every
        record names a known ``dataset`` (training records do).
    image_root : path, optional
        Folder the image paths are relative to (default: the label file's folder).
    limit : int, optional
        Keep the first `limit` samples (with `skip_missing`: the first `limit` present ones).
    skip_missing : bool
        Drop samples whose image file is absent (they are listed in ``missing``) instead of
        raising FileNotFoundError.
    check_images : bool
        Check that image files exist (disable only for label-only work).
    """
    path = Path(labels).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    name = name or path.stem
    declared_scale = Scale.parse(scale) if isinstance(scale, str) else scale
    if declared_scale is None:
        try:
            declared_scale = scale_of(name)
        except ValueError:
            declared_scale = None
    declared_task = check_task(task) if task is not None else None
    root = Path(image_root).expanduser() if image_root is not None else path.parent
    if check_images and not root.is_dir():
        raise FileNotFoundError(f"image folder of {name} not found: {root}")

    records = _read_records(path)
    if not records:
        raise ValueError(f"{path}: no records")
    samples: list[Sample] = []
    missing: list[str] = []
    seen: dict[str, int] = {}
    outside: list[str] = []
    for row, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: record {row} is not an object")
        img_col = _pick(rec, IMAGE_COLUMNS, None)
        score_col = _pick(rec, SCORE_COLUMNS, score_column)
        columns = ", ".join(str(k) for k in rec)
        if img_col is None:
            raise ValueError(
                f"{path}: record {row} has no image column (one of {', '.join(IMAGE_COLUMNS)}; "
                f"it has {columns})"
            )
        if score_col is None:
            wanted = score_column or " / ".join(SCORE_COLUMNS)
            raise ValueError(
                f"{path}: record {row} has no score column ({wanted}; it has {columns})"
            )
        value = rec[img_col]
        # a short CSV row leaves the column None; JSON may hold null, a list, true ...
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            raise ValueError(f"{path}: record {row}: {img_col} {value!r} is not an image path")
        image = str(value).strip()
        score = rec[score_col]
        try:
            if isinstance(score, bool):  # JSON true would read as 1.0
                raise TypeError
            gt = float(score)
        except (TypeError, ValueError):
            raise ValueError(
                f"{path}: record {row} ({image}): score {score!r} is not a number"
            ) from None
        if not math.isfinite(gt):
            raise ValueError(f"{path}: record {row} ({image}): score is {gt}")
        try:
            rec_task = declared_task or (check_task(rec["task"]) if "task" in rec else None)
        except ValueError as exc:
            raise ValueError(f"{path}: record {row} ({image}): {exc}") from None
        if rec_task is None:
            raise ValueError(
                f"{path}: no task declared (pass task='iqa' or 'iaa', CLI --task) and record {row} has no 'task' field"
            )
        rec_scale = declared_scale
        if rec_scale is None:
            if "dataset" not in rec:
                raise ValueError(
                    f"{path}: no scale declared for {name!r} (pass scale='LOW:HIGH', CLI --scale 1:5) "
                    f"and record {row} names no known 'dataset'"
                )
            try:
                rec_scale = scale_of(rec["dataset"])
            except ValueError as exc:
                raise ValueError(f"{path}: record {row} ({image}): {exc}") from None
        if gt < rec_scale.low - 1e-9 or gt > rec_scale.high + 1e-9:
            outside.append(f"record {row} ({image}): {gt:g}")
            continue
        image_path = Path(image) if Path(image).is_absolute() else root / image
        if check_images and not image_path.is_file():
            missing.append(image)
            if skip_missing:
                continue
        count = seen.get(image, 0)
        seen[image] = count + 1
        sid = image if count == 0 else f"{image}@{row}"
        samples.append(Sample(sid, image_path, gt, rec_scale.to_100(gt), rec_task, name))
        if limit is not None and len(samples) >= limit:
            break
    if outside:
        shown = "; ".join(outside[:3])
        raise ValueError(
            f"{path}: {len(outside)} label(s) outside the declared scale "
            f"{declared_scale.low:g}-{declared_scale.high:g} of {name} ({shown}); declare the right scale"
            if declared_scale
            else f"{path}: {len(outside)} label(s) outside their dataset's scale ({shown})"
        )
    if missing and skip_missing and not samples:
        raise FileNotFoundError(
            f"all {len(missing)} images of {name} are missing under {root} "
            f"(first: {', '.join(_absent(root, m) for m in missing[:3])}); check --image-root"
        )
    if missing and not skip_missing:
        shown = ", ".join(_absent(root, m) for m in missing[:5])
        shown += ", ..." if len(missing) > 5 else ""
        raise FileNotFoundError(
            f"{len(missing)} of {len(samples)} images of {name} are missing under {root}: {shown} "
            "(pass --skip-missing / skip_missing=True to evaluate the rest)"
        )
    tasks = {s.task for s in samples}
    if len(tasks) > 1:
        raise ValueError(f"{path}: mixes tasks {sorted(tasks)}; evaluate one task per dataset")
    ds_task = next(iter(tasks)) if tasks else (declared_task or "iqa")
    return LoadedDataset(
        name=name,
        task=ds_task,
        scale=declared_scale
        or (scale_of(records[0]["dataset"]) if "dataset" in records[0] else Scale(0, 100)),
        labels=path,
        image_root=root,
        samples=samples,
        missing=missing,
        total=len(records),
    )


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    image_root: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    task: str | None = None,
    scale: Scale | str | None = None,
    limit: int | None = None,
    skip_missing: bool = False,
    check_images: bool = True,
) -> LoadedDataset:
    """A known dataset by name (``clive``, ``KonIQ-10K``, ``para``...) or a user label file.

    Known datasets keep their declared task and scale (`task`/`scale` may not contradict them);
    the eight paper benchmarks need `image_root`. `labels` overrides a known dataset's label
    file location.
    """
    key = dataset_key(str(name_or_path))
    if key in DATASETS and not Path(str(name_or_path)).suffix:
        info = DATASETS[key]
        if task is not None and check_task(task) != info.task:
            raise ValueError(f"{info.name} is an {info.task.upper()} dataset, not {task}")
        if scale is not None:
            given = Scale.parse(scale) if isinstance(scale, str) else scale
            if (given.low, given.high) != (info.scale.low, info.scale.high):
                raise ValueError(
                    f"{info.name} is declared on {info.scale.low:g}-{info.scale.high:g}, not {given.low:g}-{given.high:g}"
                )
        label_path = Path(labels) if labels else shared_data_dir() / info.labels
        if not label_path.is_file():
            raise FileNotFoundError(
                f"label file of {info.name} not found: {label_path} (set SHARED_DATA or pass --labels)"
            )
        if image_root is None:
            if check_images and not info.images_in_shared:
                raise ValueError(
                    f"{info.name} needs --image-root: the folder holding its images "
                    f"(labels: {label_path}; images are not distributed with the labels)"
                )
            image_root = label_path.parent
        return load_labels(
            label_path,
            name=info.name,
            task=info.task,
            scale=info.scale,
            image_root=image_root,
            score_column=info.score_column,
            limit=limit,
            skip_missing=skip_missing,
            check_images=check_images,
        )
    path = Path(name_or_path).expanduser()
    if not path.exists():
        known = ", ".join(d.name for d in DATASETS.values())
        raise FileNotFoundError(
            f"{name_or_path}: neither a known dataset ({known}) nor a label file"
        )
    return load_labels(
        path,
        task=task,
        scale=scale,
        image_root=image_root,
        limit=limit,
        skip_missing=skip_missing,
        check_images=check_images,
    )
