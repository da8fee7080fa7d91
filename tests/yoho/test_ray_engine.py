"""The Ray engine: the same per-image jobs as the local loop, on a local Ray cluster."""

from __future__ import annotations

import dataclasses

import pytest

from yoho.evaluation.dataset import load_dataset
from yoho.evaluation.methods import parse_methods
from yoho.evaluation.runner import pending_jobs, run_local
from yoho.evaluation.settings import ProtocolSetting
from yoho.evaluation.store import METRICS, ResultStore
from yoho.io import write_png
from yoho.synthetic import synthetic_endoscopy

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # a local Ray takes 10-30 s to start on 2 cores


def make_dataset(root, n, size):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image, mask = synthetic_endoscopy(size=size, seed=10 + i)
        write_png(root / "images" / f"img{i}.png", image)
        write_png(root / "masks" / f"img{i}.png", mask)
    return root


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray for the whole session (it starts slowly here)."""
    from yoho.evaluation.ray_engine import start_ray

    started = start_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def test_ray_equals_the_local_loop_on_two_images(tmp_path, local_ray):
    from yoho.evaluation.ray_engine import run_ray

    root = make_dataset(tmp_path / "d", n=2, size=80)
    items = load_dataset(root)
    methods = parse_methods("yoho,roi,random_walker", profile="tiny")
    setting = ProtocolSetting()
    stores = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        store = ResultStore(out / "results.csv")
        jobs = pending_jobs(items, setting, methods, out, store, torch_threads=1)
        seen = []
        if engine == "ray":
            failed = run_ray(jobs, store, lambda n, r, seen=seen: seen.append(n), cpus_per_job=1)
        else:
            failed = run_local(jobs, store, lambda n, r, seen=seen: seen.append(n))
        assert failed == 0 and sorted(seen) == ["img0", "img1"]
        stores[engine] = store
    assert set(stores["local"].rows) == set(stores["ray"].rows) and len(stores["ray"].rows) == 6
    for key, row in stores["local"].rows.items():
        other = stores["ray"].rows[key]
        assert {m: row[m] for m in METRICS} == {m: other[m] for m in METRICS}, key


def test_ray_reports_a_failed_image_and_goes_on(tmp_path, local_ray):
    from yoho.evaluation.ray_engine import run_ray

    root = make_dataset(tmp_path / "d", n=2, size=80)
    (root / "images" / "img0.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    store = ResultStore(out / "results.csv")
    jobs = pending_jobs(load_dataset(root), ProtocolSetting(), parse_methods("roi"), out, store)
    jobs = [dataclasses.replace(j) for j in jobs]
    assert run_ray(jobs, store, cpus_per_job=1) == 1
    assert "not a readable image" in store.rows[("img0", "m0.15_k3", "roi")]["error"]
    assert store.done("img1", "m0.15_k3", "roi")
