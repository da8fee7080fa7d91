"""What to score: the images of a folder, or the rows of a manifest (CSV, JSONL or Parquet).

Both give one Arrow table with two string columns, ``id`` and ``path``, in a fixed order. The id
is what resume keys on, so it must be unique and stable between runs: a folder's id is the
image's path relative to the folder (POSIX separators), a manifest's is its id column or, when
there is none, the path as written. Paths are made absolute here (relative ones against
`image_root`, else the manifest's folder), so every engine and worker reads the same file.

Every problem with the source itself is a `SourceError`: one line naming the file (and the row)
and what is wrong. A listed image that does not exist is *not* a source problem: it becomes a
row with an error when it is scored.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pyarrow as pa

from tatar.textio import RepeatedKey, unique_keys

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MANIFEST_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
PATH_COLUMNS = ("path", "image_path", "image", "file", "filename", "file_name")
ID_COLUMNS = ("id", "image_id", "key", "uid")
SCHEMA = pa.schema([("id", pa.string()), ("path", pa.string())])


class SourceError(ValueError):
    """A folder or manifest that cannot be used; the message is one line naming the file."""


def load_source(
    source: str | os.PathLike,
    *,
    path_column: str | None = None,
    id_column: str | None = None,
    image_root: str | os.PathLike | None = None,
) -> pa.Table:
    """The items of a folder or manifest as a table (``id``, ``path``), ids unique."""
    source = Path(source)
    if source.is_dir():
        if path_column or id_column:
            raise SourceError(
                f"{source}: --path-column/--id-column apply to a manifest, not a folder"
            )
        return scan_folder(source)
    if not source.exists():
        raise SourceError(f"{source}: no such folder or manifest")
    return read_manifest(
        source, path_column=path_column, id_column=id_column, image_root=image_root
    )


def scan_folder(root: Path) -> pa.Table:
    """Every image under `root` (recursive, by extension, case-insensitive), sorted by id.

    Hidden folders and files (a leading dot) are left out: they hold tool state, not photos.
    """
    root = root.resolve()
    ids: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                ids.append((Path(folder) / name).relative_to(root).as_posix())
    if not ids:
        raise SourceError(
            f"{root}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    ids.sort()
    return pa.table({"id": ids, "path": [str(root / i) for i in ids]}, schema=SCHEMA)


def manifest_format(path: Path) -> str:
    fmt = MANIFEST_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"{path}: not a folder and not a manifest (expected {', '.join(MANIFEST_FORMATS)})"
        )
    return fmt


def _read_table(path: Path, fmt: str) -> pa.Table:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if fmt == "csv":
            import pyarrow.csv as pcsv

            # Every column as text: ids like 007 must not become 7.
            with path.open("rb") as fh:
                header = fh.readline().decode("utf-8-sig").strip()
            names = next(csv.reader([header]), []) if header else []
            return pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(encoding="utf-8"),
                convert_options=pcsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True
                ),
            )
        return _read_jsonl(path)
    except SourceError:
        raise
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: cannot read as {fmt.upper()} ({detail})") from None


def _twice(path: Path, names: list[str], found: list[str]) -> SourceError:
    """A column the manifest names twice (also in another case): which one holds the paths?"""
    how = f" (as {' and '.join(map(repr, found))})" if len(set(found)) > 1 else ""
    return SourceError(
        f"{path}: the column {found[0]!r} is given twice{how} (columns: {', '.join(names)}); "
        "rename or remove one"
    )


def _read_jsonl(path: Path) -> pa.Table:
    rows: list[dict] = []
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line, object_pairs_hook=unique_keys)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            except RepeatedKey as exc:
                raise SourceError(
                    f"{path}:{n}: the key {exc.args[0]!r} is given twice in one record (only "
                    "the last would count); give each key once"
                ) from None
            if not isinstance(rec, dict):
                raise SourceError(f"{path}:{n}: a line must be a JSON object")
            rows.append(rec)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({c: [None if r.get(c) is None else str(r[c]) for r in rows] for c in columns})


def _pick(
    path: Path, names: list[str], wanted: str | None, choices: tuple, what: str
) -> str | None:
    if wanted is not None:
        if wanted not in names:
            raise SourceError(
                f"{path}: no column {wanted!r} (columns: {', '.join(names) or 'none'})"
            )
        if names.count(wanted) > 1:
            raise _twice(path, names, [wanted])
        return wanted
    found = None
    for choice in choices:
        matches = [n for n in names if n.lower() == choice]
        if len(matches) > 1:
            raise _twice(path, names, matches)
        if matches:
            found = matches[0]
            break
    if found is None and what == "path":
        raise SourceError(
            f"{path}: no image path column (looked for {', '.join(choices)}; columns: "
            f"{', '.join(names) or 'none'}); name it with --path-column"
        )
    return found


def read_manifest(
    path: Path,
    *,
    path_column: str | None = None,
    id_column: str | None = None,
    image_root: str | os.PathLike | None = None,
) -> pa.Table:
    """A manifest's (id, path) rows in file order; see the module docstring for the rules."""
    fmt = manifest_format(path)
    table = _read_table(path, fmt)
    names = table.column_names
    pcol = _pick(path, names, path_column, PATH_COLUMNS, "path")
    icol = _pick(path, names, id_column, ID_COLUMNS, "id")
    paths = [None if v is None else str(v) for v in table.column(pcol).to_pylist()]
    ids = [None if v is None else str(v) for v in table.column(icol).to_pylist()] if icol else paths
    if not paths:
        raise SourceError(f"{path}: the manifest has no rows")
    base = Path(image_root) if image_root is not None else path.parent

    def line(i: int) -> str:
        # A CSV's header is line 1; JSONL counts records (blank lines are skipped).
        if fmt == "csv":
            return f"{path}:{i + 2}"
        return f"{path}: {'record' if fmt == 'jsonl' else 'row'} {i + 1}"

    seen: dict[str, int] = {}
    out_paths = []
    for i, (ident, p) in enumerate(zip(ids, paths, strict=True)):
        if p is None or not p.strip():
            raise SourceError(f"{line(i)}: empty {pcol!r}")
        if fmt == "csv" and ("\n" in p or "\r" in p):
            # A one-column CSV reads on: every later row became part of this one path.
            lines = len(p.strip().splitlines())
            raise SourceError(
                f"{line(i)}: the path {p.splitlines()[0][:60]!r} runs on over {lines} lines: an "
                'unclosed quote " makes the rest of the file one value; close or remove it'
            )
        if "://" in p:
            raise SourceError(
                f"{line(i)}: {p!r} is a URL; the manifest must list file paths (download first)"
            )
        if ident is None or not ident.strip():
            raise SourceError(f"{line(i)}: empty {icol!r}")
        if ident in seen:
            raise SourceError(
                f"{line(i)}: id {ident!r} repeats {line(seen[ident])}; ids must be unique"
            )
        seen[ident] = i
        full = Path(p).expanduser()
        out_paths.append(str(full if full.is_absolute() else (base / full).resolve()))
    return pa.table({"id": ids, "path": out_paths}, schema=SCHEMA)
