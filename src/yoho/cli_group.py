"""One-line usage errors for the `yoho` command line.

Typer draws a usage error (an unknown option, a value outside an option's choices) as a
framed box of several lines; every other bad input of `yoho` is one `error: ...` line with
exit code 2, which scripts and log readers can rely on. This group gives usage errors the same
form, and keeps the rest of typer's behaviour (help, exit codes) as it is.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

try:  # typer vendors its own copy of click; its exceptions are the ones raised
    from typer._click import exceptions as click_errors
except ImportError:  # older typer: plain click
    from click import exceptions as click_errors

__all__ = ["OneLineErrorGroup"]


class OneLineErrorGroup(TyperGroup):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()  # the help text, as typer shows it
            sys.exit(exc.exit_code)
        except click_errors.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
            # typer checks choices with pydantic, whose messages start with "Value error, ".
            message = exc.format_message().replace("Value error, ", "")
            typer.echo(f"error: {message}{hint}", err=True)
            sys.exit(2)
        except click_errors.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)
