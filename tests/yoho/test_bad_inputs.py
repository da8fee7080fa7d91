"""Bad input to YOHO, as a careless or new user gives it: every case ends in a one-line error
naming the file and the field (CLI exit code 2, or a JSON 4xx from the web tool), never a
traceback, a hang or a silently wrong result. The table in docs/bad_inputs.md lists them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from yoho.annotation import (
    Annotation,
    Circle,
    Roi,
    annotation_from_dict,
    labelme_roi,
    load_annotation,
    validate_annotation,
)
from yoho.choices import PROFILE_NAMES
from yoho.cli import app
from yoho.io import read_image, read_mask, write_png
from yoho.render.bank import radius_ladder
from yoho.synthetic import synthetic_endoscopy

cli = CliRunner()
SQUARE = [[20, 20], [80, 20], [80, 80], [20, 80]]


def good() -> dict:
    return {
        "format": "yoho-annotation",
        "version": 1,
        "image_size": {"width": 100, "height": 100},
        "roi": {"polygons": [SQUARE], "holes": []},
        "complement": False,
        "lesion_circles": [{"x": 50, "y": 50, "r": 10}],
        "normal_circles": [{"x": 90, "y": 90, "r": 5}],
        "r_min": 4,
        "r_max": 16,
    }


def one_line_error(result, *fragments: str) -> str:
    """The CLI failed with exit code 2 and a single `error:` line holding every fragment."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    image, gt = synthetic_endoscopy(size=96, seed=8)
    write_png(root / "img.png", image)
    write_png(root / "gt.png", gt)
    return root


# -- annotation numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where,token,field",
    [
        ("r_max", "Infinity", "r_max is Infinity"),
        ("r_min", "NaN", "r_min is NaN"),
        ("r_max", "1e999", "r_max is Infinity"),
        ("circle", "-Infinity", r"lesion_circles\[0\].r is -Infinity"),
    ],
)
def test_json_infinity_and_nan_are_refused_naming_the_field(tmp_path, where, token, field):
    data = good()
    if where == "circle":
        data["lesion_circles"][0]["r"] = "@@"
    else:
        data[where] = "@@"
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data).replace('"@@"', token))
    with pytest.raises(ValueError, match="a.json: " + field):
        load_annotation(path)


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("r_max", 1e9, r"r_max must lie in \(0, 100\]"),
        ("r_min", 0, r"r_min must lie in \(0, 100\]"),
        ("r_min", [20], "r_min must be a number"),
        ("r_max", "64", "r_max must be a number"),
        ("r_min", True, "r_min must be a number"),
        ("image_size", {"width": 10**9, "height": 100}, "positive integers"),
        ("image_size", {"width": True, "height": 100}, "positive integers"),
        ("roi", {"polygons": [[[0, 0], [1e9, 0], [0, 50]]]}, "polygon points must lie within"),
        ("roi", {"polygons": [SQUARE], "holes": 5}, "roi.holes must be a list"),
        ("lesion_circles", [{"x": "50", "y": 50, "r": 10}], r"lesion_circles\[0\].x: must be"),
        ("complement", "false", "complement must be true or false"),
        ("complement", 0, "complement must be true or false"),
    ],
)
def test_annotation_fields_are_bounded_and_typed(key, value, message):
    data = good()
    data[key] = value
    with pytest.raises(ValueError, match="x.json: .*" + message):
        annotation_from_dict(data, source="x.json")


def test_deeply_nested_annotation_json_is_one_error_not_a_recursion_crash(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="deep.json: the JSON is nested too deeply"):
        load_annotation(path)
    data = good()
    data["protocol"] = json.loads("[" * 200 + "]" * 200)
    with pytest.raises(ValueError, match="nested too deeply"):
        annotation_from_dict(data, source="x.json")


def test_non_finite_radius_set_in_code_is_refused_by_validation():
    ann = Annotation(
        width=100,
        height=100,
        roi=Roi(polygons=[np.array(SQUARE, float)]),
        lesion_circles=[Circle(50, 50, 10)],
        normal_circles=[Circle(90, 90, 5)],
        r_min=4,
        r_max=float("inf"),
    )
    with pytest.raises(ValueError, match="r_max must be finite"):
        validate_annotation(ann)


