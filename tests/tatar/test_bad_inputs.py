"""Bad inputs on the TATAR side: damaged result files, unreadable images, shared output folders,
fixed-choice options, progress when output goes to a file. Each case is listed in
docs/bad_inputs.md."""

from __future__ import annotations

import fcntl
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tatar.cli import app
from tatar.datasets import load_dataset
from tatar.evaluate import evaluate
from tatar.generation import GenerationSettings
from tatar.outputs import LOCK_NAME, JsonlStore, folder_lock
from tatar.progress import PlainProgress

runner = CliRunner()


class Backend:
    """Answers a fixed score per image; refuses (ValueError) images wider than `refuse_wider`."""

    name = "fixed"

    def __init__(self, refuse_wider: int | None = None):
        self.images = 0
        self.refuse_wider = refuse_wider

    def generate(self, images, tasks, settings, *, key=""):
        if self.refuse_wider and any(im.size[0] > self.refuse_wider for im in images):
            raise ValueError("absolute aspect ratio must be smaller than 200")
        self.images += len(images)
        return [[f"<answer>{10 + im.size[0]:.2f}</answer>"] for im in images]


def make_labels(root: Path, n: int = 10) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.new("RGB", (20 + i, 20), (i * 20, 50, 50)).save(root / f"img{i}.png")
        rows.append(f"img{i}.png,{rng.uniform(1, 5):.3f}")
    (root / "labels.csv").write_text("image,mos\n" + "\n".join(rows) + "\n")
    return root / "labels.csv"


def run_eval(labels: Path, out: Path, backend) -> list:
    ds = load_dataset(labels, task="iqa", scale="1:5")
    return evaluate(
        backend,
        [ds],
        out,
        GenerationSettings(batch_size=4),
        model="m",
        n_resamples=0,
        progress=False,
    )


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


# --------------------------------------------------------------------- damaged result files


def test_damaged_middle_line_is_named_and_only_its_image_recomputed(tmp_path, capsys):
    labels = make_labels(tmp_path)
    out = tmp_path / "out"
    run_eval(labels, out, Backend())
    samples = out / "labels" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    lines[4] = lines[4][: len(lines[4]) // 2] + "\n"  # line 5 cut in the middle
    samples.write_text("".join(lines))
    capsys.readouterr()

    backend = Backend()
    (res,) = run_eval(labels, out, backend)
    err = capsys.readouterr().err
    assert f"{samples}:5: not valid JSON" in err and "computed again" in err
    assert backend.images == 1 and res.generated == 1  # the 35-records-lost bug: nothing lost
    assert res.metrics["n"] == 10
    assert len(JsonlStore(samples).read()) == 10
    assert capsys.readouterr().err == ""  # the damaged line is gone: no warning on the next read


def test_truncated_last_line_is_named_with_file_and_line(tmp_path):
    warnings: list[str] = []
    store = JsonlStore(tmp_path / "s.jsonl", warn=warnings.append)
    store.append([{"id": "a"}, {"id": "b"}])
    with (tmp_path / "s.jsonl").open("a") as fh:
        fh.write('{"id": "c", "v"')
    assert list(store.read()) == ["a", "b"]
    assert warnings == [
        f"{tmp_path / 's.jsonl'}:3: incomplete last line (an interrupted write); its item is computed again"
    ]


def test_record_with_wrong_fields_is_recomputed_not_trusted(tmp_path, capsys):
    labels = make_labels(tmp_path)
    out = tmp_path / "out"
    run_eval(labels, out, Backend())
    samples = out / "labels" / "samples.jsonl"
    recs = [json.loads(x) for x in samples.read_text().splitlines()]
    recs[2]["pred"] = "high"
    del recs[6]["completions"]
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    capsys.readouterr()
    backend = Backend()
    run_eval(labels, out, backend)
    err = capsys.readouterr().err
    assert f"{samples}:3:" in err and "pred is not a number" in err
    assert f"{samples}:7:" in err and "no list 'completions'" in err
    assert backend.images == 2


def test_line_that_is_not_a_record_is_refused_with_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"s\.jsonl:2: a line without an 'id' field"):
        JsonlStore(path).read()


