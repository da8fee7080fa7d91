"""The `tatar` command line."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from tatar import __version__
from tatar.data.cli import app as data_app
from tatar.rationales.cli import app as rationales_app

app = typer.Typer(
    name="tatar",
    help="TATAR: unified image quality (IQA) and aesthetics (IAA) scoring with a task-aware MLLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(rationales_app, name="rationales")
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tatar {__version__}")
        raise typer.Exit()


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
)


class Task(str, Enum):
    iqa = "iqa"
    iaa = "iaa"


class ScoreTask(str, Enum):
    iqa = "iqa"
    iaa = "iaa"
    both = "both"


class Think(str, Enum):
    auto = "auto"
    force = "force"
    suppress = "suppress"


class BackendName(str, Enum):
    auto = "auto"
    hf = "hf"
    vllm = "vllm"


def _think_modes(value: str) -> str:
    """``--think``: one or more think modes, comma-separated (``force,suppress``)."""
    choices = [t.value for t in Think]
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    if not parts or any(p not in choices for p in parts):
        raise typer.BadParameter(f"{value!r}: each value must be one of {', '.join(choices)}")
    return ",".join(parts)


def _split_modes(values: list[str]) -> list[str]:
    modes = [m.strip() for v in values for m in v.split(",") if m.strip()]
    return list(dict.fromkeys(modes)) or ["auto"]


def _image_roots(values: list[str], datasets: list[str]) -> dict[str, str | None]:
    """``--image-root DIR`` applies to every dataset, ``--image-root NAME=DIR`` to one."""
    from tatar.scales import dataset_key

    roots: dict[str, str | None] = dict.fromkeys(datasets)
    for v in values:
        name, sep, folder = v.partition("=")
        if sep and dataset_key(name) in {dataset_key(d) for d in datasets}:
            for d in datasets:
                if dataset_key(d) == dataset_key(name):
                    roots[d] = folder
        elif sep and not Path(v).exists():
            raise ValueError(
                f"--image-root {v}: {name!r} is not one of the datasets given ({', '.join(datasets)})"
            )
        else:
            for d in datasets:
                roots[d] = roots[d] or v
    return roots


@app.command("tiny-model")
def tiny_model(
    out: Path = typer.Option(..., "--out", help="Folder to write the checkpoint to."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder."),
    max_pixels: int = typer.Option(
        12544, help="Processor image pixel limit saved with the checkpoint."
    ),
    min_pixels: int = typer.Option(3136, help="Processor lower pixel limit."),
    seed: int = typer.Option(0, help="Seed of the random initialisation."),
) -> None:
    """Write a tiny random Qwen2.5-VL checkpoint (model, tokenizer, processor) for CPU runs."""
    from tatar.tiny_model import TinyModelSpec, build_tiny_model, count_parameters

    try:
        path = build_tiny_model(
            out,
            TinyModelSpec(min_pixels=min_pixels, max_pixels=max_pixels, seed=seed),
            overwrite=overwrite,
        )
    except USER_ERRORS as exc:
        _fail(exc)
    typer.echo(f"wrote {path} ({count_parameters(path):,} parameters)")


@app.command("datasets")
def list_datasets() -> None:
    """List the known datasets with their task, declared scale and label file."""
    from tatar.datasets import DATASETS, shared_data_dir

    root = shared_data_dir()
    for d in DATASETS.values():
        where = "images with labels" if d.images_in_shared else "needs --image-root"
        present = "" if (root / d.labels).is_file() else "  [labels not found]"
        typer.echo(
            f"{d.name:14s} {d.task.upper()}  scale {d.scale.low:g}-{d.scale.high:g}  {root / d.labels} ({where}){present}"
        )


_MODEL_HELP = (
    "Model: a local folder (HF format) or a hub id (org/name), downloaded into the HF cache "
    "unless it is there (HF_HUB_OFFLINE=1: never downloaded)."
)
_REVISION_HELP = "Branch, tag or commit of a hub id (default: main)."


def _settings(**kw):
    from tatar.generation import GenerationSettings

    return GenerationSettings(**kw)


@app.command("eval")
def evaluate_cmd(
    model: str = typer.Option(..., "--model", help=_MODEL_HELP),
    revision: str | None = typer.Option(None, "--revision", help=_REVISION_HELP),
    dataset: list[str] = typer.Option(
        ...,
        "--dataset",
        help="Known dataset name or a CSV/JSON/JSONL label file; repeat for several.",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (rerunning into it resumes)."),
    image_root: list[str] = typer.Option(
        [], "--image-root", help="Image folder: DIR for all datasets or NAME=DIR for one."
    ),
    labels: Path | None = typer.Option(
        None, "--labels", help="Override the label file of a known dataset."
    ),
    task: Task | None = typer.Option(None, "--task", help="Task of a user label file."),
    scale: str | None = typer.Option(
        None, "--scale", help="Native scale of a user label file, LOW:HIGH (e.g. 1:5)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Evaluate the first N images of each dataset."
    ),
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Skip (and count) images that are missing."
    ),
    backend: BackendName = typer.Option(BackendName.auto, "--backend", help="Generation backend."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    samples: int = typer.Option(
        1, "--samples", min=1, help="Sampled completions per image (1 = greedy)."
    ),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    top_k: int = typer.Option(0, "--top-k", help="0 = off."),
    seed: int = typer.Option(0, "--seed"),
    think: list[str] = typer.Option(
        ["auto"],
        "--think",
        parser=_think_modes,
        metavar="[auto|force|suppress][,...]",
        help="Think mode; several (force,suppress) run the reasoning probe.",
    ),
    min_pixels: int | None = typer.Option(
        None, "--min-pixels", help="Processor lower pixel limit (default: the checkpoint's)."
    ),
    max_pixels: int | None = typer.Option(
        None, "--max-pixels", help="Processor pixel limit (default: the checkpoint's)."
    ),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0 = none)."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (HF backend)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard earlier results in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Evaluate a model on labelled images: per-sample JSONL, metrics, table, scatter plots."""
    from tatar.datasets import load_dataset
    from tatar.devices import check_device
    from tatar.evaluate import evaluate, probe_markdown
    from tatar.generation import make_backend
    from tatar.hub import resolve_model
    from tatar.outputs import atomic_write_json, atomic_write_text

    try:
        check_device(device)
        resolved = resolve_model(model, revision=revision)
        modes = _split_modes(think)
        if labels is not None and len(dataset) > 1:
            raise ValueError(
                "--labels overrides one dataset's label file; give a single --dataset with it"
            )
        roots = _image_roots(image_root, dataset)
        loaded = [
            load_dataset(
                name,
                image_root=roots[name],
                labels=labels,
                task=task.value if task else None,
                scale=scale,
                limit=limit,
                skip_missing=skip_missing,
            )
            for name in dataset
        ]
        for d in loaded:
            if d.missing:
                typer.echo(f"{d.name}: skipped {len(d.missing)} missing image(s)", err=True)
        pixels = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        cache: dict = {}

        def factory():
            if "backend" not in cache:
                cache["backend"] = make_backend(
                    backend.value, resolved.path, device=device, **pixels
                )
            return cache["backend"]

        per_mode = {}
        for mode in modes:
            settings = _settings(
                max_new_tokens=max_new_tokens,
                samples=samples,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                think=mode,
                seed=seed,
                batch_size=batch_size,
            )
            target = out if len(modes) == 1 else out / f"think-{mode}"
            per_mode[mode] = evaluate(
                factory,
                loaded,
                target,
                settings,
                model=resolved.name,
                pixels=pixels,
                n_resamples=bootstrap,
                overwrite=overwrite,
                progress=not quiet,
            )
            for r in per_mode[mode]:
                if r.unreadable:
                    shown = "; ".join(r.unreadable[:3]) + ("; ..." if len(r.unreadable) > 3 else "")
                    typer.echo(
                        f"{r.dataset.name}: {len(r.unreadable)} image(s) could not be read or "
                        f"processed, counted as failed answers (tried again on a rerun): {shown}",
                        err=True,
                    )
            typer.echo((target / "summary.md").read_text())
        if len(modes) > 1:
            atomic_write_text(out / "probe.md", probe_markdown(per_mode))
            atomic_write_json(
                out / "probe.json", {m: [r.metrics for r in res] for m, res in per_mode.items()}
            )
            typer.echo((out / "probe.md").read_text())
    except USER_ERRORS as exc:
        _fail(exc)