def test_radius_ladder_never_loops_for_ever():
    with pytest.raises(ValueError, match="must be finite"):
        radius_ladder(10, 4, float("inf"), 4, 1, 4)
    with pytest.raises(ValueError, match="rungs"):
        radius_ladder(10, 4, 1e9, 4, 1, 4)
    assert radius_ladder(16, 16, 64, 16, 4, 4)[0] == 16  # the normal case is unchanged


def test_annotation_with_huge_r_max_is_refused_by_the_cli_before_rendering(files, tmp_path):
    data = good()
    data["image_size"] = {"width": 96, "height": 96}
    data["r_max"] = 1e9
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    result = cli.invoke(
        app, ["render-preview", str(files / "img.png"), "-a", str(path), "-o", str(tmp_path)]
    )
    one_line_error(result, "a.json", "r_max must lie in (0, 96]")


def test_r_min_as_a_list_is_one_line_in_the_cli(files, tmp_path):
    data = good()
    data["image_size"] = {"width": 96, "height": 96}
    data["r_min"] = [20]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    result = cli.invoke(
        app, ["segment", str(files / "img.png"), "-a", str(path), "-o", str(tmp_path / "o")]
    )
    one_line_error(result, "a.json", "r_min must be a number")


# -- files -----------------------------------------------------------------------------------------


def test_zero_byte_image_and_mask_are_named(tmp_path, files):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png: image file is empty"):
        read_image(empty)
    with pytest.raises(ValueError, match="empty.png: mask file is empty"):
        read_mask(empty)
    result = cli.invoke(
        app, ["simulate-annotation", str(empty), "--gt", str(files / "gt.png"), "-o", "x.json"]
    )
    one_line_error(result, "empty.png: image file is empty (0 bytes)")


