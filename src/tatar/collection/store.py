"""The output folder: numbered Parquet shards written atomically, read back to resume.

    <out>/run.json                what was scored and how (a rerun must match; --overwrite)
    <out>/part-000000.parquet     rows of up to --shard-size images (every task of an image in
    <out>/part-000000.jsonl       the same shard); the JSONL twin only with --jsonl
    <out>/summary.json            counts of the last run and of the whole folder

A shard is written to a hidden temporary file in the same folder, fsynced and moved into place
with `os.replace`, so a shard either exists whole or not at all: a run killed at any moment
loses only the shard it was filling, and the ids in the shards are exactly the ids done. A rerun
removes the temporary files a kill left behind and numbers new shards after the last one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tatar.collection.rows import SCHEMA, rows_to_table
from tatar.outputs import atomic_write

SHARD_RE = re.compile(r"^part-(\d{6,})\.parquet$")


class ShardStore:
    def __init__(self, folder: str | os.PathLike, *, jsonl: bool = False):
        self.folder = Path(folder)
        self.jsonl = jsonl

    def shards(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [
            (int(m.group(1)), p) for p in self.folder.iterdir() if (m := SHARD_RE.match(p.name))
        ]
        return [p for _, p in sorted(found)]

    def clean_partial(self) -> int:
        """Remove temporary files of an interrupted write; returns how many there were."""
        if not self.folder.is_dir():
            return 0
        stale = [p for p in self.folder.glob(".part-*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    def _read(self, path: Path, columns: list[str] | None = None) -> pa.Table:
        try:
            return pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            # Shards are written atomically: a broken one was damaged after it was written.
            raise ValueError(
                f"{path}: not a readable Parquet shard ({str(exc).splitlines()[0]}); "
                "delete it to score its images again"
            ) from None

    def done_ids(self) -> dict[str, str]:
        """Id -> the shard it is in, over every shard. Repeated ids are a ValueError."""
        where: dict[str, str] = {}
        for shard in self.shards():
            ids = self._read(shard, ["id"]).column("id").unique().to_pylist()
            for i in ids:
                if i in where:
                    raise ValueError(
                        f"{shard}: id {i!r} is also in {where[i]}; the folder mixes two runs"
                    )
                where[i] = shard.name
        return where

    def read(self) -> pa.Table:
        """Every row of every shard, in shard order."""
        tables = [self._read(s) for s in self.shards()]
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()

    def next_index(self) -> int:
        shards = self.shards()
        return int(SHARD_RE.match(shards[-1].name).group(1)) + 1 if shards else 0

    def write(self, rows: list[dict], index: int) -> Path:
        """Write one shard (and its JSONL twin) atomically; returns the Parquet path."""
        table = rows_to_table(rows)
        path = self.folder / f"part-{index:06d}.parquet"
        if path.exists():
            raise FileExistsError(f"{path} exists; shards are never overwritten")
        if self.jsonl:
            # The JSONL twin goes first: a shard's Parquet file is what marks its ids done.
            lines = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
            atomic_write(path.with_suffix(".jsonl"), lambda fh: fh.write(lines), shared=True)
        atomic_write(
            path, lambda fh: pq.write_table(table, fh, compression="zstd"), binary=True, shared=True
        )
        return path


def group_by_item(rows: Iterable[dict]) -> Iterable[list[dict]]:
    """Consecutive rows of one id as one list (an item's tasks are produced together)."""
    current: list[dict] = []
    for r in rows:
        if current and r["id"] != current[-1]["id"]:
            yield current
            current = []
        current.append(r)
    if current:
        yield current