@app.command("score")
def score_cmd(
    images: list[Path] = typer.Argument(..., help="Image files."),
    model: str = typer.Option(..., "--model", help=_MODEL_HELP),
    revision: str | None = typer.Option(None, "--revision", help=_REVISION_HELP),
    task: ScoreTask = typer.Option(ScoreTask.both, "--task", help="Task(s) to score."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    samples: int = typer.Option(
        1, "--samples", min=1, help="Sampled completions per image (1 = greedy)."
    ),
    think: Think = typer.Option(Think.auto, "--think", help="Think mode."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    top_k: int = typer.Option(0, "--top-k", help="0 = off."),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    backend: BackendName = typer.Option(BackendName.auto, "--backend", help="Generation backend."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    min_pixels: int | None = typer.Option(None, "--min-pixels"),
    max_pixels: int | None = typer.Option(None, "--max-pixels"),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    """Print a 0-100 score and the rationale for each image (IQA, IAA or both).

    An image that cannot be read is reported on standard error (exit code 1) while the others
    are still scored and printed.
    """
    import json

    from tatar.devices import check_device
    from tatar.generation import make_backend
    from tatar.hub import resolve_model
    from tatar.scoring import score_images

    try:
        for p in images:
            if p.is_dir():
                raise IsADirectoryError(
                    f"{p} is a folder; give image files (a folder or manifest: tatar score-collection)"
                )
            if not p.is_file():
                raise FileNotFoundError(f"image not found: {p}")
        check_device(device)
        resolved = resolve_model(model, revision=revision)
        settings = _settings(
            max_new_tokens=max_new_tokens,
            samples=samples,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            think=think.value,
            seed=seed,
            batch_size=batch_size,
        )
        pixels = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        live = make_backend(backend.value, resolved.path, device=device, **pixels)
        results = score_images(live, images, settings, task=task.value, progress=not quiet)
    except USER_ERRORS as exc:
        _fail(exc)
    failed = list(dict.fromkeys(r.error for r in results if r.error))  # names the image
    for line in failed:
        typer.echo(f"error: {line}", err=True)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        if failed:
            raise typer.Exit(1)
        return
    for r in results:
        if r.error:
            continue
        score = "no parsable answer" if r.score is None else f"{r.score:.2f}"
        if samples > 1 and r.score is not None:
            score += f" +/- {r.std:.2f} (mean of {samples}, {100 * r.parse_rate:.0f}% parsed)"
        typer.echo(f"{r.image}  {r.task.upper()}  {score}")
        if r.rationale:
            typer.echo(f"  rationale: {r.rationale}")
        elif r.score is None:
            typer.echo(f"  answer: {r.completions[0][:200]!r}")
    if failed:
        raise typer.Exit(1)


class Engine(str, Enum):
    local = "local"
    ray = "ray"


def _dataset_scale(value: str | None):
    """``--dataset-scale``: a known dataset's name (koniq, ava, ...) or LOW:HIGH."""
    from tatar.scales import Scale, scale_of

    if value is None:
        return None
    if any(sep in value for sep in ":,") or value[:1].isdigit():
        return Scale.parse(value)
    return scale_of(value)


@app.command("score-collection")
def score_collection_cmd(
    source: Path = typer.Argument(
        ..., help="A folder (searched recursively for images) or a CSV/JSONL/Parquet manifest."
    ),
    model: str = typer.Option(..., "--model", help=_MODEL_HELP),
    out: Path = typer.Option(..., "--out", help="Output folder (rerunning into it resumes)."),
    revision: str | None = typer.Option(None, "--revision", help=_REVISION_HELP),
    task: ScoreTask = typer.Option(ScoreTask.both, "--task", help="Task(s) to score."),
    dataset_scale: str | None = typer.Option(
        None,
        "--dataset-scale",
        help="Also write scores on this native scale: a dataset name (koniq, ava, ...) or LOW:HIGH.",
    ),
    path_column: str | None = typer.Option(
        None,
        "--path-column",
        help="Manifest column of the image paths (default: path, image, ...).",
    ),
    id_column: str | None = typer.Option(
        None,
        "--id-column",
        help="Manifest column of the ids (default: id if present, else the path).",
    ),
    image_root: Path | None = typer.Option(
        None,
        "--image-root",
        help="Folder that relative manifest paths start from (default: the manifest's).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N images."),
    shard_size: int = typer.Option(
        1000,
        "--shard-size",
        min=1,
        help="Images per Parquet shard (a hard kill loses at most one).",
    ),
    jsonl: bool = typer.Option(False, "--jsonl", help="Also write each shard as JSONL."),
    keep_think: bool = typer.Option(False, "--keep-think", help="Store the <think> text."),
    keep_completions: bool = typer.Option(
        False, "--keep-completions", help="Store the raw completions."
    ),
    samples: int = typer.Option(
        1, "--samples", min=1, help="Sampled completions per image (1 = greedy); mean and std."
    ),
    think: Think = typer.Option(Think.auto, "--think", help="Think mode."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    top_k: int = typer.Option(0, "--top-k", help="0 = off."),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per generate call."),
    min_pixels: int | None = typer.Option(None, "--min-pixels"),
    max_pixels: int | None = typer.Option(
        None, "--max-pixels", help="Processor pixel limit (default: the checkpoint's)."
    ),
    backend: BackendName = typer.Option(
        BackendName.auto, "--backend", help="Generation backend (with --engine ray, auto = hf)."
    ),
    device: str | None = typer.Option(None, "--device", help="Local engine only: cpu, cuda, ..."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local, or ray (Ray Data)."),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Join this Ray cluster (ray://host:10001 or auto); default: a local Ray.",
    ),
    ray_cpus: int | None = typer.Option(
        None, "--ray-cpus", min=1, help="CPUs of a local Ray (default: all)."
    ),
    replicas: int | None = typer.Option(
        None, "--replicas", min=1, help="Model replicas on Ray (default: one per GPU, else 1)."
    ),
    gpus_per_replica: float | None = typer.Option(
        None, "--gpus-per-replica", min=0, help="Default: 1 when the cluster has GPUs, else 0."
    ),
    cpus_per_replica: float = typer.Option(1.0, "--cpus-per-replica", min=0.01),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard earlier scores in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress."),
) -> None:
    """Score a folder or manifest into sharded Parquet (resumable; local or on Ray Data).

    Unreadable images become rows with an error. The last line is the summary: images scored,
    failed, skipped (already in --out).
    """
    from tatar.collection import BackendSpec, RayOptions, RowOptions, score_collection
    from tatar.devices import check_device
    from tatar.hub import resolve_model
    from tatar.prompts import prompt_version

    try:
        if engine == Engine.ray and device is not None:
            raise ValueError("--device applies to --engine local; Ray places each replica itself")
        check_device(device)
        scale = _dataset_scale(dataset_scale)
        ray_options = RayOptions(
            address=ray_address,
            num_cpus=ray_cpus,
            replicas=replicas,
            gpus_per_replica=gpus_per_replica,
            cpus_per_replica=cpus_per_replica,
        )
        settings = _settings(
            max_new_tokens=max_new_tokens,
            samples=samples,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            think=think.value,
            seed=seed,
            batch_size=batch_size,
        )
        resolved = resolve_model(model, revision=revision)
        backend_name = backend.value
        if engine == Engine.ray and backend_name == "auto":
            backend_name = "hf"
        spec = BackendSpec(backend_name, str(resolved.path), device, min_pixels, max_pixels)
        opts = RowOptions(
            model=resolved.hub_id or str(resolved.path),
            revision=resolved.path.name if resolved.hub_id else None,
            prompt_version=prompt_version(),
            task=task.value,
            scale=scale,
            keep_think=keep_think,
            keep_completions=keep_completions,
        )
        summary = score_collection(
            source,
            out,
            spec,
            settings,
            opts,
            engine=engine.value,
            ray_options=ray_options,
            shard_size=shard_size,
            jsonl=jsonl,
            path_column=path_column,
            id_column=id_column,
            image_root=image_root,
            limit=limit,
            overwrite=overwrite,
            progress=not quiet,
        )
    except USER_ERRORS as exc:
        _fail(exc)
    for line in summary.first_errors:
        typer.echo(f"failed: {line}", err=True)
    typer.echo(summary.line())


def _train(
    stage: str,
    config: Path,
    run_dir: Path | None,
    overwrite: bool,
    max_steps: int | None,
    quiet: bool,
    report_to: str | None = None,
    extra: list[str] | None = None,
) -> None:
    from tatar.train.config import load_config, parse_overrides

    try:
        cfg = load_config(config)
        if run_dir is not None:
            cfg = cfg.with_run_dir(run_dir)
        fields = parse_overrides(list(extra or []))
        if report_to is not None:
            if "report_to" in fields:
                raise ValueError("--report-to is given twice (once as --report_to); give it once")
            fields["report_to"] = report_to
        cfg = cfg.with_overrides(stage, fields)
        overrides = {"max_steps": max_steps} if max_steps else {}
        if stage == "sft":
            from tatar.train.sft import run_sft as run
        else:
            from tatar.train.grpo import run_grpo as run
        final = run(cfg, overwrite=overwrite, progress=not quiet, **overrides)
    except USER_ERRORS as exc:
        _fail(exc)
    from tatar.train.model import shutdown_distributed

    shutdown_distributed()
    typer.echo(f"{stage.upper()} model: {final}")


_CONFIG_HELP = "Training config (YAML; see configs/ and docs/training.md)."
_RUN_DIR_HELP = "Run folder (default: the config's run_dir)."
_OVERWRITE_HELP = "Discard this stage's earlier outputs (SFT: and the GRPO built on them)."
_MAX_STEPS_HELP = "Stop after N optimizer steps (a trial run; the config's schedule otherwise)."
_REPORT_TO_HELP = (
    "Experiment trackers: tensorboard, wandb, trackio (comma-separated) or none; overrides the "
    "config's report_to (each is an optional extra: pip install -e '.[tensorboard]')."
)
# Any training-argument field can follow the options, TRL style: --learning_rate 1e-5.
_OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command("sft", context_settings=_OVERRIDES)
def sft_cmd(
    ctx: typer.Context,
    config: Path = typer.Option(..., "--config", help=_CONFIG_HELP),
    run_dir: Path | None = typer.Option(None, "--run-dir", help=_RUN_DIR_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help=_MAX_STEPS_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    report_to: str | None = typer.Option(None, "--report-to", help=_REPORT_TO_HELP),
) -> None:
    """Stage 1: SFT with asymmetric thought dropout (rerun to resume from the last checkpoint).

    Any field of the stage's TRL config may follow, TRL style: --learning_rate 1e-5.
    """
    _train("sft", config, run_dir, overwrite, max_steps, quiet, report_to, ctx.args)


@app.command("grpo", context_settings=_OVERRIDES)
def grpo_cmd(
    ctx: typer.Context,
    config: Path = typer.Option(..., "--config", help=_CONFIG_HELP),
    run_dir: Path | None = typer.Option(None, "--run-dir", help=_RUN_DIR_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help=_MAX_STEPS_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    report_to: str | None = typer.Option(None, "--report-to", help=_REPORT_TO_HELP),
) -> None:
    """Stage 2: GRPO with asymmetric rewards, from the SFT model (rerun to resume).

    Any field of the stage's TRL config may follow, TRL style: --learning_rate 1e-5.
    """
    _train("grpo", config, run_dir, overwrite, max_steps, quiet, report_to, ctx.args)


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(
        Path("demo-output/tatar"), "--out", help="Folder for the demo outputs."
    ),
) -> None:
    """Tiny checkpoint: evaluate it (at chance), then a few SFT and GRPO steps on synthetic images."""
    from tatar.demo import run

    try:
        run(out)
    except USER_ERRORS as exc:
        _fail(exc)


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """TATAR command line."""


if __name__ == "__main__":
    app()