def _labelme(tmp_path, **changes) -> str:
    data = {
        "shapes": [{"label": "roi", "points": SQUARE, "shape_type": "polygon"}],
        "imageHeight": 100,
        "imageWidth": 100,
    }
    data.update(changes)
    path = tmp_path / "lm.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"shapes": {"a": 1}}, "'shapes' must be a list"),
        ({"shapes": ["roi"]}, "shapes[0]: a shape must be an object"),
        (
            {"shapes": [{"shape_type": "rectangle", "points": [[1, 2]]}]},
            "shapes[0]: a rectangle needs two [x, y] corners",
        ),
        ({"imageWidth": "100"}, "lacks imageHeight/imageWidth"),
        ({"shapes": [{"points": [[0, 0], [5000, 0], [0, 50]]}]}, "polygon points must lie"),
    ],
)
def test_bad_labelme_files_are_named(tmp_path, changes, message):
    path = _labelme(tmp_path, **changes)
    with pytest.raises(ValueError) as info:
        labelme_roi(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    result = cli.invoke(app, ["import-labelme", path, "-o", str(tmp_path / "o.json")])
    one_line_error(result, path, message)


def test_labelme_circle_errors_name_the_labelme_file(tmp_path):
    path = _labelme(tmp_path)
    out = tmp_path / "out.json"
    result = cli.invoke(app, ["import-labelme", path, "-o", str(out), "--lesion", "95,50,3"])
    line = one_line_error(result, "lm.json", "a lesion circle must lie inside the ROI")
    assert "out.json" not in line and not out.exists()


def test_a_circle_of_nan_or_inf_is_named(tmp_path):
    # float() reads "nan" and "inf": the error was "cannot convert float NaN to integer".
    path = _labelme(tmp_path)
    for circle in ("nan,50,3", "50,inf,3"):
        result = cli.invoke(
            app, ["import-labelme", path, "-o", str(tmp_path / "o.json"), "--lesion", circle]
        )
        one_line_error(result, f"lesion circle '{circle}': expected X,Y,R (three finite numbers)")


def test_all_255_mask_says_there_is_no_normal_tissue(files, tmp_path):
    full = tmp_path / "full.png"
    write_png(full, np.ones((96, 96), bool))
    result = cli.invoke(
        app,
        ["simulate-annotation", str(files / "img.png"), "--gt", str(full), "-o", "a.json"],
    )
    one_line_error(result, "covers the whole image")


def test_annotation_json_giving_a_key_twice_is_refused(files, tmp_path):
    # Added by hand: a second "lesion_circles" list; json kept only the last one, silently.
    text = json.dumps(good())[:-1] + ', "lesion_circles": [{"x": 30, "y": 30, "r": 5}]}'
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_annotation(path)
    assert str(info.value) == (
        f"{path}: the key 'lesion_circles' is given twice in one object (only the last would "
        "count); give each key once"
    )
    labelme = _labelme(tmp_path)
    Path(labelme).write_text(Path(labelme).read_text()[:-1] + ', "imageHeight": 50}')
    result = cli.invoke(app, ["import-labelme", labelme, "-o", str(tmp_path / "o.json")])
    one_line_error(result, "lm.json", "'imageHeight' is given twice")


def test_roi_mask_of_another_size_names_the_annotation_and_the_mask(tmp_path):
    write_png(tmp_path / "roi.png", np.ones((50, 60), bool))
    data = dict(good(), roi={"mask": "roi.png"})
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        load_annotation(tmp_path / "a.json")
    # It said only "ROI mask is 60x50, image is 100x100", naming neither file.
    assert str(info.value) == (
        f"{tmp_path / 'a.json'}: the ROI mask {tmp_path / 'roi.png'} is 60x50 but image_size "
        "is 100x100"
    )


@pytest.mark.parametrize("in_a_round", [False, True])
def test_a_normal_circle_on_a_lesion_circle_is_refused(tmp_path, in_a_round):
    data = good()
    on_it = {"x": 52, "y": 50, "r": 4}  # its centre inside lesion_circles[0] (50, 50, r 10)
    if in_a_round:  # the two circles clicked in the same correction round
        lesion = {"x": 50, "y": 50, "r": 10}
        data["rounds"] = [{"lesion_circles": [lesion], "normal_circles": [on_it]}]
        name = "rounds[0].normal_circles[0]"
    else:
        data["normal_circles"].append(on_it)
        name = "normal_circles[1]"
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        load_annotation(path, (100, 100, 3))
    lesion_name = "rounds[0].lesion_circles[0]" if in_a_round else "lesion_circles[0]"
    assert str(info.value) == (
        f"{path}: {name} (x=52, y=50, r=4) lies on {lesion_name} (x=50, y=50, r=10): the "
        "same tissue is marked normal and lesion; move or delete one of them"
    )
    # A round's normal circle on a lesion circle of the first clicks is a correction: allowed.
    data = dict(good(), rounds=[{"lesion_circles": [], "normal_circles": [on_it]}])
    path.write_text(json.dumps(data))
    load_annotation(path, (100, 100, 3))
    # Two circles that only touch at their edges stay allowed.
    data = dict(good(), normal_circles=[{"x": 50, "y": 64, "r": 5}, {"x": 90, "y": 90, "r": 5}])
    path.write_text(json.dumps(data))
    load_annotation(path, (100, 100, 3))


def test_a_16_bit_image_is_scaled_from_its_range_not_cut_to_its_top_8_bits(tmp_path):
    image, _ = synthetic_endoscopy(size=96, seed=8)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.uint16)
    # 12-bit values in a 16-bit PNG, as medical software writes them: read as 0-15 before.
    cv2.imwrite(str(tmp_path / "g12.png"), grey * 16)
    cv2.imwrite(str(tmp_path / "rgb12.png"), image[:, :, ::-1].astype(np.uint16) * 16)
    for name in ("g12.png", "rgb12.png"):
        read = read_image(tmp_path / name)
        assert read.dtype == np.uint8 and read.shape == (96, 96, 3)
        assert read.min() == 0 and read.max() == 255
    grey_read = read_image(tmp_path / "g12.png")[:, :, 0].astype(int)
    expected = (grey - grey.min()) * 255 / (grey.max() - grey.min())
    assert np.abs(grey_read - expected).max() <= 1
    # The web tool decodes an upload of the same file to the same pixels.
    from yoho.web.images import decode_image

    upload = decode_image((tmp_path / "g12.png").read_bytes(), 10**6)
    assert np.array_equal(upload, read_image(tmp_path / "g12.png"))


