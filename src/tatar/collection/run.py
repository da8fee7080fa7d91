"""Score a collection into an output folder: the resumable run around the engines.

Order of work: read and check the source (before any model is loaded), lock the output folder,
match ``run.json``, drop the ids already in the shards, then stream the rows of the rest from the
engine into shards of `shard_size` images, with progress (images/s and time left) on standard
error, and end with a summary of what was done, failed and skipped.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tatar.collection.engines import RayOptions, local_batches, ray_batches
from tatar.collection.rows import RowOptions, Scorer
from tatar.collection.sources import load_source
from tatar.collection.store import ShardStore, group_by_item
from tatar.generation import GenerationSettings
from tatar.outputs import atomic_write_json, check_run_info, folder_lock
from tatar.progress import progress_bar

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BackendSpec:
    """How to build a backend, picklable, so each Ray replica builds its own model."""

    name: str
    model_path: str
    device: str | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None

    @property
    def pixels(self) -> dict:
        return {
            k: v for k, v in (("min_pixels", self.min_pixels), ("max_pixels", self.max_pixels)) if v
        }

    def __call__(self):
        from tatar.generation import make_backend

        return make_backend(self.name, self.model_path, device=self.device, **self.pixels)


@dataclass
class Summary:
    """Counts in images: scored now (`done`, of which `failed` have an error row and `unparsed`
    no parsable answer for some task), already in the folder (`skipped`), and the source size."""

    out: str
    total: int
    done: int = 0
    failed: int = 0
    unparsed: int = 0
    skipped: int = 0
    shards_written: int = 0
    elapsed_s: float = 0.0
    images_per_s: float | None = None
    engine: str = "local"
    first_errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        rate = f", {self.images_per_s:.2f} images/s" if self.images_per_s else ""
        return (
            f"{self.out}: {self.done} scored ({self.failed} failed, {self.unparsed} unparsed), "
            f"{self.skipped} skipped (already done), {self.total} in the source; "
            f"{self.shards_written} shard(s) written in {self.elapsed_s:.1f} s{rate}"
        )


def _clear(out: Path, store: ShardStore) -> None:
    # Only what this module writes: a mistaken --out keeps everything else.
    for shard in store.shards():
        shard.with_suffix(".jsonl").unlink(missing_ok=True)
        shard.unlink()
    for name in ("run.json", "summary.json"):
        (out / name).unlink(missing_ok=True)


def score_collection(
    source: str | os.PathLike,
    out: str | os.PathLike,
    spec: BackendSpec,
    settings: GenerationSettings,
    opts: RowOptions,
    *,
    engine: str = "local",
    ray_options: RayOptions | None = None,
    shard_size: int = 1000,
    jsonl: bool = False,
    path_column: str | None = None,
    id_column: str | None = None,
    image_root: str | os.PathLike | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Summary:
    """Score every image of `source` (folder or manifest) not yet in `out`; see the module doc."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected local or ray")
    if shard_size < 1:
        raise ValueError(f"--shard-size must be at least 1, got {shard_size}")
    items = load_source(source, path_column=path_column, id_column=id_column, image_root=image_root)
    if limit is not None:
        items = items.slice(0, limit)
    out = Path(out)
    store = ShardStore(out, jsonl=jsonl)
    run_info = {
        "model": opts.model,
        "revision": opts.revision,
        "prompt_version": opts.prompt_version,
        "task": opts.task,
        "scale": opts.scale_text(),
        "generation": settings.fingerprint(),
        "pixels": spec.pixels,
        "keep_think": opts.keep_think,
        "keep_completions": opts.keep_completions,
    }
    with folder_lock(out):
        if overwrite:
            _clear(out, store)
        check_run_info(out, run_info, holds="scores")
        store.clean_partial()
        done = store.done_ids()
        pending = items.filter(
            pc.invert(pc.is_in(items.column("id"), pa.array(list(done), pa.string())))
        )
        summary = Summary(
            str(out), total=items.num_rows, skipped=items.num_rows - pending.num_rows, engine=engine
        )
        t0 = time.monotonic()
        if pending.num_rows:
            _run(
                pending,
                store,
                spec,
                settings,
                opts,
                engine,
                ray_options,
                shard_size,
                summary,
                progress,
            )
        summary.elapsed_s = round(time.monotonic() - t0, 3)
        if summary.done and summary.elapsed_s > 0:
            summary.images_per_s = round(summary.done / summary.elapsed_s, 4)
        atomic_write_json(out / "summary.json", asdict(summary))
    return summary


def _run(pending, store, spec, settings, opts, engine, ray_options, shard_size, summary, progress):
    scorer = Scorer(spec, settings, opts)
    batch = settings.batch_size
    if engine == "local":
        chunks = local_batches(scorer, pending, batch)
    elif spec.name == "vllm":
        from tatar.collection.vllm_ray import vllm_ray_batches

        chunks = vllm_ray_batches(
            pending,
            spec.model_path,
            settings,
            opts,
            batch,
            ray_options or RayOptions(),
            pixels=spec.pixels,
        )
    else:
        chunks = ray_batches(scorer, pending, batch, ray_options or RayOptions())

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    index = store.next_index()
    buffer: list[list[dict]] = []
    started = time.monotonic()

    def flush() -> None:
        nonlocal index, buffer
        if buffer:
            store.write([r for item in buffer for r in item], index)
            index += 1
            summary.shards_written += 1
            buffer = []

    with progress_bar(*columns, enabled=progress) as bar:
        task_id = bar.add_task("scoring", total=pending.num_rows, status="")
        try:
            for item in group_by_item(itertools.chain.from_iterable(chunks)):
                buffer.append(item)
                summary.done += 1
                errors = [r["error"] for r in item if r["error"]]
                if errors:
                    summary.failed += 1
                    if len(summary.first_errors) < 5:
                        summary.first_errors.append(errors[0])
                elif any(r["score"] is None for r in item):
                    summary.unparsed += 1
                if len(buffer) >= shard_size:
                    flush()
                rate = summary.done / max(time.monotonic() - started, 1e-9)
                bar.update(
                    task_id, advance=1, status=f"{rate:.2f} images/s, {summary.failed} failed"
                )
        except KeyboardInterrupt:
            flush()  # Ctrl-C keeps what was scored; only a hard kill loses the open shard
            raise
        flush()
