"""Scoring a large image collection: a folder or a manifest into sharded Parquet, resumable.

    sources   the items: a folder (recursive) or a CSV / JSONL / Parquet manifest -> (id, path)
    rows      one output row per image and task; the `Scorer` every engine replicates
    store     the output folder: atomic Parquet shards (JSONL twins on request), resume
    engines   where scoring runs: this process, or Ray Data (one model replica per GPU)
    vllm_ray  Ray Data LLM with vLLM engines (GPU only)
    run       the resumable run: source -> pending ids -> engine -> shards -> summary

`tatar score-collection` is the command line; `score_collection` the library entry point.
"""

from tatar.collection.engines import RayOptions
from tatar.collection.rows import SCHEMA, RowOptions
from tatar.collection.run import BackendSpec, Summary, score_collection
from tatar.collection.sources import SourceError, load_source
from tatar.collection.store import ShardStore

__all__ = [
    "SCHEMA",
    "BackendSpec",
    "RayOptions",
    "RowOptions",
    "ShardStore",
    "SourceError",
    "Summary",
    "load_source",
    "score_collection",
]