def test_a_mask_with_values_but_none_above_the_threshold_is_named(files, tmp_path):
    _, truth = synthetic_endoscopy(size=96, seed=8)
    cv2.imwrite(str(tmp_path / "labels.png"), truth.astype(np.uint8))  # a 0/1 label map
    cv2.imwrite(str(tmp_path / "labels16.png"), truth.astype(np.uint16))
    cv2.imwrite(str(tmp_path / "full16.png"), truth.astype(np.uint16) * 65535)
    for name in ("labels.png", "labels16.png"):
        # It read as an empty mask ("the ground-truth mask is empty", no file named).
        with pytest.raises(ValueError) as info:
            read_mask(tmp_path / name)
        assert str(info.value).startswith(
            f"{tmp_path / name}: no pixel of the mask is above 127 (its largest value is 1"
        )
        assert np.array_equal(read_mask(tmp_path / name, threshold=0), truth)
    assert np.array_equal(read_mask(tmp_path / "full16.png"), truth)
    image = str(files / "img.png")
    result = cli.invoke(
        app, ["simulate-annotation", image, "--gt", str(tmp_path / "labels.png"), "-o", "a.json"]
    )
    one_line_error(result, "labels.png: no pixel of the mask is above 127", "--mask-threshold 0")
    write_png(tmp_path / "black.png", np.zeros((96, 96), bool))
    result = cli.invoke(
        app, ["simulate-annotation", image, "--gt", str(tmp_path / "black.png"), "-o", "a.json"]
    )
    one_line_error(result, "black.png: the ground-truth mask is empty (every pixel 0)")


def test_good_annotation_still_loads(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(good()))
    ann = load_annotation(path, (100, 100, 3))
    assert ann.r_max == 16 and ann.complement is False
    again = copy.deepcopy(good())
    again["complement"] = True
    again["lesion_circles"], again["normal_circles"] = (
        [{"x": 90, "y": 90, "r": 5}],
        [{"x": 50, "y": 50, "r": 10}],
    )
    assert annotation_from_dict(again).complement is True


# -- large images ----------------------------------------------------------------------------------


def test_simulated_physician_works_on_a_downscaled_copy_of_a_large_image():
    from yoho.physician import simulate_annotation

    image, gt = synthetic_endoscopy(size=96, seed=8)
    big_image = np.kron(image, np.ones((5, 5, 1), np.uint8))  # 480x480, same picture
    big_gt = np.kron(gt, np.ones((5, 5), bool))
    ann = simulate_annotation(big_image, big_gt, max_side=96)
    assert (ann.width, ann.height) == (480, 480)
    assert ann.protocol["working_scale"] == pytest.approx(0.2)
    validate_annotation(ann, big_image.shape)
    direct = simulate_annotation(big_image, big_gt)  # below the limit: the full-size protocol
    assert "working_scale" not in direct.protocol
    roi_small, roi_full = ann.roi_mask(), direct.roi_mask()
    # The same protocol, up to the margin's 8 px floor counted in working pixels.
    assert (roi_small & roi_full).sum() / (roi_small | roi_full).sum() > 0.85
    assert (big_gt & ~roi_small).sum() < 0.01 * big_gt.sum()  # the ROI still holds the lesion


