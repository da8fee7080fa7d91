"""Where the scoring runs: in this process (`local_batches`) or on Ray Data (`ray_batches`).

Both take the pending items (an Arrow table of ``id``, ``path``) and yield lists of output rows
in item order, every row of an item in the same list; the caller writes them to shards. Both
cut the items into the same batches of `batch_size` images and score each with the same
`Scorer`, so the same checkpoint gives the same rows, byte for byte, on either engine.

On Ray the items become blocks of whole batches (`ray.data.from_arrow`), `map_batches` runs the
`Scorer` class on a fixed pool of replicas (one model each; one GPU each when the cluster has
GPUs) and the driver streams the results back in order (`preserve_order`), so it can write
shards as they arrive and a killed driver loses only the shard being filled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from tatar.collection.rows import Scorer

# Items per Ray block, in batches: several batches per block keeps each replica's queue fed
# without making the blocks (and what a kill loses) large.
BATCHES_PER_BLOCK = 4


def local_batches(scorer: Scorer, pending: pa.Table, batch_size: int) -> Iterator[list[dict]]:
    ids = pending.column("id").to_pylist()
    paths = pending.column("path").to_pylist()
    for start in range(0, len(ids), batch_size):
        yield scorer.rows(ids[start : start + batch_size], paths[start : start + batch_size])


@dataclass(frozen=True)
class RayOptions:
    """How to use Ray: a running cluster (`address`) or a local Ray of `num_cpus` CPUs.

    `replicas` model copies (default: one per GPU of the cluster, else 1), each reserving
    `gpus_per_replica` GPUs (default 1 when the cluster has GPUs, else 0) and
    `cpus_per_replica` CPUs (also torch's thread count in the replica).
    """

    address: str | None = None
    num_cpus: int | None = None
    replicas: int | None = None
    gpus_per_replica: float | None = None
    cpus_per_replica: float = 1.0

    def __post_init__(self) -> None:
        if self.replicas is not None and self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, got {self.replicas}")
        if self.gpus_per_replica is not None and self.gpus_per_replica < 0:
            raise ValueError(f"--gpus-per-replica must be >= 0, got {self.gpus_per_replica}")
        if self.cpus_per_replica <= 0:
            raise ValueError(f"--cpus-per-replica must be > 0, got {self.cpus_per_replica}")

    def resolve(self, cluster_gpus: float) -> tuple[int, float]:
        """(replicas, GPUs per replica) for a cluster with `cluster_gpus` GPUs."""
        gpus = self.gpus_per_replica
        if gpus is None:
            gpus = 1.0 if cluster_gpus >= 1 else 0.0
        if gpus > cluster_gpus:
            raise ValueError(
                f"each replica asks for {gpus:g} GPU(s) but the Ray cluster has {cluster_gpus:g}"
            )
        replicas = self.replicas
        if replicas is None:
            replicas = max(1, math.floor(cluster_gpus / gpus)) if gpus > 0 else 1
        return replicas, gpus


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to `address` or start a local Ray; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs = {"log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **kwargs)
    return True


def ray_dataset(pending: pa.Table, batch_size: int, replicas: int = 1):
    """The pending items as a Ray Dataset whose blocks hold whole batches, in order, and at
    least one block per replica when there are enough batches."""
    import ray

    batches = math.ceil(pending.num_rows / batch_size)
    step = batch_size * max(1, min(BATCHES_PER_BLOCK, math.ceil(batches / replicas)))
    blocks = [pending.slice(i, step) for i in range(0, pending.num_rows, step)]
    return ray.data.from_arrow(blocks)


def _configure_data_context() -> None:
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # shards in item order, as the local engine
    ctx.enable_progress_bars = False  # the driver shows its own progress (rate, ETA)


def ray_batches(
    scorer: Scorer, pending: pa.Table, batch_size: int, ray_options: RayOptions
) -> Iterator[list[dict]]:
    """Score `pending` on Ray Data with `scorer` replicated; yields rows in item order."""
    import ray

    started = start_ray(ray_options.address, ray_options.num_cpus)
    try:
        replicas, gpus = ray_options.resolve(ray.cluster_resources().get("GPU", 0.0))
        _configure_data_context()
        threads = max(1, int(ray_options.cpus_per_replica))
        ds = ray_dataset(pending, batch_size, replicas).map_batches(
            Scorer,
            fn_constructor_args=(scorer.make_backend, scorer.settings, scorer.opts),
            fn_constructor_kwargs={"torch_threads": threads},
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=replicas),
            num_gpus=gpus,
            num_cpus=ray_options.cpus_per_replica,
        )
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield table.to_pylist()
    finally:
        if started:
            ray.shutdown()
