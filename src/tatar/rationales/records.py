"""Input records of the rationale pipeline (the training-record JSONL of the spec).

One JSON object per line: `task` (iqa|iaa), `image`, `gt_score` on the dataset's native scale,
`dataset` (its declared scale) or an explicit `scale` ("1:5"), optional `attributes` (IAA expert
texts, aspect -> text), optional `id` (else `task:image`), and for the judge stage `rationale`.
Every problem is reported with the file and line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tatar.prompts import check_task
from tatar.scales import SCALE_0_100, Scale, scale_of
from tatar.textio import parse_json, read_text


@dataclass(frozen=True)
class Item:
    """One input record, validated, with what the pipeline derives from it."""

    id: str
    line: int
    record: Mapping[str, Any]  # the record as read; outputs extend a copy of it
    task: str
    target: float  # gt_score on 0-100, rounded to the two decimals the teacher must copy
    native: float | None  # gt_score when its scale is not 0-100 (also forbidden in <think>)
    image_path: Path
    attributes: Mapping[str, str] | None
    rationale: str | None

    def output(self, **fields: Any) -> dict[str, Any]:
        """The input record plus its id and `fields`, in a stable key order."""
        out = dict(self.record)
        out.setdefault("id", self.id)
        out.update(fields)
        return out


def record_id(task: str, image: str) -> str:
    """The id of a record without one: stable across runs and machines."""
    return f"{task}:{image}"


def _scale(rec: Mapping[str, Any]) -> Scale:
    if "scale" in rec and rec["scale"] is not None:
        return Scale.parse(str(rec["scale"]))
    if not rec.get("dataset"):
        raise ValueError("needs 'dataset' (a known dataset name) or 'scale' (e.g. \"1:5\")")
    return scale_of(str(rec["dataset"]))


def _item(rec: Any, line: int, image_root: Path, need_rationale: bool) -> Item:
    if not isinstance(rec, dict):
        raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
    for key in ("task", "image", "gt_score"):
        if key not in rec:
            raise ValueError(f"missing '{key}'")
    task = check_task(rec["task"])
    image = rec["image"]
    if not isinstance(image, str) or not image.strip():
        raise ValueError(f"'image' must be a non-empty path, got {image!r}")
    gt = rec["gt_score"]
    if isinstance(gt, bool) or not isinstance(gt, (int, float)) or not math.isfinite(gt):
        raise ValueError(f"'gt_score' must be a finite number, got {gt!r}")
    scale = _scale(rec)
    if not scale.low - 1e-9 <= gt <= scale.high + 1e-9:
        raise ValueError(
            f"gt_score {gt} is outside the declared scale {scale.low:g}-{scale.high:g}"
        )
    target = float(f"{min(100.0, max(0.0, scale.to_100(gt))):.2f}")
    attributes = rec.get("attributes")
    if attributes is not None and (
        not isinstance(attributes, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items())
    ):
        raise ValueError("'attributes' must map aspect names to texts")
    rid = rec.get("id")
    if rid is None:
        rid = record_id(task, image)
    elif not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
        raise ValueError(f"'id' must be a non-empty string or integer, got {rid!r}")
    rationale = rec.get("rationale")
    if need_rationale and (not isinstance(rationale, str) or not rationale.strip()):
        raise ValueError("missing 'rationale' (the judge stage reads teacher rationales)")
    path = Path(image)
    return Item(
        id=str(rid),
        line=line,
        record=rec,
        task=task,
        target=target,
        native=None if scale == SCALE_0_100 else float(gt),
        image_path=path if path.is_absolute() else image_root / path,
        attributes=attributes or None,
        rationale=rationale if isinstance(rationale, str) else None,
    )


def load_items(
    path: str | Path, *, image_root: str | Path | None = None, need_rationale: bool = False
) -> list[Item]:
    """Read and validate a records file.

    Parameters
    ----------
    path : JSONL file, one record per line (blank lines are skipped).
    image_root : folder that relative `image` paths are under (default: the file's folder).
    need_rationale : every record must carry a non-empty `rationale` (judge stage).

    Raises
    ------
    FileNotFoundError : `path` does not exist.
    ValueError : a line is not a valid record, or two records share an id; the message names
        the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"records file not found: {path}")
    root = Path(image_root) if image_root is not None else path.parent
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        rec = parse_json(line, f"{path}:{line_no}")
        try:
            item = _item(rec, line_no, root, need_rationale)
        except ValueError as e:
            raise ValueError(f"{path}:{line_no}: {e}") from None
        if item.id in seen:
            raise ValueError(
                f"{path}:{line_no}: duplicate id {item.id!r} (first on line {seen[item.id]});"
                " give the records distinct 'id' fields"
            )
        seen[item.id] = line_no
        items.append(item)
    if not items:
        raise ValueError(f"{path}: no records")
    return items
