"""Throughput of `tatar score-collection`: images/s and peak memory, local engine vs Ray Data.

CPU part (always): the tiny checkpoint (built here, nothing downloaded) scores N synthetic
112 x 112 images for IQA and IAA with greedy decoding of a fixed number of new tokens (a random
model never stops early, so every image costs the same). Configurations: the local engine at
batch sizes 1 and 8, and Ray Data with 1 and 2 replicas (1 CPU each, batch 8). Each runs in its
own subprocess, so its peak memory is its own: the resident memory of the process tree (driver,
and for Ray its raylet and replica workers), sampled every 0.1 s.

Figures per configuration, each run twice (32 and 512 images by default, fresh processes):
`images_per_s`, the marginal rate (extra images / extra seconds: what a long run approaches,
free of model loading and Ray's start-up), `images_per_s_incl_start` (the larger run, start-up
included), `wall_s` of both runs, `first_rows_s` (until the first rows arrived) and
`peak_rss_mib` (the larger run).

GPU part (only with a CUDA device): a Qwen2.5-VL-3B-architecture model with random weights
(bf16; `bench/gpu_check_tatar.py`'s builder) on 448 x 448 images, the local engine with the HF
backend, and with vLLM when it is installed; peak GPU memory from torch for HF (vLLM reserves
its `gpu_memory_utilization` share of the GPU up front, so its peak is not a measurement).
Without a GPU this part is skipped and says so.

Run: .venv/bin/python bench/tatar_score_throughput.py [--images 32 512] [--new-tokens 32]
(writes bench/results/tatar_score_throughput.json)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tatar_score_throughput.json"
CPU_CONFIGS = [
    {"engine": "local", "batch_size": 1},
    {"engine": "local", "batch_size": 8},
    {"engine": "ray", "batch_size": 8, "replicas": 1},
    {"engine": "ray", "batch_size": 8, "replicas": 2},
]


class PeakMemory:
    """Peak resident memory of this process and all its descendants, sampled in a thread."""

    def __init__(self, every_s: float = 0.1):
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def make_images(folder: Path, n: int, size: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            folder / f"img{i:04d}.png"
        )
    return folder


def run_one(cfg: dict) -> dict:
    """One configuration in this process: time the engine's stream of rows."""
    import pyarrow as pa

    from tatar.collection import BackendSpec, RayOptions, RowOptions
    from tatar.collection.engines import local_batches, ray_batches
    from tatar.collection.rows import Scorer
    from tatar.collection.sources import load_source
    from tatar.generation import GenerationSettings
    from tatar.prompts import prompt_version

    items: pa.Table = load_source(cfg["images"]).slice(0, cfg["n"])
    settings = GenerationSettings(max_new_tokens=cfg["new_tokens"], batch_size=cfg["batch_size"])
    opts = RowOptions(model=cfg["model"], revision=None, prompt_version=prompt_version())
    spec = BackendSpec(cfg.get("backend", "hf"), cfg["model"], device=cfg.get("device"))
    scorer = Scorer(spec, settings, opts, torch_threads=cfg.get("threads"))
    arrivals: list[tuple[float, int]] = []
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        if cfg["engine"] == "local":
            chunks = local_batches(scorer, items, settings.batch_size)
        else:
            ray_opts = RayOptions(num_cpus=cfg.get("ray_cpus", 2), replicas=cfg["replicas"])
            chunks = ray_batches(scorer, items, settings.batch_size, ray_opts)
        for rows in chunks:
            arrivals.append((time.perf_counter() - t0, len({r["id"] for r in rows})))
    n = sum(k for _, k in arrivals)
    result = {
        **{k: v for k, v in cfg.items() if k not in ("images", "model", "n")},
        "images": n,
        "wall_s": round(arrivals[-1][0], 3),
        "first_rows_s": round(arrivals[0][0], 3),
        "peak_rss_mib": round(mem.peak / 2**20, 1),
    }
    if cfg.get("device") == "cuda":
        import torch

        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def in_subprocess(cfg: dict, timeout: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg.get("threads") or 1)}
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {**cfg, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(lines[-1])


def measure(cfg: dict, sizes: tuple[int, int], timeout: float) -> dict:
    """Run `cfg` on the first `sizes[0]` and then `sizes[1]` images (each in a fresh process).

    ``images_per_s`` is the marginal rate (extra images / extra seconds): the rate of a long run,
    free of model loading and Ray's start-up, which the small run pays as well.
    """
    small, large = (in_subprocess({**cfg, "n": n}, timeout) for n in sizes)
    if "error" in small or "error" in large:
        return {**large, "error": small.get("error") or large.get("error")}
    extra_s = large["wall_s"] - small["wall_s"]
    return {
        **{k: v for k, v in large.items() if k not in ("images", "wall_s", "first_rows_s")},
        "images": list(sizes),
        "wall_s": [small["wall_s"], large["wall_s"]],
        "first_rows_s": large["first_rows_s"],
        "images_per_s": round((sizes[1] - sizes[0]) / extra_s, 2) if extra_s > 0 else None,
        "images_per_s_incl_start": round(sizes[1] / large["wall_s"], 2),
    }


def gpu_part(work: Path, sizes: tuple[int, int], new_tokens: int, timeout: float) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine"}
    sys.path.insert(0, str(HERE))
    from gpu_check_tatar import QWEN25_VL_3B, build_model
    from tatar.generation import vllm_available

    model = work / "qwen25vl3b-random"
    params = build_model(model, QWEN25_VL_3B, "bfloat16", max_pixels=448 * 448)
    images = make_images(work / "gpu-images", sizes[1], 448)
    out = {"model": "Qwen2.5-VL-3B architecture, random weights, bf16", "parameters": params}
    runs = [{"backend": "hf", "batch_size": 16, "device": "cuda"}]
    if vllm_available():
        runs.append({"backend": "vllm", "batch_size": 64})
    else:
        out["vllm"] = "not installed: skipped"
    base = {"engine": "local", "images": str(images), "model": str(model), "new_tokens": new_tokens}
    out["runs"] = [measure({**base, "threads": 4, **r}, sizes, timeout) for r in runs]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--images", type=int, nargs=2, default=(32, 512), help="the two run sizes (CPU)"
    )
    ap.add_argument("--gpu-images", type=int, nargs=2, default=(64, 256))
    ap.add_argument("--new-tokens", type=int, default=32, help="new tokens per answer")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run as JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))), flush=True)
        return 0

    from tatar.tiny_model import build_tiny_model

    sizes = tuple(sorted(args.images))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tatar-throughput-") as tmp:
        work = Path(tmp)
        tiny = build_tiny_model(work / "tiny")
        images = make_images(work / "images", sizes[1], 112)
        base = {"images": str(images), "model": str(tiny), "new_tokens": args.new_tokens}
        cpu = []
        for cfg in CPU_CONFIGS:
            r = measure({**cfg, **base, "device": "cpu"}, sizes, args.timeout)
            cpu.append(r)
            print(json.dumps(r), flush=True)
        gpu = gpu_part(work, tuple(sorted(args.gpu_images)), args.new_tokens, args.timeout)
    report = {
        "benchmark": "tatar_score_throughput",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1min_before": round(load_before, 2),
            "load_avg_1min_after": round(os.getloadavg()[0], 2),
        },
        "workload": {
            "images": list(sizes),
            "image_size": "112x112 (16 image tokens on the tiny checkpoint)",
            "tasks": "iqa+iaa",
            "new_tokens": args.new_tokens,
            "decoding": "greedy",
        },
        "cpu_tiny_checkpoint": cpu,
        "gpu": gpu,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(
        f"{'engine':7s} {'batch':>5s} {'replicas':>8s} {'wall s (' + str(sizes[0]) + '/' + str(sizes[1]) + ')':>16s} "
        f"{'images/s':>9s} {'incl. start':>11s} {'peak MiB':>9s}"
    )
    for r in cpu:
        if "error" in r:
            print(f"{r['engine']:7s} error: {r['error']}")
            continue
        walls = "/".join(f"{w:.1f}" for w in r["wall_s"])
        print(
            f"{r['engine']:7s} {r['batch_size']:5d} {r.get('replicas', '-')!s:>8s} {walls:>16s} "
            f"{r['images_per_s'] or float('nan'):9.2f} {r['images_per_s_incl_start']:11.2f} "
            f"{r['peak_rss_mib']:9.0f}"
        )
    print(f"GPU: {json.dumps(gpu) if 'skipped' in gpu else json.dumps(gpu['runs'])}")
    print(f"wrote {args.out}")
    return 0 if not any("error" in r for r in cpu) else 1


if __name__ == "__main__":
    sys.exit(main())