def test_rationale_journal_torn_line_is_named_and_bad_entry_refused(tmp_path):
    from tatar.rationales.journal import Journal

    path = tmp_path / "generate.journal.jsonl"
    j = Journal(path, stage="generate", fingerprint="f")
    with j:
        j.open()
        j.append({"id": "a", "ok": True})
    with path.open("a") as fh:
        fh.write('{"id": "b", "o')
    warnings: list[str] = []
    j = Journal(path, stage="generate", fingerprint="f", warn=warnings.append)
    latest, _ = j.read()
    assert list(latest) == ["a"]
    assert warnings == [
        f"{path}:3: incomplete last line (an interrupted write); its call is made again"
    ]
    with path.open("a") as fh:
        fh.write('{"ok": true}\n')
    with pytest.raises(ValueError, match=r"journal\.jsonl:3: a journal entry without 'id'"):
        j.read()


# --------------------------------------------------------------------- unreadable images


def test_eval_counts_corrupt_and_empty_images_as_failures_and_retries_them(tmp_path):
    labels = make_labels(tmp_path)
    (tmp_path / "img3.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "img7.png").write_bytes(b"")
    out = tmp_path / "out"
    backend = Backend()
    (res,) = run_eval(labels, out, backend)
    assert backend.images == 8
    assert res.metrics["n"] == 10 and res.metrics["n_parsed"] == 8
    assert res.metrics["unreadable_images"] == 2
    assert [u.split(":")[0] for u in res.unreadable] == [
        str(tmp_path / "img3.png"),
        str(tmp_path / "img7.png"),
    ]
    assert "(2 unreadable, counted as failures)" in (out / "summary.md").read_text()
    # the image is repaired: the rerun tries (only) the two failed images again
    Image.new("RGB", (23, 20)).save(tmp_path / "img3.png")
    backend = Backend()
    (res,) = run_eval(labels, out, backend)
    assert backend.images == 1 and res.metrics["unreadable_images"] == 1


def test_eval_image_the_processor_refuses_fails_alone_not_its_batch(tmp_path):
    labels = make_labels(tmp_path)
    (res,) = run_eval(labels, tmp_path / "out", Backend(refuse_wider=27))  # img8, img9
    assert res.metrics["n_parsed"] == 8 and res.metrics["unreadable_images"] == 2
    assert "aspect ratio" in res.unreadable[0]


def test_score_collection_of_a_folder_without_images_says_which_extensions(
    tmp_path, tiny_model_dir
):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    (tmp_path / "notes" / "scan.heic").write_bytes(b"x")
    for folder in ("empty", "notes"):
        code, stdout, stderr = cli(
            "score-collection",
            tmp_path / folder,
            "--model",
            tiny_model_dir,
            "--out",
            tmp_path / "o",
        )
        assert code == 2 and stderr == (
            f"error: {tmp_path / folder}: no images found (extensions: .bmp, .gif, .jpeg, .jpg, "
            ".png, .tif, .tiff, .webp)\n"
        )
    assert not (tmp_path / "o").exists()


def test_a_16_bit_grey_image_is_read_as_a_viewer_shows_it_not_clipped_to_white(tmp_path):
    from tatar.generation import load_image

    values = (np.arange(400).reshape(20, 20) * 160).astype(np.uint16)  # 0 .. 63840
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    rgb = np.asarray(load_image(tmp_path / "g16.png"))
    # PIL's convert("RGB") made 99 % of this image white (every value above 255).
    assert rgb.shape == (20, 20, 3) and (rgb == 255).mean() < 0.01
    assert np.abs(rgb[:, :, 0].astype(int) - np.round(values / 257)).max() == 0


def test_cli_eval_reports_unreadable_images_and_finishes(tmp_path, tiny_model_dir):
    labels = make_labels(tmp_path, n=3)
    (tmp_path / "img1.png").write_bytes(b"not an image")
    code, stdout, stderr = cli(
        "eval", "--model", tiny_model_dir, "--dataset", labels, "--task", "iqa",
        "--scale", "1:5", "--out", tmp_path / "out", "--max-new-tokens", 2,
        "--bootstrap", 0, "--backend", "hf", "--quiet",
    )  # fmt: skip
    assert code == 0, stdout + stderr
    assert "labels: 1 image(s) could not be read" in stderr and "img1.png" in stderr
    assert "| IQA | labels (1 unreadable, counted as failures) | 3 |" in stdout


def test_cli_score_prints_the_good_images_and_reports_the_corrupt_one(tmp_path, tiny_model_dir):
    good = [tmp_path / "a.png", tmp_path / "c.png"]
    for p in good:
        Image.new("RGB", (32, 32), (200, 10, 10)).save(p)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"")
    common = ("--model", tiny_model_dir, "--task", "iqa", "--max-new-tokens", 2, "--backend", "hf")
    code, stdout, stderr = cli("score", good[0], bad, good[1], *common, "--quiet")
    assert code == 1
    assert "Traceback" not in stdout + stderr
    assert [line.split()[0] for line in stdout.splitlines() if "IQA" in line] == [
        str(good[0]),
        str(good[1]),
    ]
    errors = [line for line in stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot read image {bad}: ")
    code, stdout, stderr = cli("score", good[0], bad, *common, "--json", "--quiet")
    assert code == 1
    rows = json.loads(stdout)
    assert [r.get("error") is None for r in rows] == [True, False]
    assert rows[1]["score"] is None and "cannot read image" in rows[1]["error"]


# --------------------------------------------------------------------- locked output folders


def hold_lock(folder: Path):
    """Take the folder's lock as another process would (a separate open file description)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_second_eval_into_a_locked_folder_stops_with_a_one_line_error(tmp_path, tiny_model_dir):
    labels = make_labels(tmp_path, n=2)
    out = tmp_path / "out"
    fd = hold_lock(out)
    try:
        with pytest.raises(ValueError, match="another run is writing to this folder"):
            run_eval(labels, out, Backend())
        code, stdout, stderr = cli(
            "eval", "--model", tiny_model_dir, "--dataset", labels, "--task", "iqa",
            "--scale", "1:5", "--out", out, "--quiet",
        )  # fmt: skip
        assert code == 2 and stdout == ""
        assert stderr.splitlines() == [
            f"error: {out}: another run is writing to this folder; wait for it to finish or use "
            "another output folder"
        ]
        assert not (out / "labels").exists()  # nothing written
    finally:
        os.close(fd)
    run_eval(labels, out, Backend())  # released: the folder is usable again


def test_folder_lock_is_reentrant_in_one_process_and_refuses_a_file(tmp_path):
    with folder_lock(tmp_path / "o"), folder_lock(tmp_path / "o"):
        pass
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"), folder_lock(tmp_path / "f"):
        pass


def test_eval_out_naming_a_file_is_a_one_line_error(tmp_path, tiny_model_dir):
    labels = make_labels(tmp_path, n=2)
    (tmp_path / "file").write_text("x")
    code, stdout, stderr = cli(
        "eval", "--model", tiny_model_dir, "--dataset", labels, "--task", "iqa", "--scale", "1:5",
        "--out", tmp_path / "file", "--quiet",
    )  # fmt: skip
    assert code == 2 and stderr.startswith("error: ") and len(stderr.splitlines()) == 1, stderr


def test_second_rationales_run_into_a_locked_folder_stops(tmp_path):
    from tatar.rationales.cli import app as rationales_app

    (tmp_path / "r.png").write_bytes(b"")
    (tmp_path / "records.jsonl").write_text(
        json.dumps(
            {
                "id": "a",
                "task": "iqa",
                "image": "r.png",
                "gt_score": 50,
                "dataset": "koniq",
                "rationale": "Sharp.",
            }
        )
        + "\n"
    )
    (tmp_path / "cfg.yaml").write_text(
        "teacher:\n  base_url: http://127.0.0.1:9/v1\n  model: m\njudge:\n"
        "  base_url: http://127.0.0.1:9/v1\n  model: m\n"
    )
    out = tmp_path / "out"
    fd = hold_lock(out)
    try:
        for stage in ("generate", "judge"):
            args = [stage, "-c", tmp_path / "cfg.yaml", "--in", tmp_path / "records.jsonl"]
            result = runner.invoke(rationales_app, [str(a) for a in [*args, "--out", out]])
            assert result.exit_code == 2, result.output
            assert "another run is writing to this folder" in result.stderr
            assert len(result.stderr.splitlines()) == 1
    finally:
        os.close(fd)


# --------------------------------------------------------------------- fixed choices, -h


@pytest.mark.parametrize(
    ("command", "listed"),
    [
        ("score", ["iqa|iaa|both", "auto|force|suppress", "auto|hf|vllm"]),
        ("eval", ["iqa|iaa", "[auto|force|suppress]", "auto|hf|vllm"]),
    ],
)
def test_help_lists_the_values_of_fixed_choice_options(command, listed):
    code, stdout, _ = cli(command, "-h")
    assert code == 0
    flat = " ".join(stdout.split())
    for values in listed:
        assert values in flat, (values, stdout)


def test_dash_h_is_help_on_every_level():
    for args in ([], ["score"], ["rationales"], ["rationales", "generate"]):
        code, stdout, _ = cli(*args, "-h")
        assert code == 0 and "Usage" in stdout, args


@pytest.mark.parametrize(
    "args",
    [
        ["score", "x.png", "--model", "m", "--task", "vqa"],
        ["score", "x.png", "--model", "m", "--think", "maybe"],
        ["score", "x.png", "--model", "m", "--backend", "onnx"],
        ["eval", "--model", "m", "--dataset", "d", "--out", "o", "--think", "force,maybe"],
        ["eval", "--model", "m", "--dataset", "d", "--out", "o", "--task", "both"],
    ],
)
def test_a_value_outside_the_choices_is_a_usage_error_not_a_traceback(args):
    code, stdout, stderr = cli(*args)
    assert code == 2 and "Traceback" not in stdout + stderr
    flat = " ".join(stderr.replace("│", " ").split())
    assert "Invalid value" in flat and ("is not one of" in flat or "must be one of" in flat)


# --------------------------------------------------------------------- progress lines


def test_plain_progress_prints_every_ten_percent_and_every_interval():
    now = [0.0]
    stream = io.StringIO()
    bar = PlainProgress(every_percent=10, every_s=30, stream=stream, clock=lambda: now[0])
    t = bar.add_task("koniq", total=100)
    for _ in range(100):
        now[0] += 1
        bar.advance(t, 1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "koniq: 10/100 (10%), 10 s elapsed, about 1 min 30 s left"
    assert lines[-1] == "koniq: 100/100 (100%), 1 min 40 s elapsed"
    stream.truncate(0), stream.seek(0)
    slow = bar.add_task("ava", total=1000)  # 0.1 % per step: the 30 s interval prints
    for _ in range(70):
        now[0] += 1
        bar.advance(slow, 1)
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == [
        "ava: 30/1000 (3%)",
        "ava: 60/1000 (6%)",
    ]


def test_eval_writes_plain_progress_lines_when_output_is_not_a_terminal(tmp_path, capsys):
    assert not sys.stdout.isatty()
    labels = make_labels(tmp_path)
    ds = load_dataset(labels, task="iqa", scale="1:5")
    settings = GenerationSettings(batch_size=2)
    evaluate(Backend(), [ds], tmp_path / "o", settings, model="m", n_resamples=0, progress=True)
    err = capsys.readouterr().err
    assert [line.split(",")[0] for line in err.splitlines()] == [
        f"labels: {k}/10 ({10 * k}%)" for k in (2, 4, 6, 8, 10)
    ]


def test_run_json_that_is_not_an_object_is_named(tmp_path):
    labels = make_labels(tmp_path, n=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run.json").write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"run\.json: not a run description"):
        run_eval(labels, tmp_path / "out", Backend())


def test_score_with_a_folder_for_an_image_is_one_line(tmp_path):
    code, stdout, stderr = cli("score", tmp_path, "--model", tmp_path / "m")
    assert code == 2 and stderr.startswith(f"error: {tmp_path} is a folder; give image files")


def test_label_csv_with_a_byte_order_mark_is_read(tmp_path):
    labels = make_labels(tmp_path, n=3)
    labels.write_bytes(b"\xef\xbb\xbf" + labels.read_bytes())  # as spreadsheets export it
    ds = load_dataset(labels, task="iqa", scale="1:5")
    assert [s.id for s in ds.samples] == ["img0.png", "img1.png", "img2.png"]


def test_rationales_config_that_is_not_yaml_is_one_line_with_file_and_line(tmp_path):
    from tatar.rationales.cli import app as rationales_app

    (tmp_path / "bad.yaml").write_text("teacher: [1\n")
    (tmp_path / "r.jsonl").write_text("")
    args = [
        "generate",
        "-c",
        tmp_path / "bad.yaml",
        "--in",
        tmp_path / "r.jsonl",
        "--out",
        tmp_path,
    ]
    result = runner.invoke(rationales_app, [str(a) for a in args])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'bad.yaml'}:2: not valid YAML (")
    assert len(result.stderr.splitlines()) == 1


def test_yaml_key_given_twice_is_refused_with_file_line_and_key(tmp_path):
    from tatar.rationales.cli import app as rationales_app
    from tatar.textio import read_yaml
    from tatar.train.config import load_config

    # PyYAML kept the last value: the first `lr` (or the first `path`) was dropped silently.
    (tmp_path / "c.yaml").write_text("model:\n  path: tiny\n  path: other\nrun_dir: r\n")
    with pytest.raises(ValueError) as err:
        load_config(tmp_path / "c.yaml")
    assert str(err.value) == (
        f"{tmp_path / 'c.yaml'}:3: duplicate key 'path' (first on line 2); give each key once"
    )
    (tmp_path / "f.yaml").write_text("a: 1\nb: [{x: 1, x: 2}]\n")
    with pytest.raises(ValueError, match=r"f\.yaml:2: duplicate key 'x' \(first on line 2\)"):
        read_yaml(tmp_path / "f.yaml")
    # Keys brought in by a merge may still be overridden, as YAML means them to be.
    (tmp_path / "m.yaml").write_text("base: &b {a: 1, c: 2}\nrun:\n  <<: *b\n  a: 3\n")
    assert read_yaml(tmp_path / "m.yaml")["run"] == {"a": 3, "c": 2}

    (tmp_path / "r.yaml").write_text("teacher:\n  model: m\nteacher:\n  model: n\n")
    (tmp_path / "r.jsonl").write_text("")
    args = ["generate", "-c", tmp_path / "r.yaml", "--in", tmp_path / "r.jsonl", "--out", tmp_path]
    result = runner.invoke(rationales_app, [str(a) for a in args])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path / 'r.yaml'}:3: duplicate key 'teacher' (first on line 1); "
        "give each key once\n"
    )


# --------------------------------------------------------------------- label files and configs


def test_eval_recomputes_records_made_for_another_label_file(tmp_path, capsys):
    """Two label files with the same name (and image names) evaluated into one folder: the
    second used to reuse the first's answers and ground truth silently."""
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        make_labels(folder, n=4)
    rows = "".join(f"img{i}.png,{5 - i}\n" for i in range(4))  # other ground truth
    (second / "labels.csv").write_text("image,mos\n" + rows)
    run_eval(first / "labels.csv", tmp_path / "out", Backend())
    capsys.readouterr()
    backend = Backend()
    (res,) = run_eval(second / "labels.csv", tmp_path / "out", backend)
    assert backend.images == 4  # every image computed again
    samples = tmp_path / "out" / "labels" / "samples.jsonl"
    err = capsys.readouterr().err
    assert f"warning: {samples}: 4 record(s) were made for another image, label or task" in err
    assert "img0.png: ground truth" in err
    assert res.metrics["scored"]["srcc"] == pytest.approx(-1.0)  # b's labels, not a's
    backend = Backend()
    run_eval(second / "labels.csv", tmp_path / "out", backend)
    assert backend.images == 0  # the rerun of the same file resumes as before


def test_an_infinite_scale_is_refused():
    from tatar.scales import Scale

    with pytest.raises(ValueError, match="cannot read a scale from '0:inf'"):
        Scale.parse("0:inf")  # mapped every label to 0 and evaluated
    with pytest.raises(ValueError, match="must be finite"):
        Scale(1.0, float("inf"))


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("b.json", '[{"image": "a.png", "gt_score": true}]', "record 1 (a.png): score True is not"),
        ("n.json", '[{"image": null, "gt_score": 3}]', "record 1: image None is not an image path"),
        ("l.json", '[{"image": ["a.png"], "gt_score": 3}]', "record 1: image ['a.png'] is not"),
        ("short.csv", "mos,image\n3\n", "record 1: image None is not an image path"),
        ("semi.csv", "image;mos\na.png;3\n", "has no image column (one of image, "),
        ("t.jsonl", '{"image": "a.png", "gt_score": 3, "task": "vqa"}\n', "record 1 (a.png): unknown task"),
        (
            "d.jsonl",
            '{"image": "a.png", "gt_score": 3, "task": "iqa", "dataset": "mnist"}\n',
            "record 1 (a.png): no declared scale for dataset 'mnist'",
        ),
    ],
)  # fmt: skip
def test_bad_label_cells_are_named_with_file_and_record(tmp_path, name, text, problem):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / name).write_text(text)
    task = None if name.endswith("jsonl") else "iqa"
    scale = None if name == "d.jsonl" else "1:5"
    with pytest.raises(ValueError) as err:
        load_dataset(tmp_path / name, task=task, scale=scale)
    assert str(err.value).startswith(f"{tmp_path / name}: "), err.value
    assert problem in str(err.value)


