"""How a command ends on an error: one ``nlp-tool: error:`` line (click's usage message for usage errors)
and the exit code of the error's class (``toolkit.errors``); 1 for any other exception, 130 for Ctrl-C,
141 when the reader of stdout went away."""

from __future__ import annotations

from typing import Any

import click

from toolkit.errors import RUNTIME_FAILURE, ColumnError, DataError, NlpToolError, UsageError
from toolkit.plugins import error_text

# The shell's codes for a process stopped by SIGINT (128 + 2) and by SIGPIPE (128 + 13), as Unix tools end.
INTERRUPTED = 130
BROKEN_PIPE = 141


def interrupted(detail: str = "") -> click.exceptions.Exit:
    """Ctrl-C (or SIGTERM): ``nlp-tool: interrupted`` and ``detail`` on stderr; the exit to raise (130)."""
    click.echo(f"nlp-tool: interrupted{detail}", err=True)
    return click.exceptions.Exit(INTERRUPTED)


class Failure(click.ClickException):
    """A failure shown as one ``nlp-tool: error:`` line, ending the command with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = RUNTIME_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"nlp-tool: error: {self.format_message()}", err=True)


def reported(error: Exception, what: str | None = None, ctx: click.Context | None = None) -> click.ClickException:
    """``error`` as the command line reports it, with the exit code of its class (1 outside the family).

    A usage error is click's (the command's usage line, then ``Error: ...``);
    bad data is told as the error tells it, since it names the file and line;
    anything else is what failed (``what``), then the error's type and first line.
    """
    if isinstance(error, UsageError):
        return click.UsageError(str(error), ctx)
    if isinstance(error, ColumnError):
        return Failure(f"{error}; choose the column with --{error.field.replace('_', '-')}-column", error.exit_code)
    if isinstance(error, DataError):
        return Failure(str(error), error.exit_code)
    code = error.exit_code if isinstance(error, NlpToolError) else RUNTIME_FAILURE
    return Failure(f"{what}: {error_text(error)}" if what else error_text(error), code)


class ReportingCommand(click.Command):
    """A command that reports a ``toolkit.errors`` error it lets through (see :func:`reported`),
    or with ``--debug`` shows its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NlpToolError as error:
            if ctx.params.get("debug"):
                raise
            raise reported(error, ctx=ctx) from error
