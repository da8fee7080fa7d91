"""`--engine ray`: Ray Data replicas give the local engine's rows, byte for byte (tiny checkpoint)."""

from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

from tatar.cli import app
from tatar.collection import BackendSpec, RayOptions, RowOptions, ShardStore, score_collection
from tatar.generation import GenerationSettings
from tatar.prompts import prompt_version

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # a local Ray takes 10-30 s to start on 2 cores


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the module; the engine reuses it and leaves it running."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    if started:
        ray.shutdown()


def make_folder(root, n):
    root.mkdir()
    for i in range(n):
        Image.new("RGB", (28 + 3 * i, 28), (30 * i, 90, 20)).save(root / f"p{i}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def test_ray_engine_equals_the_local_engine_on_the_tiny_checkpoint(
    tmp_path, tiny_model_dir, local_ray
):
    folder = make_folder(tmp_path / "d", 5)
    # Sampling (2 samples, seeded per batch) makes the comparison cover the seeding too.
    settings = GenerationSettings(max_new_tokens=12, samples=2, batch_size=2)
    opts = RowOptions(
        model=str(tiny_model_dir),
        revision=None,
        prompt_version=prompt_version(),
        keep_think=True,
        keep_completions=True,
    )
    spec = BackendSpec("hf", str(tiny_model_dir), device="cpu")
    results = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        summary = score_collection(
            folder,
            out,
            spec,
            settings,
            opts,
            engine=engine,
            ray_options=RayOptions(replicas=2, cpus_per_replica=1),
            shard_size=2,
            progress=False,
        )
        assert (summary.done, summary.failed) == (6, 1)
        results[engine] = ShardStore(out)
    local, distributed = results["local"], results["ray"]
    assert local.read().equals(distributed.read())
    assert [p.name for p in local.shards()] == [p.name for p in distributed.shards()]
    for a, b in zip(local.shards(), distributed.shards(), strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    rows = local.read().to_pylist()
    assert len(rows) == 12 and all(len(r["completions"]) == 2 for r in rows if not r["error"])
    assert [r["id"] for r in rows if r["error"]] == ["broken.jpg", "broken.jpg"]


def test_ray_engine_from_the_command_line_resumes(tmp_path, tiny_model_dir, local_ray):
    folder = make_folder(tmp_path / "d", 3)
    runner = CliRunner()
    args = [
        "score-collection",
        str(folder),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(tmp_path / "out"),
        "--engine",
        "ray",
        "--max-new-tokens",
        "4",
        "--task",
        "iqa",
        "--quiet",
    ]
    first = runner.invoke(app, [*args, "--limit", "2"])
    assert first.exit_code == 0, first.output
    assert "2 scored (1 failed" in first.stdout  # broken.jpg sorts first
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "2 scored (0 failed, 2 unparsed), 2 skipped" in again.stdout
    assert sorted(ShardStore(tmp_path / "out").done_ids()) == [
        "broken.jpg",
        "p0.png",
        "p1.png",
        "p2.png",
    ]


@pytest.mark.gpu
def test_vllm_replicas_on_ray_give_the_same_rows_format(tmp_path, tiny_model_dir, local_ray):
    """GPU only (skipped on CPU): Ray Data LLM with vLLM engines on the tiny checkpoint."""
    pytest.importorskip("vllm")
    folder = make_folder(tmp_path / "d", 3)
    opts = RowOptions(model=str(tiny_model_dir), revision=None, prompt_version=prompt_version())
    summary = score_collection(
        folder,
        tmp_path / "out",
        BackendSpec("vllm", str(tiny_model_dir)),
        GenerationSettings(max_new_tokens=8, samples=2, batch_size=2),
        opts,
        engine="ray",
        ray_options=RayOptions(replicas=1),
        progress=False,
    )
    assert (summary.done, summary.failed) == (4, 1)
    rows = ShardStore(tmp_path / "out").read().to_pylist()
    assert len(rows) == 8 and {r["samples"] for r in rows} == {2}