def test_json_label_files_with_a_byte_order_mark_are_read(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    bom = b"\xef\xbb\xbf"
    (tmp_path / "l.json").write_bytes(bom + b'[{"image": "a.png", "gt_score": 3}]')
    (tmp_path / "l.jsonl").write_bytes(bom + b'{"image": "a.png", "gt_score": 3}\n')
    for name in ("l.json", "l.jsonl"):
        assert [s.gt for s in load_dataset(tmp_path / name, task="iqa", scale="1:5").samples] == [3]


def test_deeply_nested_json_and_yaml_are_one_error_not_a_recursion_crash(tmp_path):
    from tatar.data.prepare import prepare
    from tatar.rationales.records import load_items
    from tatar.train.config import load_config

    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "d.json").write_text(deep)
    (tmp_path / "d.jsonl").write_text(deep + "\n")
    with pytest.raises(ValueError, match=r"d\.json: the JSON is nested too deeply"):
        load_dataset(tmp_path / "d.json", task="iqa", scale="1:5")
    with pytest.raises(ValueError, match=r"d\.jsonl:1: the JSON is nested too deeply"):
        load_dataset(tmp_path / "d.jsonl", task="iqa", scale="1:5")
    with pytest.raises(ValueError, match=r"d\.jsonl:1: the JSON is nested too deeply"):
        load_items(tmp_path / "d.jsonl")  # training records
    (tmp_path / "artimuse" / "text").mkdir(parents=True)
    (tmp_path / "artimuse" / "text" / "train.jsonl").write_text(deep + "\n")
    with pytest.raises(ValueError, match=r"train\.jsonl:1: the JSON is nested too deeply"):
        prepare("artimuse", tmp_path / "artimuse", tmp_path / "out")
    (tmp_path / "c.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ValueError, match=r"c\.yaml: not valid YAML \(nested too deeply\)"):
        load_config(tmp_path / "c.yaml")


def test_files_that_are_not_utf8_are_named_with_the_line(tmp_path):
    from tatar.data.prepare import prepare
    from tatar.rationales.records import load_items
    from tatar.train.config import load_config

    root = tmp_path / "koniq"
    root.mkdir()
    labels = root / "koniq10k_scores_and_distributions.csv"
    labels.write_bytes(b"image_name,MOS_zscore\n\xff.jpg,50\n")
    code, _, stderr = cli("data", "prepare", "koniq", "--root", root, "--out", tmp_path / "o")
    assert (
        code == 2
        and stderr == f"error: {labels}:2: not UTF-8 text (byte 0xff); save the file as UTF-8\n"
    )
    (tmp_path / "ava").mkdir()
    (tmp_path / "ava" / "AVA.txt").write_bytes(b"1 \xe9 0 0 0 0 1 0 0 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match=r"AVA\.txt:1: not UTF-8 text \(byte 0xe9\)"):
        prepare("ava", tmp_path / "ava", tmp_path / "o")
    (tmp_path / "r.jsonl").write_bytes(
        b'{"task": "iqa", "image": "a.png", "gt_score": 50, "scale": "0:100"}\n{"image": "\xff"}\n'
    )
    with pytest.raises(ValueError, match=r"r\.jsonl:2: not UTF-8 text"):
        load_items(tmp_path / "r.jsonl")
    (tmp_path / "c.yaml").write_bytes(b"model: {path: tiny}\nrun_dir: \xff\n")
    with pytest.raises(ValueError, match=r"c\.yaml:2: not UTF-8 text"):
        load_config(tmp_path / "c.yaml")


def test_train_config_that_is_not_yaml_is_one_line_with_file_and_line(tmp_path):
    from tatar.train.config import load_config

    (tmp_path / "c.yaml").write_text("model:\n\tpath: tiny\n")
    with pytest.raises(ValueError) as err:
        load_config(tmp_path / "c.yaml")
    assert str(err.value) == (
        f"{tmp_path / 'c.yaml'}:2: not valid YAML (found character '\\t' that cannot start any token)"
    )


def test_csv_with_an_unclosed_quote_over_the_field_limit_is_one_error(tmp_path):
    (tmp_path / "q.csv").write_text('image,mos\n"' + "x" * 200_000 + "\n")
    with pytest.raises(ValueError, match=r"q\.csv: not a readable CSV after line 1 \(field larger"):
        load_dataset(tmp_path / "q.csv", task="iqa", scale="1:5")


def test_missing_image_that_is_a_folder_or_a_link_loop_says_so(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "loop.png").symlink_to("loop.png")
    (tmp_path / "l.csv").write_text("image,mos\nsub,3\nloop.png,4\n")
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(tmp_path / "l.csv", task="iqa", scale="1:5")
    assert "sub (a folder), loop.png (a link to nothing, or a link loop)" in str(err.value)


def _prepare_error(tmp_path, name, files: dict[str, bytes | str]) -> str:
    root = tmp_path / name
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (root / rel).write_bytes(content)
        else:
            (root / rel).write_text(content)
    code, stdout, stderr = cli("data", "prepare", name, "--root", root, "--out", tmp_path / "o")
    assert code == 2, stdout + stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith("error: "), stderr
    return stderr[len("error: ") :].strip().replace(str(root) + "/", "")


KONIQ = "koniq10k_scores_and_distributions.csv"


@pytest.mark.parametrize(
    "name, files, message",
    [
        (
            "koniq",
            {KONIQ: "image_name,MOS_zscore\na.jpg,50\n", "koniq10k_distributions_sets.csv": "name,set\na.jpg,test\n"},
            "koniq10k_distributions_sets.csv:2: no column image_name (columns: name, set)",
        ),
        ("kadid", {"dmos.csv": "image,ref,dmos\na.png,r.png,3\n"}, "dmos.csv:2: no column dist_img (columns: image, ref, dmos)"),
        ("koniq", {KONIQ: "image_name,MOS_zscore,MOS\na.jpg,50,abc\n"}, f"{KONIQ}:2: MOS: not a number: 'abc'"),
        ("artimuse", {"text/train.jsonl": "[1, 2]\n"}, "text/train.jsonl:1: expected a JSON object, got list"),
        ("artimuse", {"text/train.jsonl": '{"image": null, "score": 5}\n'}, "text/train.jsonl:1: the image name is None; expected a file name"),
        ("artimuse", {"text/train.jsonl": '{"image": "a.jpg", "score": true}\n'}, "text/train.jsonl:1: not a number: True"),
        ("pipal", {"Train_Label/x.txt": ",1500\n"}, "Train_Label/x.txt:1: expected 'image,elo', got ',1500'"),
        ("ava", {"AVA.txt": "1 7 0 0 0 0 1e308 0 0 0 0 1e308 0 0\n"}, "AVA.txt:1: image 7: vote counts must be non-negative numbers"),
        ("ava", {"AVA.txt": "1 7 0 0 0 0 3 0 0 0 0 -1 0 0\n"}, "AVA.txt:1: image 7: vote counts must be non-negative numbers"),
        (
            "livec",
            {"Data/AllImages_release.mat": b"garbage", "Data/AllMOS_release.mat": b"garbage"},
            "Data/AllImages_release.mat: not a readable MATLAB file (",
        ),
    ],
)  # fmt: skip
def test_prepare_names_the_file_line_and_problem_of_a_bad_label(tmp_path, name, files, message):
    assert _prepare_error(tmp_path, name, files).startswith(message)


def test_prepare_refuses_an_image_listed_twice(tmp_path):
    """Both records got the same id: the rationale step refused the file only later."""
    message = _prepare_error(
        tmp_path, "koniq", {KONIQ: "image_name,MOS_zscore\na.jpg,50\na.jpg,60\n"}
    )
    assert message == (
        f"{KONIQ}:3: image 1024x768/a.jpg is listed a second time (first: {KONIQ}:2); "
        "give each image one label"
    )
    files = {f"labels/merge/{s}.csv": "image,score\na.jpg,5\n" for s in ("train", "test")}
    message = _prepare_error(tmp_path, "tad66k", files)
    assert message.startswith("labels/merge/test.csv:2: image images/a.jpg is listed a second")


def test_a_float_tiff_is_read_from_its_range_not_cast_to_bytes(tmp_path):
    from tatar.generation import load_image

    ramp = (np.arange(400).reshape(20, 20) / 399).astype(np.float32)  # 0 .. 1
    Image.fromarray(ramp).save(tmp_path / "unit.tif")
    Image.fromarray(ramp * 255).save(tmp_path / "bytes.tif")
    assert Image.open(tmp_path / "unit.tif").mode == "F"
    for name in ("unit.tif", "bytes.tif"):
        rgb = np.asarray(load_image(tmp_path / name))
        # PIL's convert("RGB") cast 0-1 to 0/1: a black picture.
        assert rgb.shape == (20, 20, 3), name
        assert np.abs(rgb[:, :, 1].astype(int) - np.round(ramp * 255)).max() <= 1, name
    Image.fromarray(ramp * 4000).save(tmp_path / "wide.tif")
    ramp[3, 3] = np.nan
    Image.fromarray(ramp).save(tmp_path / "nan.tif")
    for name, problem in (("wide.tif", "values from 0 to 4000"), ("nan.tif", "NaN")):
        with pytest.raises(ValueError) as info:
            load_image(tmp_path / name)
        assert str(info.value).startswith(f"cannot read image {tmp_path / name}: "), info.value
        assert problem in str(info.value)


@pytest.mark.parametrize(
    "name,text,problem",
    [
        # pyarrow's KeyError traceback: 'Field "path" exists 2 times in schema'
        ("m.csv", "path,path\na.png,b.png\n", "m.csv: the column 'path' is given twice"),
        # which one was meant? the first candidate found won silently
        ("m.csv", "Path,path\na.png,b.png\n", "m.csv: the column 'Path' is given twice (as"),
        # the last value won silently: a.png was never scored
        (
            "m.jsonl",
            '{"path": "a.png"}\n{"path": "b.png", "path": "c.png"}\n',
            "m.jsonl:2: the key 'path' is given twice in one record",
        ),
    ],
)
def test_a_manifest_naming_a_column_twice_is_one_error(
    tmp_path, tiny_model_dir, name, text, problem
):
    (tmp_path / name).write_text(text)
    code, stdout, stderr = cli(
        "score-collection", tmp_path / name, "--model", tiny_model_dir, "--out", tmp_path / "o"
    )
    assert code == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert problem in stderr and "Traceback" not in stdout + stderr
    assert not (tmp_path / "o").exists()
    # A repeated column that is neither the path nor the id column does not matter.
    (tmp_path / "n.csv").write_text("path,note,Note\na.png,x,y\n")
    from tatar.collection import load_source

    assert load_source(tmp_path / "n.csv").column("path").to_pylist() == [str(tmp_path / "a.png")]


@pytest.mark.parametrize(
    "name, text, problem",
    [
        # {"<image>": score} with an image twice: the first label was dropped without a word
        ("l.json", '{"a.png": 1, "b.png": 2, "a.png": 5}', "l.json: the key 'a.png' is given twice"),
        # a record giving its score twice: the last one was used
        ("l.jsonl", '{"image": "a.png", "mos": 1, "mos": 5}\n', "l.jsonl:1: the key 'mos' is given"),
        # a CSV column named twice: DictReader kept the last column's values
        ("l.csv", "image,mos,mos\na.png,1,5\nb.png,2,4\n", "l.csv:1: the column 'mos' is given twice"),
    ],
)  # fmt: skip
def test_a_label_file_giving_a_key_or_column_twice_is_refused(
    tmp_path, tiny_model_dir, name, text, problem
):
    for image in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / image)
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match="given twice") as err:
        load_dataset(tmp_path / name, task="iqa", scale="1:5")
    assert str(err.value).startswith(str(tmp_path)) and problem in str(err.value), err.value
    code, stdout, stderr = cli(
        "eval", "--model", tiny_model_dir, "--dataset", tmp_path / name, "--task", "iqa",
        "--scale", "1:5", "--out", tmp_path / "out",
    )  # fmt: skip
    assert code == 2 and problem in stderr and stderr.count("\n") == 1, stderr
    # Empty header cells (a spreadsheet's trailing commas) are not names given twice.
    (tmp_path / "t.csv").write_text("image,mos,,\na.png,1,,\nb.png,2,,\n")
    assert len(load_dataset(tmp_path / "t.csv", task="iqa", scale="1:5").samples) == 2


def test_a_one_column_manifest_with_an_unclosed_quote_is_one_error(tmp_path, tiny_model_dir):
    rows = [f"img{i}.png" for i in range(200)]
    rows[9] = '"' + rows[9]  # every later row ran into this one path: 10 items, not 200
    (tmp_path / "m.csv").write_text("path\n" + "\n".join(rows) + "\n")
    code, stdout, stderr = cli(
        "score-collection", tmp_path / "m.csv", "--model", tiny_model_dir, "--out", tmp_path / "o"
    )
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"error: {tmp_path / 'm.csv'}:11: the path 'img9.png' runs on over ")
    assert 'unclosed quote "' in stderr
    assert not (tmp_path / "o").exists()
