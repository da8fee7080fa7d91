"""The per-image results of an evaluation: one CSV, rewritten atomically after every image.

A row is one (image, setting, method). A rerun reads the file and skips the rows already
there without an error (failed rows are retried). The file is small (hundreds of rows), so
rewriting it whole keeps it consistent without a database.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from yoho.io import write_text

__all__ = ["ResultStore", "COLUMNS", "METRICS"]

METRICS = ("dice", "iou", "precision", "recall", "hd95")
COLUMNS = (
    "image", "setting", "method", "kind", "profile", "seed", *METRICS,
    "seconds", "train_s", "complement", "lesion_fraction", "error",
)  # fmt: skip
NUMERIC = {*METRICS, "seconds", "train_s", "lesion_fraction"}


def _parse(row: dict[str, str]) -> dict:
    out: dict = {}
    for key in COLUMNS:
        value = row.get(key, "")
        if key in NUMERIC:
            out[key] = float(value) if value not in ("", None) else math.nan
        else:
            out[key] = value or ""
    return out


class ResultStore:
    """Rows keyed by (image, setting, method), kept in `path` (CSV)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.rows: dict[tuple[str, str, str], dict] = {}
        if self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                missing = {"image", "setting", "method"} - set(reader.fieldnames or ())
                if missing:
                    raise ValueError(f"{self.path}: not a results file (missing {missing})")
                for row in reader:
                    parsed = _parse(row)
                    self.rows[(parsed["image"], parsed["setting"], parsed["method"])] = parsed

    def done(self, image: str, setting: str, method: str) -> bool:
        row = self.rows.get((image, setting, method))
        return row is not None and not row["error"]

    def add(self, rows: list[dict]) -> None:
        for row in rows:
            full = {key: row.get(key, "") for key in COLUMNS}
            self.rows[(full["image"], full["setting"], full["method"])] = full
        self.save()

    def save(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for key in sorted(self.rows):
            row = dict(self.rows[key])
            for name in NUMERIC:
                value = row.get(name)
                if isinstance(value, float):
                    row[name] = "" if math.isnan(value) else f"{value:.6g}"
            writer.writerow(row)
        write_text(self.path, buffer.getvalue())

    def select(
        self, setting: str | None = None, methods: list[str] | None = None, ok: bool = True
    ) -> list[dict]:
        """Rows of one setting (all when None) and methods, successful ones only by default."""
        out = []
        for row in self.rows.values():
            if setting is not None and row["setting"] != setting:
                continue
            if methods is not None and row["method"] not in methods:
                continue
            if ok and row["error"]:
                continue
            out.append(row)
        return out
