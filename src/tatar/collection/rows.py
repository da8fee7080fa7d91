"""The output rows: one per image and task, the same for every engine.

`Scorer` turns one batch of (id, path) items into rows with the HF or vLLM backend through
`tatar.scoring.score_batch`; the local loop and every Ray replica call it with the same batches,
which is why their scores are identical. `SCHEMA` is the Arrow schema of every shard: a column
that was not asked for (native scale, think text, completions) is present and null, so shards of
one output folder always read back as one table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from tatar.generation import Backend, GenerationSettings
from tatar.scales import Scale
from tatar.scoring import ImageScore, score_batch, tasks_for

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("task", pa.string()),
        ("score", pa.float64()),  # 0-100: mean of the parsed answers (null: none parsed)
        ("score_native", pa.float64()),  # on --dataset-scale, when given
        ("scale", pa.string()),  # that scale as LOW:HIGH
        ("std", pa.float64()),  # population std of the parsed answers
        ("samples", pa.int32()),
        ("parsed", pa.int32()),
        ("status", pa.string()),  # ok | unparsed | error
        ("error", pa.string()),
        ("think", pa.string()),  # with --keep-think
        ("completions", pa.list_(pa.string())),  # with --keep-completions
        ("model", pa.string()),
        ("revision", pa.string()),
        ("prompt_version", pa.string()),
    ]
)
COLUMNS = SCHEMA.names


@dataclass(frozen=True)
class RowOptions:
    """What every row records besides the answer (all picklable: Ray ships it to replicas)."""

    model: str
    revision: str | None
    prompt_version: str
    task: str = "both"
    scale: Scale | None = None
    keep_think: bool = False
    keep_completions: bool = False

    @property
    def tasks(self) -> list[str]:
        return tasks_for(self.task)

    def scale_text(self) -> str | None:
        return None if self.scale is None else f"{self.scale.low:g}:{self.scale.high:g}"


def make_row(item_id: str, r: ImageScore, opts: RowOptions, samples: int) -> dict:
    status = "error" if r.error else "ok" if r.score is not None else "unparsed"
    native = None
    if opts.scale is not None and r.score is not None:
        native = float(opts.scale.from_100(r.score))
    return {
        "id": item_id,
        "path": r.image,
        "task": r.task,
        "score": r.score,
        "score_native": native,
        "scale": opts.scale_text(),
        "std": r.std,
        "samples": samples,
        "parsed": round(r.parse_rate * len(r.completions)),
        "status": status,
        "error": r.error,
        "think": r.rationale if opts.keep_think else None,
        "completions": list(r.completions) if opts.keep_completions else None,
        "model": opts.model,
        "revision": opts.revision,
        "prompt_version": opts.prompt_version,
    }


def score_items(
    backend: Backend,
    ids: Sequence[str],
    paths: Sequence[str],
    settings: GenerationSettings,
    opts: RowOptions,
) -> list[dict]:
    """The rows of one batch of items (each item's tasks in order, IQA before IAA)."""
    jobs = [(Path(p), t) for p in paths for t in opts.tasks]
    scores = score_batch(backend, jobs, settings)
    per_item = len(opts.tasks)
    return [make_row(ids[i // per_item], r, opts, settings.samples) for i, r in enumerate(scores)]


def rows_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


class Scorer:
    """A callable that scores batches of items: the unit the engines replicate.

    `make_backend` is called once, on first use, in the process that scores (a Ray replica
    loads its own model there, not on the driver). A batch is anything with ``id`` and ``path``
    columns (an Arrow table, Ray Data's numpy batches, a dict of lists); the rows come back as
    an Arrow table with `SCHEMA`.
    """

    def __init__(
        self,
        make_backend: Callable[[], Backend],
        settings: GenerationSettings,
        opts: RowOptions,
        *,
        torch_threads: int | None = None,
    ):
        self.make_backend = make_backend
        self.settings = settings
        self.opts = opts
        self.torch_threads = torch_threads
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            self._backend = self.make_backend()
        return self._backend

    def rows(self, ids: Sequence[str], paths: Sequence[str]) -> list[dict]:
        return score_items(self.backend, ids, paths, self.settings, self.opts)

    def __call__(self, batch) -> pa.Table:
        # An Arrow table out, with the fixed schema: numpy columns would turn nulls into objects.
        return rows_to_table(self.rows(_strings(batch["id"]), _strings(batch["path"])))


def _strings(column) -> list[str]:
    values = column.to_pylist() if hasattr(column, "to_pylist") else list(column)
    return [str(v) for v in values]
