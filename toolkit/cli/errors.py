"""How a command ends on an error: the exit codes, and the one-line ``nlp-tool: error:`` failures."""

from __future__ import annotations

from typing import Any

import click

RUNTIME_FAILURE = 1
USAGE_ERROR = 2
# The shell's code for a process stopped by SIGINT (128 + 2).
INTERRUPTED = 130


class Failure(click.ClickException):
    """A runtime failure: one ``nlp-tool: error:`` line and exit code 1."""

    exit_code = RUNTIME_FAILURE

    def show(self, file: Any = None) -> None:
        click.echo(f"nlp-tool: error: {self.format_message()}", err=True)


class BadData(Failure):
    """Unusable training or evaluation data: one ``nlp-tool: error:`` line and exit code 2, like a usage error."""

    exit_code = USAGE_ERROR