def test_simulate_annotation_cli_says_when_it_downscales(files, tmp_path, monkeypatch):
    monkeypatch.setattr("yoho.physician.MAX_SIDE", 64)
    out = tmp_path / "a.json"
    result = cli.invoke(
        app,
        [
            "simulate-annotation",
            str(files / "img.png"),
            "--gt",
            str(files / "gt.png"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "annotating a copy scaled to 64 px" in result.output
    assert json.loads(out.read_text())["protocol"]["working_size"] == [64, 64]


@pytest.mark.parametrize("margin", ["15", "100", "1e9", "inf", "nan"])
def test_simulate_annotation_refuses_a_margin_factor_out_of_range(files, tmp_path, margin):
    # 15 (meant as 15 %) made the ROI the whole image, 100 ran for minutes on a 100x100 image,
    # 1000 crashed OpenCV, 1e9 and inf were tracebacks and nan was taken as 0.
    out = tmp_path / "a.json"
    result = cli.invoke(
        app,
        ["simulate-annotation", str(files / "img.png"), "--gt", str(files / "gt.png"),
         "-o", str(out), "--margin-factor", margin],
    )  # fmt: skip
    one_line_error(result, "--margin-factor must lie in [0, 5]", "0.15 is 15 %")
    assert not out.exists()


def test_simulated_physician_with_a_margin_wider_than_the_image_is_quick():
    import time

    from yoho.physician import OracleOptions, simulate_annotation

    image, gt = synthetic_endoscopy(size=96, seed=8)
    with pytest.raises(ValueError, match="margin factor must lie in"):
        simulate_annotation(image, gt, OracleOptions(margin_factor=float("nan")))
    start = time.perf_counter()
    ann = simulate_annotation(image, gt, OracleOptions(margin_factor=5))
    assert time.perf_counter() - start < 5
    assert ann.roi_mask().all()  # a margin past the image's diagonal: the ROI is all of it


# -- evaluation: locked output folder, damaged results, datasets --------------------------------


def make_dataset(root, n=2, size=96, bom=False):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    lines = ["image,mask"]
    for i in range(n):
        image, mask = synthetic_endoscopy(size=size, seed=10 + i)
        write_png(root / "images" / f"img{i}.png", image)
        write_png(root / "masks" / f"img{i}.png", mask)
        lines.append(f"images/img{i}.png,masks/img{i}.png")
    text = "\n".join(lines) + "\n"
    (root / "labels.csv").write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return root


def evaluate(root, out, *extra):
    args = ["evaluate", "--data", str(root), "--out", str(out), "--methods", "roi", *extra]
    return cli.invoke(app, [str(a) for a in args])


def test_labels_csv_with_a_byte_order_mark_is_read(tmp_path):
    from yoho.evaluation.dataset import load_dataset

    root = make_dataset(tmp_path / "d", bom=True)
    assert [item.name for item in load_dataset(root)] == ["img0", "img1"]


def test_a_second_evaluate_into_a_locked_folder_stops_with_one_line(tmp_path):
    from yoho.lock import folder_lock

    root = make_dataset(tmp_path / "d")
    out = tmp_path / "out"
    with folder_lock(out, "yoho evaluate (the first run)"):
        result = evaluate(root, out)
        one_line_error(result, str(out), "another run is writing to this folder", "first run")
        assert not (out / "results.csv").exists()
        sweep = cli.invoke(
            app, ["sweep", "--data", str(root), "--out", str(out), "--methods", "roi"]
        )
        one_line_error(sweep, "another run is writing to this folder")
    result = evaluate(root, out)  # released: the next run goes ahead
    assert result.exit_code == 0, result.output


def test_the_lock_is_free_again_after_a_failed_run(tmp_path):
    out = tmp_path / "out"
    result = evaluate(tmp_path / "missing", out)
    assert result.exit_code == 2
    from yoho.lock import folder_lock

    with folder_lock(out):
        pass


def test_damaged_result_rows_are_named_and_recomputed(tmp_path):
    from yoho.evaluation.store import ResultStore

    root = make_dataset(tmp_path / "d", n=3)
    out = tmp_path / "out"
    assert evaluate(root, out).exit_code == 0
    csv_path = out / "results.csv"
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 4
    header = lines[0].split(",")
    dice = header.index("dice")
    lines[1] = lines[1][: len(lines[1]) // 3]  # cut mid-line (cells missing)
    cells = lines[2].split(",")
    cells[dice] = "abc"  # not a number
    lines[2] = ",".join(cells)
    cells = lines[3].split(",")
    cells[dice] = ""  # a finished row without its Dice
    lines[3] = ",".join(cells)
    csv_path.write_text("\n".join(lines) + "\n")

    store = ResultStore(csv_path)
    assert store.rows == {}
    assert [w.split(": ")[0] for w in store.warnings] == [f"{csv_path}:{n}" for n in (2, 3, 4)]
    assert "cut short" in store.warnings[0] and "'abc' is not a number" in store.warnings[1]
    assert "without its Dice" in store.warnings[2]

    result = evaluate(root, out)
    assert result.exit_code == 0, result.output
    assert "0 finished before, 3 to run" in result.output
    assert f"warning: {csv_path}:2: the row is cut short" in result.output
    assert len(ResultStore(csv_path).rows) == 3 and not ResultStore(csv_path).warnings


# -- output paths are checked before any work ------------------------------------------------------


def test_segment_into_an_existing_file_fails_before_training(files, tmp_path, monkeypatch):
    import yoho.pipeline

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(yoho.pipeline, "segment", no_training)
    ann = tmp_path / "a.json"
    assert (
        cli.invoke(
            app,
            ["simulate-annotation", str(files / "img.png"), "--gt", str(files / "gt.png"),
             "-o", str(ann)],
        ).exit_code
        == 0
    )  # fmt: skip
    target = tmp_path / "result.png"
    target.write_text("x")
    args = ["segment", str(files / "img.png"), "-a", str(ann), "-p", "tiny", "-o"]
    one_line_error(cli.invoke(app, [*args, str(target)]), "result.png: exists and is not a folder")
    one_line_error(cli.invoke(app, [*args, str(target / "sub")]), "a part of the path is a file")


@pytest.mark.parametrize("command", ["simulate-annotation", "import-labelme"])
def test_annotation_output_naming_a_folder_or_a_path_under_a_file(files, tmp_path, command):
    if command == "simulate-annotation":
        args = ["simulate-annotation", str(files / "img.png"), "--gt", str(files / "gt.png")]
    else:
        args = ["import-labelme", _labelme(tmp_path), "--lesion", "50,50,5"]
    one_line_error(cli.invoke(app, [*args, "-o", str(tmp_path)]), "is a folder")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(
        cli.invoke(app, [*args, "-o", str(blocker / "a.json")]), "a part of the path is a file"
    )


def test_evaluate_out_naming_a_file(tmp_path):
    root = make_dataset(tmp_path / "d", n=1)
    target = tmp_path / "out.txt"
    target.write_text("x")
    one_line_error(evaluate(root, target), "out.txt: exists and is not a folder")


def test_cuda_without_a_gpu_is_one_line_before_any_work(files, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    ann = tmp_path / "a.json"
    cli.invoke(
        app,
        ["simulate-annotation", str(files / "img.png"), "--gt", str(files / "gt.png"),
         "-o", str(ann)],
    )  # fmt: skip
    result = cli.invoke(
        app,
        ["segment", str(files / "img.png"), "-a", str(ann), "-o", str(tmp_path / "o"),
         "--device", "cuda"],
    )  # fmt: skip
    one_line_error(result, "--device cuda: ", "use --device cpu")
    root = make_dataset(tmp_path / "d", n=1)
    result = cli.invoke(
        app,
        ["evaluate", "--data", str(root), "--out", str(tmp_path / "e"), "--methods", "yoho",
         "--device", "cuda"],
    )  # fmt: skip
    one_line_error(result, "--device cuda: ")


# -- the command line: choices, -h, progress in logs ----------------------------------------------


PROFILES_SHOWN = "|".join(PROFILE_NAMES)


@pytest.mark.parametrize(
    "command,option,values",
    [
        ("segment", "--device", "auto|cpu|cuda|mps"),
        ("segment", "--profile", PROFILES_SHOWN),
        ("render-preview", "--profile", PROFILES_SHOWN),
        ("evaluate", "--engine", "local|ray"),
        ("evaluate", "--device", "auto|cpu|cuda|mps"),
        ("sweep", "--profile", PROFILES_SHOWN),
        ("serve", "--device", "auto|cpu|cuda|mps"),
    ],
)
def test_fixed_choices_are_listed_in_help_and_enforced(command, option, values):
    # Wide enough that rich does not wrap the longest list (the profile names) in its column.
    result = cli.invoke(app, [command, "-h"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert option in result.output and values in result.output, result.output
    wrong = cli.invoke(app, [command, option, "nonsense"])
    assert wrong.exit_code == 2 and "is not one of" in wrong.output


def test_profile_choices_match_the_registered_profiles():
    import subprocess
    import sys

    # A fresh interpreter: other tests register profiles of their own in this one.
    code = "from yoho.profiles import profile_names; print(','.join(profile_names()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert sorted(PROFILE_NAMES) == out.stdout.strip().split(",")


def test_short_help_option_works_everywhere():
    for args in ([], ["segment"], ["evaluate"], ["serve"]):
        result = cli.invoke(app, [*args, "-h"])
        assert result.exit_code == 0 and "Usage" in result.output, (args, result.output)


def test_plain_progress_lines_every_ten_percent_or_thirty_seconds():
    from yoho.console import PlainProgress

    lines: list[str] = []
    now = [0.0]
    bar = PlainProgress("train", 100, "steps", echo=lines.append, clock=lambda: now[0])
    for step in range(1, 101):
        now[0] += 0.125  # exact in binary: step 10 is at 1.25 s, not 0.999… s
        bar.update(step, text=f"loss {1 / step:.2f}")
    assert len(lines) == 10 and lines[0].startswith("train: 10/100 steps (10%), 0:00:01 elapsed")
    assert lines[-1].startswith("train: 100/100 steps (100%)")
    lines.clear()
    slow = PlainProgress("evaluate", 1000, echo=lines.append, clock=lambda: now[0])
    for item in range(1, 4):
        now[0] += 31
        slow.update(item)
    assert len(lines) == 3 and "about" in lines[0]  # a line every 30 s, with the time left


def test_evaluate_prints_plain_progress_lines_when_not_on_a_terminal(tmp_path):
    root = make_dataset(tmp_path / "d", n=2)
    result = evaluate(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    progress = [line for line in result.output.splitlines() if line.startswith("evaluate: ")]
    assert progress[0].startswith("evaluate: 1/2 (50%)") and "roi=" in progress[0]
    assert progress[-1].startswith("evaluate: 2/2 (100%)")


def test_a_mask_drawn_in_the_alpha_channel_is_read_from_it(tmp_path):
    _, truth = synthetic_endoscopy(size=96, seed=8)
    alpha = truth.astype(np.uint8) * 255
    # Black strokes on a transparent layer: the grey of the colour read as an empty mask.
    cv2.imwrite(str(tmp_path / "black.png"), np.dstack([np.zeros((96, 96, 3), np.uint8), alpha]))
    # A red drawing whose transparent pixels are stored black (the grey was 76: "no pixel above").
    red = np.zeros((96, 96, 4), np.uint8)
    red[truth] = (0, 0, 255, 255)
    cv2.imwrite(str(tmp_path / "red.png"), red)
    # White everywhere, transparent outside the lesion: the grey read as all lesion.
    cv2.imwrite(
        str(tmp_path / "white.png"), np.dstack([np.full((96, 96, 3), 255, np.uint8), alpha])
    )
    for name in ("black.png", "red.png", "white.png"):
        assert np.array_equal(read_mask(tmp_path / name), truth), name
    # An opaque black-and-white mask with an alpha channel is still read from its grey, and so
    # is a white lesion on black whose outside is transparent (the drawn pixels have two colours).
    opaque = np.dstack([np.repeat(alpha[..., None], 3, 2), np.full((96, 96), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "opaque.png"), opaque)
    padded = opaque.copy()
    padded[:10, :, 3] = 0
    cv2.imwrite(str(tmp_path / "padded.png"), padded)
    for name in ("opaque.png", "padded.png"):
        assert np.array_equal(read_mask(tmp_path / name), truth), name
