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

__all__ = ["ResultStore", "ClickStore", "COLUMNS", "CLICK_COLUMNS", "METRICS"]

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


def _damage(row: dict, fields: list[str]) -> str | None:
    """Why a row read back from the file cannot be trusted, or None when it can."""
    if None in row:  # csv puts surplus cells under the key None
        return f"{len(fields) + len(row[None])} cells where the header has {len(fields)}"
    missing = [key for key in fields if row.get(key) is None]
    if missing:
        return f"the row is cut short ({len(fields) - len(missing)} of {len(fields)} cells)"
    for key in ("image", "setting", "method"):
        if not row.get(key):
            return f"empty {key}"
    for key in NUMERIC & set(fields):
        value = row[key]
        if value == "":
            continue
        try:
            float(value)
        except ValueError:
            return f"{key} {value[:20]!r} is not a number"
    if not row.get("error") and "dice" in fields and row.get("dice") == "":
        return "a finished row without its Dice"
    return None


class ResultStore:
    """Rows keyed by (image, setting, method), kept in `path` (CSV).

    Rows read back are checked: one cut short (a crash mid-write of an older version, an
    editor), with surplus or non-numeric cells, or finished without a Dice is not trusted. It
    is dropped, so that its (image, setting, method) runs again, and `warnings` names it as
    `file:line`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.rows: dict[tuple[str, str, str], dict] = {}
        self.warnings: list[str] = []
        if self.path.is_file():
            # utf-8-sig: a file saved by a spreadsheet program starts with a byte-order mark.
            with self.path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                fields = list(reader.fieldnames or ())
                missing = {"image", "setting", "method"} - set(fields)
                if missing:
                    raise ValueError(f"{self.path}: not a results file (missing {missing})")
                try:
                    for row in reader:
                        problem = _damage(row, fields)
                        if problem is not None:
                            self.warnings.append(
                                f"{self.path}:{reader.line_num}: {problem}; not trusted, "
                                "it will be recomputed"
                            )
                            continue
                        parsed = _parse(row)
                        self.rows[(parsed["image"], parsed["setting"], parsed["method"])] = parsed
                except csv.Error as exc:
                    raise ValueError(f"{self.path}:{reader.line_num}: not CSV ({exc})") from None

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


CLICK_COLUMNS = (
    "image", "setting", "method", "click", "dice", "seconds", "made", "kind", "x", "y", "r",
)  # fmt: skip


class ClickStore:
    """Dice after every corrective click (`yoho evaluate --corrections N`), in `path` (CSV).

    Keyed by (image, setting, method); a key is complete when it holds clicks 0..N. Rewritten
    atomically after every image, like `ResultStore`; a damaged file is named, not guessed at.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.curves: dict[tuple[str, str, str], list[dict]] = {}
        if not self.path.is_file():
            return
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if set(CLICK_COLUMNS) - set(reader.fieldnames or ()):
                raise ValueError(f"{self.path}: not a corrections file (columns differ)")
            try:
                for row in reader:
                    key = (row["image"], row["setting"], row["method"])
                    parsed = {
                        "click": int(row["click"]),
                        "dice": float(row["dice"]),
                        "seconds": float(row["seconds"] or 0.0),
                        "made": row["made"] == "1",
                    }
                    for name in ("x", "y", "r"):
                        if row[name]:
                            parsed[name] = float(row[name])
                    if row["kind"]:
                        parsed["kind"] = row["kind"]
                    self.curves.setdefault(key, []).append(parsed)
            except (csv.Error, ValueError, TypeError) as exc:
                raise ValueError(f"{self.path}:{reader.line_num}: damaged row ({exc})") from None
        for curve in self.curves.values():
            curve.sort(key=lambda r: r["click"])

    def done(self, image: str, setting: str, method: str, clicks: int) -> bool:
        curve = self.curves.get((image, setting, method))
        return bool(curve) and [r["click"] for r in curve] == list(range(clicks + 1))

    def add(self, image: str, setting: str, method: str, curve: list[dict]) -> None:
        self.curves[(image, setting, method)] = list(curve)
        self.save()

    def save(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CLICK_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for (image, setting, method), curve in sorted(self.curves.items()):
            for row in curve:
                writer.writerow(
                    {
                        "image": image,
                        "setting": setting,
                        "method": method,
                        "click": row["click"],
                        "dice": f"{row['dice']:.6g}",
                        "seconds": f"{row.get('seconds', 0.0):.4g}",
                        "made": "1" if row.get("made", True) else "0",
                        "kind": row.get("kind", ""),
                        **{k: (f"{row[k]:g}" if k in row else "") for k in ("x", "y", "r")},
                    }
                )
        write_text(self.path, buffer.getvalue())

    def select(self, setting: str, method: str) -> dict[str, list[dict]]:
        """{image: curve} of one setting and method."""
        return {i: c for (i, s, m), c in self.curves.items() if s == setting and m == method}
