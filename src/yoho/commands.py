"""The `yoho` sub-commands (registered on the app in `yoho.cli`)."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path

import typer

from yoho.choices import DEFAULT_PROFILE, Device, ProfileName

__all__ = ["register"]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _clean_errors(func):
    """Bad input ends in a one-line message and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            _fail(str(exc))

    return wrapper


def _circle(text: str, what: str):
    from yoho.annotation import Circle

    try:
        x, y, r = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{what} circle {text!r}: expected X,Y,R (three numbers)") from None
    if not all(math.isfinite(v) for v in (x, y, r)):  # float() reads "nan" and "inf"
        raise ValueError(f"{what} circle {text!r}: expected X,Y,R (three finite numbers)")
    return Circle(x, y, r)


def _say_leak_check(image: Path, summary: dict) -> None:
    """Tell the user when the mask is GrabCut's from the circles rather than the walk's."""
    check = summary.get("leak_check")
    if check and check["fired"] and check.get("complement"):
        typer.echo(
            f"{image.name}: the ROI marks normal tissue (complement); the mask is GrabCut's from "
            "the circles, not the walk's"
        )
    elif check and check["fired"]:
        typer.echo(
            f"{image.name}: the walk spread to {check['area_ratio']:.1f}x the area GrabCut finds "
            f"from the circles alone (limit {check['limit']:g}x); the mask is GrabCut's"
        )


