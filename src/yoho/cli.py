"""The `yoho` command line."""

from __future__ import annotations

import typer

from yoho import __version__
from yoho.commands import register
from yoho.web.cli import serve_cmd

app = typer.Typer(
    name="yoho",
    help="YOHO: single-image lesion segmentation (one network per image).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"yoho {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """YOHO command line."""


register(app)
app.command("serve")(serve_cmd)


if __name__ == "__main__":
    app()
