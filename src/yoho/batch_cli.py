"""The `yoho segment-folder` command (registered in `yoho.commands`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from yoho.choices import DEFAULT_PROFILE, Device, Engine, ProfileName
from yoho.commands import _clean_errors
from yoho.lock import locks_out_folder

__all__ = ["segment_folder_cmd"]


@_clean_errors
@locks_out_folder
def segment_folder_cmd(
    images: Path = typer.Argument(..., help="Folder of images (jpg, png, tif, bmp, webp, dcm)."),
    annotations: Path = typer.Option(
        ..., "--annotations", "-a", help="Folder of annotations: <image stem>.json per image."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: <image stem>/ per image and summary.csv."
    ),
    profile: ProfileName = typer.Option(
        DEFAULT_PROFILE, "--profile", "-p", help="Training profile."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (the same for every image)."),
    device: Device = typer.Option("auto", "--device", help="Torch device (auto: the best here)."),
    save_model: bool = typer.Option(
        False, "--save-model/--no-save-model", help="Write each image's model.pt (large)."
    ),
    force: bool = typer.Option(False, "--force", help="Redo images that are already done."),
    reproducible: bool = typer.Option(
        False, "--reproducible", help="The same masks on any thread count (docs/yoho.md)."
    ),
    engine: Engine = typer.Option("local", "--engine", help="Run images here or on Ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Existing Ray cluster (default: start a local Ray)."
    ),
    cpus_per_job: float = typer.Option(1.0, "--cpus-per-job", help="Ray: CPUs per image."),
    gpus_per_job: float = typer.Option(0.0, "--gpus-per-job", help="Ray: GPUs per image."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="CPU threads for torch (default: the cores this process may use; Ray: the CPUs "
        "per job).",
    ),
) -> None:
    """Segment every image of IMAGES that has an annotation; resumable, with summary.csv.

    Research use only, not a medical device.
    """
    from yoho.batch import SegmentRequest, SummaryTable, find_pairs, run_folder
    from yoho.console import items_bar
    from yoho.device import check_device
    from yoho.profiles import get_profile
    from yoho.threads import set_threads

    torch_threads = set_threads(threads) if engine == "local" else threads
    if torch_threads is not None and torch_threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {torch_threads}")
    check_device(device)
    prof = get_profile(profile)
    if reproducible:
        prof = dataclasses.replace(prof, thread_invariant=True)
    pairs, missing = find_pairs(images, annotations)
    if not pairs:
        raise ValueError(f"{images}: no image has an annotation <stem>.json in {annotations}")
    table = SummaryTable(out / "summary.csv")
    requests = [
        SegmentRequest(
            image=image, annotation=ann, out=out / image.stem, profile=prof, seed=seed,
            device=device, save_model=save_model, force=force,
            torch_threads=torch_threads if engine == "local" else threads,
        )
        for image, ann in pairs
    ]  # fmt: skip
    for path in missing:
        table.rows[path.name] = {
            "image": path.name, "status": "skipped", "profile": prof.name,
            "error": f"no annotation {annotations / (path.stem + '.json')}",
        }  # fmt: skip
    typer.echo(
        f"{len(pairs)} annotated image(s) of {len(pairs) + len(missing)} in {images}; "
        f"profile {prof.name}; results in {out}"
    )
    if missing:
        typer.echo(f"skipped (no annotation): {', '.join(p.name for p in missing[:10])}"
                   + (" ..." if len(missing) > 10 else ""), err=True)  # fmt: skip
    counts = {"done": 0, "done before": 0, "failed": 0}
    with items_bar("segment-folder", len(requests)) as advance:

        def progress(row: dict) -> None:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            if row["status"] == "failed":
                text = "FAILED"
            else:
                text = f"{float(row['area_fraction'] or 0):.1%} lesion"
                text += " (done before)" if row["status"] == "done before" else ""
            advance(f"{row['image'][:24]} {text}")

        failed = run_folder(requests, table, progress, engine, ray_address, cpus_per_job,
                            gpus_per_job)  # fmt: skip
    for row in table.rows.values():
        if row.get("status") == "failed":
            typer.echo(f"failed: {row['image']}: {row['error']}", err=True)
    typer.echo(
        f"{counts['done']} segmented, {counts['done before']} done before, {failed} failed; "
        f"summary: {out / 'summary.csv'}"
    )
    if failed:
        raise typer.Exit(1)
