"""Scoring a collection: folders and manifests, Parquet shards, resume, bad inputs (local engine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from tatar.cli import app
from tatar.collection import (
    SCHEMA,
    RowOptions,
    ShardStore,
    SourceError,
    load_source,
    score_collection,
)
from tatar.generation import GenerationSettings
from tatar.prompts import prompt_version
from tatar.scales import Scale

runner = CliRunner()


class FixedBackend:
    """Answers 10 + the image width (IQA) or 20 + the width (IAA); counts the images it saw."""

    name = "fixed"

    def __init__(self):
        self.images = 0

    def generate(self, images, tasks, settings, *, key=""):
        self.images += len(images)
        return [
            [
                f"<think>w{im.size[0]}</think><answer>{(10 if t == 'iqa' else 20) + im.size[0] + k}</answer>"
                for k in range(settings.samples)
            ]
            for im, t in zip(images, tasks, strict=True)
        ]


class FixedSpec:
    """Stands in for `BackendSpec`: builds one `FixedBackend` and keeps it for inspection."""

    name = "fixed"
    model_path = "fixed"
    pixels: dict = {}

    def __init__(self):
        self.backend = None

    def __call__(self):
        self.backend = FixedBackend()
        return self.backend


def opts(**kw) -> RowOptions:
    return RowOptions(model="m", revision=None, prompt_version=prompt_version(), **kw)


def make_images(folder, n, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        Image.new("RGB", (20 + i, 16), (10 * i, 40, 40)).save(folder / f"img{i:02d}.png")
    return folder


def score(source, out, spec=None, settings=None, row_opts=None, **kw):
    return score_collection(
        source,
        out,
        spec or FixedSpec(),
        settings or GenerationSettings(batch_size=2),
        row_opts or opts(),
        progress=False,
        **kw,
    )


# --- sources -----------------------------------------------------------------------------


def test_a_folder_is_searched_recursively_for_images_in_sorted_order(tmp_path):
    make_images(tmp_path / "d" / "b", 2)
    make_images(tmp_path / "d", 1)
    (tmp_path / "d" / "notes.txt").write_text("x")
    (tmp_path / "d" / "UPPER.JPG").write_bytes(b"jpeg?")
    make_images(tmp_path / "d" / ".hidden", 1)
    t = load_source(tmp_path / "d")
    assert t.column("id").to_pylist() == ["UPPER.JPG", "b/img00.png", "b/img01.png", "img00.png"]
    assert t.column("path").to_pylist()[1] == str((tmp_path / "d" / "b" / "img00.png").resolve())


def write_manifest(path, rows):
    fmt = path.suffix
    if fmt == ".csv":
        cols = list(rows[0])
        path.write_text(
            ",".join(cols) + "\n" + "".join(",".join(r[c] for c in cols) + "\n" for r in rows)
        )
    elif fmt == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt", [".csv", ".jsonl", ".parquet"])
def test_each_manifest_format_is_scored_with_ids_and_relative_paths(tmp_path, fmt):
    make_images(tmp_path / "imgs", 3)
    rows = [{"image_id": f"00{i}", "path": f"imgs/img{i:02d}.png"} for i in range(3)]
    manifest = write_manifest(tmp_path / f"m{fmt}", rows)
    spec = FixedSpec()
    s = score(manifest, tmp_path / "out", spec, row_opts=opts(task="iqa"))
    assert (s.done, s.failed, s.skipped, s.total) == (3, 0, 0, 3)
    table = ShardStore(tmp_path / "out").read()
    assert table.schema == SCHEMA
    assert table.column("id").to_pylist() == ["000", "001", "002"]  # text, not numbers
    assert table.column("score").to_pylist() == [30.0, 31.0, 32.0]
    assert table.column("status").to_pylist() == ["ok"] * 3
    assert table.column("path").to_pylist()[0] == str((tmp_path / "imgs" / "img00.png").resolve())
    assert set(table.column("prompt_version").to_pylist()) == {prompt_version()}


def test_without_an_id_column_the_path_is_the_id_and_image_root_applies(tmp_path):
    make_images(tmp_path / "photos", 2)
    manifest = write_manifest(tmp_path / "m.csv", [{"file": "img00.png"}, {"file": "img01.png"}])
    t = load_source(manifest, image_root=tmp_path / "photos")
    assert t.column("id").to_pylist() == ["img00.png", "img01.png"]
    assert t.column("path").to_pylist()[1] == str(tmp_path / "photos" / "img01.png")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("m.csv", "name,score\na.png,3\n", "m.csv: no image path column (looked for path"),
        ("m.csv", "path,id\na.png,1\nb.png,1\n", "m.csv:3: id '1' repeats"),
        ("m.csv", "path\nhttp://x/a.png\n", "m.csv:2: 'http://x/a.png' is a URL"),
        ("m.csv", "path\n", "m.csv: the manifest has no rows"),
        ("m.jsonl", '{"path": "a.png"}\n{"path": \n', "m.jsonl:2: not valid JSON"),
        ("m.jsonl", '["a.png"]\n', "m.jsonl:1: a line must be a JSON object"),
        ("m.parquet", "not parquet", "m.parquet: cannot read as PARQUET"),
        ("m.txt", "a.png\n", "m.txt: not a folder and not a manifest"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_file(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_source(tmp_path / name)


def test_a_named_column_that_is_missing_lists_the_columns(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", [{"path": "a.png", "k": "1"}])
    with pytest.raises(SourceError, match=r"m\.csv: no column 'key' \(columns: path, k\)"):
        load_source(manifest, id_column="key")


# --- rows, shards, resume ------------------------------------------------------------------


def test_unreadable_and_missing_images_are_error_rows_and_the_rest_is_scored(tmp_path):
    make_images(tmp_path / "imgs", 2)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not an image")
    rows = [{"path": f"imgs/{n}"} for n in ("img00.png", "broken.png", "gone.png", "img01.png")]
    manifest = write_manifest(tmp_path / "m.jsonl", rows)
    s = score(manifest, tmp_path / "out")
    assert (s.done, s.failed) == (4, 2)
    t = ShardStore(tmp_path / "out").read().to_pylist()
    assert [(r["id"], r["task"], r["status"]) for r in t] == [
        (f"imgs/{n}", task, "error" if n in ("broken.png", "gone.png") else "ok")
        for n in ("img00.png", "broken.png", "gone.png", "img01.png")
        for task in ("iqa", "iaa")
    ]
    errors = {r["id"]: r["error"] for r in t if r["error"]}
    assert (
        "cannot read image" in errors["imgs/broken.png"]
        and "broken.png" in errors["imgs/broken.png"]
    )
    assert errors["imgs/gone.png"].startswith("image not found: ") and errors[
        "imgs/gone.png"
    ].endswith("gone.png")
    assert all(r["score"] is None for r in t if r["error"])


def test_samples_mean_std_think_native_scale_and_jsonl_twin(tmp_path):
    make_images(tmp_path / "d", 2)
    settings = GenerationSettings(batch_size=4, samples=3)
    row_opts = opts(task="iaa", scale=Scale(1, 5), keep_think=True, keep_completions=True)
    score(tmp_path / "d", tmp_path / "out", settings=settings, row_opts=row_opts, jsonl=True)
    t = ShardStore(tmp_path / "out").read().to_pylist()
    first = t[0]
    assert (first["task"], first["score"], first["samples"], first["parsed"]) == ("iaa", 41.0, 3, 3)
    assert first["std"] == pytest.approx((2 / 3) ** 0.5)
    assert first["score_native"] == pytest.approx(1 + 4 * 0.41) and first["scale"] == "1:5"
    assert first["think"] == "w20" and len(first["completions"]) == 3
    twin = [json.loads(line) for line in (tmp_path / "out" / "part-000000.jsonl").open()]
    assert twin == t


def test_a_rerun_skips_what_is_done_and_new_images_are_added(tmp_path):
    make_images(tmp_path / "d", 5)
    out = tmp_path / "out"
    first = score(tmp_path / "d", out, shard_size=2, limit=3)
    assert (first.done, first.skipped, first.shards_written) == (3, 0, 2)
    (out / ".part-000009.abc.tmp").write_bytes(b"half a shard")  # a kill mid-write
    make_images(tmp_path / "d", 1, start=5)
    spec = FixedSpec()
    again = score(tmp_path / "d", out, spec, shard_size=2)
    assert (again.done, again.skipped, again.total) == (3, 3, 6)
    assert spec.backend.images == 3 * 2  # only the new images, each for IQA and IAA
    assert not list(out.glob(".part-*.tmp"))
    store = ShardStore(out)
    assert [p.name for p in store.shards()] == [f"part-00000{i}.parquet" for i in range(4)]
    assert sorted(store.done_ids()) == [f"img{i:02d}.png" for i in range(6)]
    spec = FixedSpec()
    nothing = score(tmp_path / "d", out, spec)
    assert (nothing.done, nothing.skipped) == (0, 6) and spec.backend is None  # no model loaded
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["skipped"], summary["failed"]) == (0, 6, 0)


def test_a_rerun_with_other_settings_is_refused_unless_overwritten(tmp_path):
    make_images(tmp_path / "d", 2)
    score(tmp_path / "d", tmp_path / "out")
    with pytest.raises(ValueError, match=r"different run \(differs in: generation\)"):
        score(tmp_path / "d", tmp_path / "out", settings=GenerationSettings(max_new_tokens=9))
    s = score(
        tmp_path / "d",
        tmp_path / "out",
        settings=GenerationSettings(max_new_tokens=9),
        overwrite=True,
    )
    assert (s.done, s.skipped) == (2, 0)


# --- command line (tiny checkpoint) ----------------------------------------------------------


def cli(*args):
    result = runner.invoke(app, ["score-collection", *[str(a) for a in args]])
    return result.exit_code, result.stdout, result.stderr


def test_cli_scores_a_folder_with_the_tiny_checkpoint(tmp_path, tiny_model_dir):
    make_images(tmp_path / "d", 3)
    (tmp_path / "d" / "bad.png").write_bytes(b"nope")
    args = ["--model", tiny_model_dir, "--out", tmp_path / "out", "--max-new-tokens", "4"]
    code, stdout, stderr = cli(tmp_path / "d", *args, "--shard-size", "2", "--dataset-scale", "ava")
    assert code == 0, stderr
    assert "4 scored (1 failed, 3 unparsed), 0 skipped" in stdout
    assert "failed: cannot read image" in stderr and "bad.png" in stderr
    assert "scoring: 4/4 (100%)" in stderr and "images/s" in stderr  # progress into a file
    t = ShardStore(tmp_path / "out").read()
    assert t.num_rows == 8 and set(t.column("scale").to_pylist()) == {"1:10"}
    assert set(t.column("model").to_pylist()) == {str(tiny_model_dir.resolve())}
    code, _, stderr = cli(tmp_path / "d", *args)  # without --dataset-scale: another run
    assert code == 2 and "differs in: scale" in stderr
    code, stdout, _ = cli(tmp_path / "d", *args, "--dataset-scale", "ava")
    assert code == 0 and "0 scored (0 failed, 0 unparsed), 4 skipped" in stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/nowhere"], "nowhere: no such folder or manifest"),
        (["{tmp}/m.csv"], "m.csv: no image path column"),
        (["{tmp}/d", "--dataset-scale", "nonsense"], "no declared scale for dataset 'nonsense'"),
        (["{tmp}/d", "--engine", "ray", "--device", "cpu"], "--device applies to --engine local"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, tiny_model_dir, args, message):
    make_images(tmp_path / "d", 1)
    (tmp_path / "m.csv").write_text("name\na.png\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, stdout, stderr = cli(*args, "--model", tiny_model_dir, "--out", tmp_path / "out")
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr


@pytest.mark.slow  # a subprocess that loads torch and the model twice: ~20-30 s here
def test_resume_after_sigkill_loses_nothing_and_repeats_nothing(tmp_path, tiny_model_dir):
    n = 40
    make_images(tmp_path / "d", n)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-c",
        "from tatar.cli import app; app()",
        "score-collection",
        str(tmp_path / "d"),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(out),
        "--batch-size",
        "1",
        "--shard-size",
        "2",
        "--max-new-tokens",
        "16",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    written = len(ShardStore(out).done_ids())
    assert 0 < written < n  # killed mid-run
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{n - written} scored" in result.stdout and f"{written} skipped" in result.stdout
    table = ShardStore(out).read()
    pairs = list(zip(table.column("id").to_pylist(), table.column("task").to_pylist(), strict=True))
    assert len(pairs) == len(set(pairs)) == 2 * n  # every id and task exactly once
    assert {i for i, _ in pairs} == {f"img{i:02d}.png" for i in range(n)}
    assert not list(out.glob(".part-*.tmp"))


# --- the Ray + vLLM path's row functions (vLLM itself is GPU-only) -------------------------------


def test_vllm_request_rows_and_their_collection_into_output_rows(tmp_path):
    from tatar.collection.vllm_ray import Preprocess, collect_rows, postprocess, requests_of

    make_images(tmp_path / "d", 1)
    good = {"id": "a", "path": str(tmp_path / "d" / "img00.png")}
    bad = {"id": "b", "path": str(tmp_path / "d" / "gone.png")}
    settings = GenerationSettings(samples=2, think="force", seed=3)
    reqs = requests_of(good, ["iqa"], 2) + requests_of(bad, ["iqa"], 2)
    assert [(r["id"], r["task"], r["sample"]) for r in reqs] == [
        ("a", "iqa", 0),
        ("a", "iqa", 1),
        ("b", "iqa", 0),
        ("b", "iqa", 1),
    ]
    pre = [Preprocess({"iqa": "PROMPT<think>\n"}, settings)(r) for r in reqs]
    assert pre[0]["prompt"] == "PROMPT<think>\n" and pre[0]["multimodal_data"]["image"].size == (
        20,
        16,
    )
    p = pre[0]["sampling_params"]
    assert (p["temperature"], p["top_k"], p["max_tokens"]) == (1.0, -1, 256)
    assert pre[0]["sampling_params"]["seed"] != pre[1]["sampling_params"]["seed"]
    assert pre[2]["read_error"].startswith("image not found") and pre[0]["read_error"] is None
    answers = ["ok</think><answer>40</answer>", "fine</think><answer>50</answer>", "", ""]
    outs = [postprocess({**r, "generated_text": a}) for r, a in zip(pre, answers, strict=True)]
    rows = list(collect_rows(outs, settings, opts(task="iqa", keep_think=True)))
    assert [(r["id"], r["score"], r["std"], r["think"], r["status"]) for r in rows] == [
        ("a", 45.0, 5.0, "ok", "ok"),
        ("b", None, None, None, "error"),
    ]
    assert rows[1]["error"].startswith("image not found")


def test_vllm_on_ray_without_vllm_is_one_line(tmp_path, monkeypatch):
    import tatar.collection.vllm_ray as vr

    monkeypatch.setattr(vr, "vllm_available", lambda: False)
    with pytest.raises(ValueError, match="--backend vllm needs vLLM"):
        next(
            vr.vllm_ray_batches(
                pa.table({"id": ["a"], "path": ["a"]}), "m", GenerationSettings(), opts(), 1, None
            )
        )
