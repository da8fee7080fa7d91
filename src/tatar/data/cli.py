"""`tatar data prepare DATASET --root DIR --out DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Prepare datasets: official label files -> training-record JSONL.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command("prepare")
def prepare_cmd(
    dataset: str = typer.Argument(
        ...,
        help="koniq, spaq, kadid, pipal, ava, tad66k, flickr-aes, artimuse or livec.",
    ),
    root: Path = typer.Option(..., "--root", help="The dataset folder, as officially published."),
    out: Path = typer.Option(..., "--out", help="Folder for <name>_<split>.jsonl."),
    no_benchmark_split: bool = typer.Option(
        False,
        "--no-benchmark-split",
        help="Without an official split, write one <name>_all.jsonl instead of test = the "
        "benchmark's images.",
    ),
) -> None:
    """Read a dataset's official labels and write its records JSONL, one file per split."""
    from tatar.data.prepare import prepare

    try:
        s = prepare(dataset, root, out, benchmark_split=not no_benchmark_split)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    parts = ", ".join(f"{k} {v['records']}" for k, v in s["splits"].items())
    typer.echo(
        f"{s['dataset']} ({s['task'].upper()}, scale {s['scale']}): {s['records']} records "
        f"({parts}); split: {s['split_rule']}"
    )
    for split in s["splits"].values():
        typer.echo(f"  {split['file']}")
    if s["missing_images"]:
        typer.echo(
            f"warning: {s['missing_images']} of {s['records']} images are missing under "
            f"{s['root']} ({', '.join(s['missing_examples'])}, ...); list: {s['missing_file']}",
            err=True,
        )


@app.command("toy")
def toy_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for koniq/ and artimuse/."),
    train: int = typer.Option(8, "--train", min=1, help="Training images per dataset."),
    test: int = typer.Option(4, "--test", min=1, help="Test images per dataset."),
) -> None:
    """Synthetic images in KonIQ-10k's and ArtiMuse-10K's official layouts (for the recipe)."""
    from tatar.data.toy_layout import write_toy_layout

    roots = write_toy_layout(out, train=train, test=test)
    for name, root in roots.items():
        typer.echo(f"{name}: {root}")
