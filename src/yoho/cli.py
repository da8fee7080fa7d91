"""The `yoho` command line."""

from __future__ import annotations

import typer

from yoho.threads import configure_cpu_runtime

configure_cpu_runtime()  # before torch is imported by any command

from yoho import __version__  # noqa: E402
from yoho.cli_group import OneLineErrorGroup  # noqa: E402
from yoho.commands import register  # noqa: E402
from yoho.web.cli import serve_cmd  # noqa: E402

app = typer.Typer(
    name="yoho",
    help="YOHO: single-image lesion segmentation (one network per image). "
    "Research use only, not a medical device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=OneLineErrorGroup,
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
