"""`yoho evaluate` and `yoho sweep`: YOHO and its baselines over a folder of images."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from yoho.choices import DEFAULT_PROFILE, Device, Engine, ProfileName
from yoho.commands import _clean_errors
from yoho.lock import locks_out_folder

__all__ = ["evaluate_cmd", "sweep_cmd", "DEFAULT_PROFILE"]

ENGINES = ("local", "ray")


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated numbers, got {text!r}") from None


def _run(
    data: Path,
    out: Path,
    settings,
    methods_text: str,
    profile: str,
    ablations_text: str | None,
    subset: str | None,
    limit: int | None,
    mask_threshold: int,
    seed: int,
    device: str | None,
    engine: str,
    ray_address: str | None,
    cpus_per_job: float,
    gpus_per_job: float,
    torch_threads: int | None = None,
    corrections: int = 0,
    variants: tuple[str, ...] | list[str] = (),
) -> tuple:
    from yoho.console import items_bar
    from yoho.evaluation.dataset import load_dataset
    from yoho.evaluation.methods import parse_methods
    from yoho.evaluation.reprocess import reprocess
    from yoho.evaluation.runner import pending_jobs, run_local
    from yoho.evaluation.settings import parse_ablations
    from yoho.evaluation.store import ClickStore, ResultStore

    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if torch_threads is not None and torch_threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {torch_threads}")
    if torch_threads is None and engine == "local":
        from yoho.threads import default_threads

        torch_threads = default_threads()
    if not 0 <= mask_threshold <= 254:
        raise ValueError(f"--mask-threshold must lie in [0, 254], got {mask_threshold}")
    items = load_dataset(data, subset, limit)
    ablations = parse_ablations(ablations_text)
    methods = parse_methods(methods_text, profile, ablations, seed, device)
    if any(m.kind == "yoho" for m in methods):
        from yoho.device import check_device

        check_device(device)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "results.csv")
    clicks = ClickStore(out / "corrections.csv") if corrections else None
    for warning in store.warnings:
        typer.echo(f"warning: {warning}", err=True)
    jobs = []
    for setting in settings:
        jobs += pending_jobs(
            items, setting, methods, out, store, clicks, mask_threshold=mask_threshold,
            torch_threads=torch_threads, corrections=corrections,
        )  # fmt: skip
    done = len(items) * len(settings) - len(jobs)
    typer.echo(
        f"{len(items)} images × {len(settings)} setting(s), methods "
        f"{', '.join(m.label for m in methods)}: {done} finished before, {len(jobs)} to run"
    )
    failed = 0
    by_name = {item.name: item for item in items}
    yoho_labels = {m.label for m in methods if m.kind == "yoho"}
    if jobs:
        with items_bar("evaluate", len(jobs)) as advance:

            def image_done(name: str, rows: list[dict]) -> None:
                """After each image: its variant rows, then the progress bar.

                Variants are recomputed here, not after the run, so that an interrupted run
                keeps them for every finished image (a resumed run adds the rest)."""
                for r in rows:
                    if variants and r["method"] in yoho_labels and not r["error"]:
                        reprocess(store, [by_name[name]], out, r["setting"], r["method"],
                                  list(variants), mask_threshold)  # fmt: skip
                text = " ".join(
                    f"{r['method'].split(';')[0].split('(')[0]}="
                    + ("ERR" if r["error"] else f"{r['dice']:.3f}")
                    for r in rows
                )
                advance(f"{name[:10]} {text}")

            if engine == "ray":
                from yoho.evaluation.ray_engine import run_ray

                failed = run_ray(
                    jobs, store, image_done, ray_address, cpus_per_job, gpus_per_job, clicks=clicks
                )
            else:
                failed = run_local(jobs, store, image_done, clicks)
    for row in store.select(ok=False):
        if row["error"]:
            typer.echo(f"failed: {row['image']} {row['setting']} {row['method']}: {row['error']}")
    return items, methods, store, failed, clicks


@_clean_errors
@locks_out_folder
def evaluate_cmd(
    data: Path = typer.Option(..., "--data", help="Folder with images/, masks/ [labels.csv]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable)."),
    profile: ProfileName = typer.Option(DEFAULT_PROFILE, "--profile", "-p", help="YOHO profile."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N images."),
    subset: str | None = typer.Option(
        None, "--subset", help="every4, all, or a file with one image name per line."
    ),
    methods: str = typer.Option(
        "yoho,roi,grabcut,random_walker,trainable",
        "--methods",
        help="Comma-separated: yoho and baselines (roi, grabcut, random_walker, ...).",
    ),
    margin: float = typer.Option(0.15, "--margin", help="Simulated physician's margin factor."),
    lesion_circles: int = typer.Option(3, "--lesion-circles", help="Lesion circles clicked."),
    normal_circles: int = typer.Option(3, "--normal-circles", help="Normal circles clicked."),
    mask_threshold: int = typer.Option(
        127, "--mask-threshold", help="Lesion = mask > this (0 for small-integer label maps)."
    ),
    ablations: str | None = typer.Option(
        None, "--ablations", help="YOHO ablations, comma-separated (see docs)."
    ),
    seed: int = typer.Option(0, "--seed", help="YOHO training seed."),
    device: Device = typer.Option("cpu", "--device", help="Torch device for YOHO."),
    engine: Engine = typer.Option("local", "--engine", help="Run images here or on Ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Existing Ray cluster (default: start a local Ray)."
    ),
    cpus_per_job: float = typer.Option(1.0, "--cpus-per-job", help="Ray: CPUs per image."),
    gpus_per_job: float = typer.Option(0.0, "--gpus-per-job", help="Ray: GPUs per image."),
    torch_threads: int | None = typer.Option(
        None,
        "--threads",
        "--torch-threads",
        help="CPU threads for torch per image (default: the cores this process may use; "
        "Ray: the CPUs per job).",
    ),
    reproducible: bool = typer.Option(
        False,
        "--reproducible",
        help="YOHO gives the same mask on any thread count (ablation thread_invariant).",
    ),
    corrections: int = typer.Option(
        0,
        "--corrections",
        help="Simulated corrective clicks per image and method (NoC protocol; 0: none).",
    ),
    variants: str | None = typer.Option(
        None,
        "--variants",
        help="Post-processing variants recomputed from YOHO's saved probabilities ('all' or "
        "names: no_postprocess, no_roi_clip, threshold_0.4, ...).",
    ),
) -> None:
    """Evaluate YOHO and its baselines on every image of DATA (per-image CSV, tables, figures)."""
    from yoho.evaluation.ablation_table import ablation_table
    from yoho.evaluation.report import write_report
    from yoho.evaluation.reprocess import VARIANTS, reprocess
    from yoho.evaluation.settings import ProtocolSetting
    from yoho.io import write_json, write_text

    chosen = []
    if variants:
        chosen = list(VARIANTS) if variants == "all" else [v.strip() for v in variants.split(",")]
        unknown = [v for v in chosen if v not in VARIANTS]
        if unknown:
            raise ValueError(
                f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}"
            )

    if reproducible:
        ablations = ",".join(filter(None, [ablations, "thread_invariant"]))
    setting = ProtocolSetting(margin, lesion_circles, normal_circles)
    if not 0 <= corrections <= 50:
        raise ValueError(f"--corrections must lie in [0, 50], got {corrections}")
    items, specs, store, failed, clicks = _run(
        data, out, [setting], methods, profile, ablations, subset, limit, mask_threshold, seed,
        device, engine, ray_address, cpus_per_job, gpus_per_job, torch_threads, corrections,
        chosen,
    )  # fmt: skip
    command = "yoho " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    labels = [m.label for m in specs]
    for spec in specs:  # images finished by an earlier run that lacked these variants
        if spec.kind == "yoho" and chosen:
            reprocess(store, items, out, setting.label, spec.label, chosen, mask_threshold)
            labels += [f"{spec.label} [{v}]" for v in chosen]
    report = write_report(store, items, out, setting.label, labels, mask_threshold, [command])
    typer.echo(report["markdown"])
    table, rows = ablation_table(store, setting.label)
    if rows:  # ablated runs exist under this setting: compare each with the full model
        write_text(report["folder"] / "ablations.md", table)
        write_json(report["folder"] / "ablations.json", rows)
        typer.echo(table)
    if clicks is not None:
        from yoho.evaluation.corrections import write_click_report

        typer.echo(write_click_report(clicks, setting.label, labels, corrections, report["folder"]))
    typer.echo(f"results: {out / 'results.csv'}; report: {report['folder']}")
    if failed:
        typer.echo(f"{failed} method run(s) failed (see results.csv)", err=True)
        raise typer.Exit(1)


@_clean_errors
@locks_out_folder
def sweep_cmd(
    data: Path = typer.Option(..., "--data", help="Folder with images/, masks/ [labels.csv]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable)."),
    margins: str = typer.Option("0.15,0.3,0.5", "--margins", help="Margin factors."),
    lesion_circles: str = typer.Option("1,3", "--lesion-circles", help="Lesion circle counts."),
    methods: str = typer.Option(
        "roi,grabcut,random_walker",
        "--methods",
        help="Comma-separated: yoho and baselines (roi, grabcut, random_walker, ...).",
    ),
    profile: ProfileName = typer.Option(DEFAULT_PROFILE, "--profile", "-p", help="YOHO profile."),
    subset: str | None = typer.Option("every4", "--subset", help="every4, all, or a file."),
    limit: int | None = typer.Option(20, "--limit", help="Only the first N images."),
    mask_threshold: int = typer.Option(127, "--mask-threshold", help="Lesion = mask > this."),
    ablations: str | None = typer.Option(None, "--ablations", help="YOHO ablations."),
    seed: int = typer.Option(0, "--seed", help="YOHO training seed."),
    device: Device = typer.Option("cpu", "--device", help="Torch device for YOHO."),
    engine: Engine = typer.Option("local", "--engine", help="Run images here or on Ray."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Existing Ray cluster."),
    cpus_per_job: float = typer.Option(1.0, "--cpus-per-job", help="Ray: CPUs per image."),
    torch_threads: int | None = typer.Option(
        None,
        "--threads",
        help="CPU threads for torch per image (default: the cores this process may use; "
        "Ray: the CPUs per job).",
    ),
) -> None:
    """Protocol sweep: every margin × lesion-circle setting; writes sweep.md (Dice table)."""
    from yoho.evaluation.settings import ProtocolSetting
    from yoho.evaluation.sweep import sweep_table
    from yoho.io import write_json, write_text

    settings = [
        ProtocolSetting(m, int(k))
        for m in _floats(margins, "--margins")
        for k in _floats(lesion_circles, "--lesion-circles")
    ]
    if not settings:
        raise ValueError("the sweep has no setting")
    _, _, store, failed, _ = _run(
        data, out, settings, methods, profile, ablations, subset, limit, mask_threshold, seed,
        device, engine, ray_address, cpus_per_job, 0.0, torch_threads,
    )  # fmt: skip
    found = {r["setting"] for r in store.select()}
    ordered = [s.label for s in settings] + sorted(found - {s.label for s in settings})
    text, data_json = sweep_table(store, ordered)
    write_text(out / "sweep.md", text)
    write_json(out / "sweep.json", data_json)
    typer.echo(text)
    if failed:
        raise typer.Exit(1)
