"""The `yoho serve` command (registered in `yoho.cli`); FastAPI is imported only when it runs."""

from __future__ import annotations

from pathlib import Path

import typer

from yoho.choices import DEFAULT_PROFILE, Device, ProfileName

__all__ = ["serve_cmd"]


def serve_cmd(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on; anything but localhost is warned."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    data: Path | None = typer.Option(
        None, "--data", help="Folder of images to pick from (its files and sub-folders)."
    ),
    results: Path | None = typer.Option(
        None, "--results", help="Folder for images, annotations and results (default: per user)."
    ),
    profile: ProfileName = typer.Option(
        DEFAULT_PROFILE, "--profile", "-p", help="Training profile preselected."
    ),
    workers: int = typer.Option(1, "--workers", help="Jobs run at the same time; others queue."),
    max_upload_mb: float = typer.Option(25.0, "--max-upload-mb", help="Largest upload (MiB)."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", help="Largest image (pixels)."),
    device: Device = typer.Option("auto", "--device", help="Torch device (auto: the best here)."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="CPU threads for torch in each job (default: measured as each job starts: the "
        "cores this process may use less those other processes keep busy).",
    ),
    expert: bool = typer.Option(
        False,
        "--expert",
        help="Also offer the developer profiles (cpu, cpu_tuned, cpu_shuffled, tiny, ...).",
    ),
) -> None:
    """Run the physician's web tool: annotate an image and segment it in the browser.

    Research use only, not a medical device. Uploaded images stay in the results folder until
    they are deleted on the page (docs/web.md).
    """
    try:
        from yoho.threads import set_threads
        from yoho.web.server import serve

        set_threads(threads)

        serve(
            host=host,
            port=port,
            results=results,
            data=data,
            profile=profile,
            workers=workers,
            max_upload_mb=max_upload_mb,
            max_pixels=max_pixels,
            device=device,
            expert=expert,
            threads=threads,
        )
    except ModuleNotFoundError as exc:
        typer.echo(
            f"error: the web tool needs the 'web' extra ({exc.name} is missing): "
            "pip install 'tatar-yoho[web]'",
            err=True,
        )
        raise typer.Exit(2) from None
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
