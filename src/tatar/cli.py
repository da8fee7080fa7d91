"""The `tatar` command line."""

from __future__ import annotations

import typer

from tatar import __version__

app = typer.Typer(
    name="tatar",
    help="TATAR: unified image quality (IQA) and aesthetics (IAA) scoring with a task-aware MLLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tatar {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """TATAR command line."""


if __name__ == "__main__":
    app()