@_clean_errors
def segment_cmd(
    image: Path = typer.Argument(..., help="Image to segment (any format OpenCV reads)."),
    annotation: Path = typer.Option(..., "--annotation", "-a", help="Annotation JSON."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    profile: ProfileName = typer.Option(
        DEFAULT_PROFILE, "--profile", "-p", help="Training profile."
    ),
    gt: Path | None = typer.Option(None, "--gt", help="Ground-truth mask: report Dice."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    device: Device = typer.Option("auto", "--device", help="Torch device (auto: the best here)."),
    weights: Path | None = typer.Option(
        None, "--weights", help="Local ImageNet state dict for the ResNet encoder."
    ),
    imagenet_download: bool = typer.Option(
        False, "--imagenet-download", help="Let torchvision download ImageNet encoder weights."
    ),
    roi_clip: bool | None = typer.Option(
        None, "--roi-clip/--no-roi-clip", help="Clip the prediction to the ROI (profile default)."
    ),
    save_model: bool = typer.Option(True, "--save-model/--no-save-model", help="Write model.pt."),
    force: bool = typer.Option(False, "--force", help="Recompute even if DIR holds this result."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (default: the cores this process may use)."
    ),
    reproducible: bool = typer.Option(
        False,
        "--reproducible",
        help="The same mask on any thread count (CPU math ~1.9x slower; docs/yoho.md).",
    ),
) -> None:
    """Train a network on IMAGE alone and write its lesion mask, overlay, exports and summary.

    Research use only, not a medical device.
    """
    from yoho.threads import set_threads

    set_threads(threads)
    from yoho.batch import SegmentRequest, segment_one
    from yoho.console import training_bar
    from yoho.device import check_device
    from yoho.profiles import get_profile
    from yoho.train import resolve_device

    if weights is not None and imagenet_download:
        raise ValueError("give either --weights or --imagenet-download, not both")
    prof = get_profile(profile)
    if reproducible:
        prof = dataclasses.replace(prof, thread_invariant=True)
    check_device(device)
    if prof.total_steps * prof.batch_size * prof.input_size**2 > 1e9 and (
        resolve_device(device).type == "cpu"
    ):
        typer.echo(
            f"note: profile {prof.name!r} is meant for a GPU; on this CPU it takes hours "
            f"(the default {DEFAULT_PROFILE!r} takes about a minute)",
            err=True,
        )
    request = SegmentRequest(
        image=image,
        annotation=annotation,
        out=out,
        profile=prof,
        seed=seed,
        device=device,
        weights="imagenet" if imagenet_download else (str(weights) if weights else None),
        roi_clip=roi_clip,
        save_model=save_model,
        force=force,
        gt=gt,
    )
    with training_bar(f"{image.name} ({prof.name})", prof.total_steps) as progress:
        summary, before = segment_one(request, progress)
    if before:
        dice = summary.get("dice")
        tail = f", Dice {dice:.4f}" if dice is not None else ""
        typer.echo(f"{image.name}: already done in {out}{tail} (use --force to redo)")
        return
    line = f"{image.name}: lesion area {summary['area_fraction']:.1%} of the image"
    if gt is not None:
        line += f", Dice {summary['dice']:.4f} (without ROI clip {summary['dice_without_roi_clip']:.4f})"
    line += f", {summary['timings_s']['total']:.1f} s on {summary['device']}"
    typer.echo(line)
    _say_leak_check(image, summary)
    exports = summary["exports"]
    files = ["mask.png", "overlay.png", "curve.png", "summary.json"]
    files += [v for k, v in exports.items() if not v.startswith("not written")]
    typer.echo(f"wrote {out}/{', '.join(files)}")
    if exports.get("dicom_seg", "").startswith("not written"):
        typer.echo(f"DICOM-SEG {exports['dicom_seg']}")


@_clean_errors
def refine_cmd(
    image: Path = typer.Argument(..., help="The image the result was made from."),
    result: Path = typer.Option(
        ..., "--result", "-r", help="Result folder of `yoho segment` (or of an earlier round)."
    ),
    annotation: Path | None = typer.Option(
        None,
        "--annotation",
        "-a",
        help="Annotation with the rounds so far (default: the result's annotation.json).",
    ),
    add_lesion: list[str] = typer.Option(
        [], "--add-lesion", help="A lesion circle X,Y,R where the mask missed lesion (repeat)."
    ),
    add_normal: list[str] = typer.Option(
        [], "--add-normal", help="A normal circle X,Y,R where the mask is wrongly lesion (repeat)."
    ),
    undo: bool = typer.Option(False, "--undo", help="Go back to the previous round instead."),
    gt: Path | None = typer.Option(None, "--gt", help="Ground-truth mask: report Dice."),
    device: Device = typer.Option("auto", "--device", help="Torch device (auto: the best here)."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (default: the cores this process may use)."
    ),
) -> None:
    """One correction round: add circles where the mask is wrong; the network follows.

    The network saved by `yoho segment` (model.pt) trains a few more steps with the new circles
    and predicts again (seconds). The result folder's files are replaced by the new round's;
    earlier rounds stay in RESULT/history/round_NN/ and `--undo` brings the previous one back.
    """
    from yoho.history import archive_current, current_mask, current_round, save_round_annotation
    from yoho.history import undo as undo_round

    if undo:
        if add_lesion or add_normal:
            raise ValueError("--undo adds no circle: give either --undo or --add-*")
        back = undo_round(result)
        typer.echo(f"{result}: back at round {back}")
        return
    from yoho.threads import set_threads

    set_threads(threads)
    from yoho.annotation import CorrectionRound, load_annotation, validate_annotation
    from yoho.device import check_device
    from yoho.io import read_image, read_mask
    from yoho.predict import write_outputs
    from yoho.profiles import get_profile
    from yoho.refine import refine
    from yoho.train import load_checkpoint, save_checkpoint

    lesion = [_circle(t, "--add-lesion") for t in add_lesion]
    normal = [_circle(t, "--add-normal") for t in add_normal]
    if not lesion and not normal:
        raise ValueError("a round needs at least one --add-lesion or --add-normal circle")
    check_device(device)
    if not (result / "model.pt").is_file():
        raise FileNotFoundError(
            f"{result}/model.pt: no saved network (run `yoho segment` with --save-model first)"
        )
    img = read_image(image)
    ann_path = annotation or result / "annotation.json"
    ann = load_annotation(ann_path, img.shape)
    new = ann.with_round(CorrectionRound(lesion, normal))
    validate_annotation(new, img.shape, source="the new round")  # before the network loads
    model, meta = load_checkpoint(result / "model.pt")
    profile = get_profile(str(meta.get("profile") or DEFAULT_PROFILE))
    seed = int(meta.get("seed") or 0)
    truth = read_mask(gt, img.shape[:2]) if gt is not None else None
    from yoho.console import training_bar

    with training_bar(f"{image.name} round {len(new.rounds)}", profile.refine.steps) as progress:
        refined = refine(img, new, model, profile, seed=seed, device=device, progress=progress,
                         previous_mask=current_mask(result, img.shape))  # fmt: skip
    archive_current(result)
    save_checkpoint(result / "model.pt", refined.model, {**meta, "round": len(new.rounds)})
    save_round_annotation(new, result)
    extra = {
        "image": str(image),
        "annotation": str(ann_path),
        "round": len(new.rounds),
        "previous_round": current_round(result),
        "clicks": sum(r.clicks for r in new.rounds),
    }
    summary = write_outputs(result, img, new, refined, gt=truth, extra=extra)
    line = f"{image.name}: round {len(new.rounds)}, lesion area {summary['area_fraction']:.1%}"
    if truth is not None:
        line += f", Dice {summary['dice']:.4f}"
    line += f", {refined.timings['total']:.1f} s"
    typer.echo(line)
    _say_leak_check(image, summary)
    typer.echo(f"wrote {result}/mask.png, overlay.png, summary.json; earlier rounds in history/")


@_clean_errors
def simulate_cmd(
    image: Path = typer.Argument(..., help="Image file."),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth lesion mask (>127 = lesion)."),
    out: Path = typer.Option(..., "--out", "-o", help="Annotation JSON to write."),
    margin_factor: float = typer.Option(
        0.15, help="ROI margin as a fraction of the diameter (0 to 5)."
    ),
    lesion_circles: int = typer.Option(3, help="Number of lesion circles."),
    normal_circles: int = typer.Option(3, help="Number of normal-tissue circles."),
    seed: int = typer.Option(0, help="Seed for the normal circles."),
) -> None:
    """Make an annotation from a ground-truth mask (simulated physician, oracle protocol)."""
    from yoho.annotation import save_annotation
    from yoho.io import check_output_file, read_image, read_mask
    from yoho.physician import MAX_MARGIN_FACTOR, MAX_SIDE, OracleOptions, simulate_annotation

    if lesion_circles < 1 or normal_circles < 0 or margin_factor < 0:
        raise ValueError("need --lesion-circles >= 1, --normal-circles >= 0, --margin-factor >= 0")
    if not margin_factor <= MAX_MARGIN_FACTOR:  # NaN and infinity too
        raise ValueError(
            f"--margin-factor must lie in [0, {MAX_MARGIN_FACTOR:g}] (a fraction of the "
            f"lesion's diameter: 0.15 is 15 %), got {margin_factor:g}"
        )
    check_output_file(out)
    img = read_image(image)
    mask = read_mask(gt, img.shape[:2])
    if not mask.any():
        raise ValueError(
            f"{gt}: the ground-truth mask is empty (every pixel 0): nothing to annotate"
        )
    if max(img.shape[:2]) > MAX_SIDE:
        typer.echo(
            f"{image.name} is {img.shape[1]}x{img.shape[0]}: annotating a copy scaled to "
            f"{MAX_SIDE} px on its longer side, then scaling the annotation back",
            err=True,
        )
    options = OracleOptions(
        margin_factor=margin_factor,
        lesion_circles=lesion_circles,
        normal_circles=normal_circles,
        seed=seed,
    )
    ann = simulate_annotation(img, mask, options, image_name=os.path.relpath(image, out.parent))
    save_annotation(ann, out)
    typer.echo(
        f"wrote {out}: {len(ann.lesion_circles)} lesion and {len(ann.normal_circles)} normal "
        f"circles, complement={str(ann.complement).lower()} (oracle protocol)"
    )


@_clean_errors
def preview_cmd(
    image: Path = typer.Argument(..., help="Image file."),
    annotation: Path = typer.Option(..., "--annotation", "-a", help="Annotation JSON."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    profile: ProfileName = typer.Option(
        DEFAULT_PROFILE, "--profile", "-p", help="Profile (size, switches)."
    ),
    count: int = typer.Option(11, "--count", "-n", help="Rendered samples to show."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (default: the cores this process may use)."
    ),
    simple: bool = typer.Option(
        False,
        "--simple",
        help="For the physician: the image with what the network is taught as lesion, normal "
        "and unknown, and checks of the annotation (preview.png).",
    ),
) -> None:
    """Write a contact sheet of rendered training samples with their labels.

    With --simple: one picture for the physician who annotated (what is taught as lesion,
    normal and unknown) and plain-language checks of the annotation.
    """
    if simple:
        from yoho.annotation import load_annotation
        from yoho.io import check_output_folder, read_image, write_png
        from yoho.preview import physician_preview

        img = read_image(image)
        ann = load_annotation(annotation, img.shape)
        check_output_folder(out)
        picture, checks = physician_preview(img, ann)
        write_png(out / "preview.png", picture)
        for line in checks:
            typer.echo(f"- {line}")
        typer.echo(f"wrote {out / 'preview.png'}")
        return
    from yoho.threads import set_threads

    set_threads(threads)
    from yoho.annotation import load_annotation
    from yoho.io import read_image
    from yoho.overlay import save_contact_sheet
    from yoho.profiles import get_profile
    from yoho.render import RenderedDataset

    if count < 1:
        raise ValueError("--count must be at least 1")
    from yoho.io import check_output_folder

    prof = get_profile(profile)
    img = read_image(image)
    ann = load_annotation(annotation, img.shape)
    check_output_folder(out)
    ds = RenderedDataset(img, ann, prof.input_size, prof.length, seed, prof.render)
    indices = list(range(min(count, len(ds) - 1))) + [len(ds) - 1]
    samples = []
    for i in indices:
        im, seg, edge, placed = ds.render(i)
        title = "original image" if i == len(ds) - 1 else f"sample {i}: {len(placed)} patches"
        samples.append((title, im, seg, edge))
    path = out / "render_preview.png"
    save_contact_sheet(samples, path)
    typer.echo(f"wrote {path} ({len(samples)} samples, bank of {len(ds.bank)} patches)")


@_clean_errors
def labelme_cmd(
    labelme: Path = typer.Argument(..., help="labelme JSON whose polygon(s) are the ROI."),
    out: Path = typer.Option(..., "--out", "-o", help="Annotation JSON to write."),
    lesion: list[str] = typer.Option([], "--lesion", help="Lesion circle X,Y,R (repeat)."),
    normal: list[str] = typer.Option([], "--normal", help="Normal circle X,Y,R (repeat)."),
    complement: bool = typer.Option(False, "--complement", help="ROI drawn on normal tissue."),
    label: str | None = typer.Option(None, "--label", help="Use only shapes with this label."),
    annotator: str = typer.Option("", "--annotator", help="Who annotated."),
) -> None:
    """Make an annotation from a labelme ROI polygon plus circles given as X,Y,R."""
    from yoho.annotation import Annotation, labelme_roi, save_annotation, validate_annotation
    from yoho.io import check_output_file

    check_output_file(out)
    roi, (height, width), image_path = labelme_roi(labelme, label)
    if image_path:
        image_path = os.path.relpath(labelme.parent / image_path, out.parent)
    ann = Annotation(
        width=width,
        height=height,
        roi=roi,
        lesion_circles=[_circle(t, "lesion") for t in lesion],
        normal_circles=[_circle(t, "normal") for t in normal],
        complement=complement,
        image=image_path,
        annotator=annotator,
    )
    # Errors name the labelme file (what the user gave), not the output file.
    validate_annotation(ann, source=f"{labelme} (with the --lesion/--normal circles)")
    save_annotation(ann, out, validate=False)
    typer.echo(f"wrote {out}")


def profiles_cmd() -> None:
    """List the training profiles."""
    from yoho.profiles import PROFILES

    for name in sorted(PROFILES):
        prof = PROFILES[name]
        typer.echo(
            f"{name:8s} {prof.input_size}², batch {prof.batch_size}, {prof.total_steps} steps, "
            f"{prof.model.encoder}\n         {prof.description}"
        )


@_clean_errors
def demo_cmd(
    out: Path = typer.Option(Path("demo-output/yoho"), "--out", "-o", help="Output folder."),
) -> None:
    """Segment a synthetic image (and a Kvasir-SEG image if the shared data is there)."""
    from yoho.demo import run

    run(out)


def register(app: typer.Typer) -> None:
    app.command("segment")(segment_cmd)
    app.command("refine")(refine_cmd)
    app.command("simulate-annotation")(simulate_cmd)
    app.command("render-preview")(preview_cmd)
    app.command("import-labelme")(labelme_cmd)
    app.command("profiles")(profiles_cmd)
    app.command("demo")(demo_cmd)
    from yoho.batch_cli import segment_folder_cmd

    app.command("segment-folder")(segment_folder_cmd)
    from yoho.evaluation.commands import evaluate_cmd, sweep_cmd

    app.command("evaluate")(evaluate_cmd)
    app.command("sweep")(sweep_cmd)
