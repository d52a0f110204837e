"""The ``nlp-tool`` command group, which loads the plugins on first use, and how every command ends on
Ctrl-C, SIGTERM or a reader of stdout that went away."""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from typing import Any, Callable, NoReturn

import click

from toolkit import io
from toolkit.cli.errors import BROKEN_PIPE, interrupted
from toolkit.cli.task_verb import make_task_command
from toolkit.interrupts import keep_swallowed, raise_swallowed
from toolkit.plugins import PluginWarning, Registry, get_registry


class NlpToolGroup(click.Group):
    """The top-level group; loads the plugins on first use and adds their verbs and commands."""

    def __init__(self, *args: Any, registry_factory: Callable[[], Registry] = get_registry, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registry_factory = registry_factory
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        """The loaded registry; the first access loads the plugins and adds their verbs and commands."""
        if self._registry is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PluginWarning)
                self._registry = self._registry_factory()
            for warning in caught:
                if issubclass(warning.category, PluginWarning):
                    click.echo(f"nlp-tool: warning: {warning.message}", err=True)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
            # Commands first: a plugin whose register_commands fails loses its engines too, and the
            # verbs built below must not offer them.
            self._registry.add_commands(self)
            for task, engines in self._registry.tasks().items():
                if task in self._registry.own_verbs:
                    continue  # the plugin that declares the task gave it its own verb
                if task in self.commands:
                    plugins = ", ".join(sorted({e.plugin for e in engines.values()}))
                    click.echo(
                        f"nlp-tool: warning: task {task!r} (plugin {plugins}) has the name of a command;"
                        " it has no verb, use toolkit.pipeline",
                        err=True,
                    )
                    continue
                self.add_command(make_task_command(task, engines, self._registry))
        return self._registry

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        """click's lookup; a command that is missing because a plugin failed to load says which and why."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            failures = self.registry.failures_said()
            if failures and args and self.get_command(ctx, args[0]) is None:
                raise click.UsageError(f"{error.message.rstrip('.')}{failures}", ctx) from None
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        _ = self.registry
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _ = self.registry
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C (and SIGTERM) anywhere in it, loading the plugins included, ends it with
        one line and 130, and a reader of stdout that went away (``| head``) ends it quietly with 141."""
        try:
            result = super().invoke(ctx)
            raise_swallowed()  # a Ctrl-C Python could not raise where it came (toolkit.interrupts)
            return result
        except KeyboardInterrupt:
            raise interrupted() from None
        except BrokenPipeError:
            io.abandon(sys.stdout)
            raise click.exceptions.Exit(BROKEN_PIPE) from None


def registry_of(ctx: click.Context) -> Registry:
    """The registry of the ``nlp-tool`` group that ``ctx`` runs under."""
    return ctx.find_root().command.registry


def handle_signals() -> None:
    """Handle SIGTERM as Ctrl-C from now on, and keep a Ctrl-C Python swallowed (toolkit.interrupts).

    By default SIGTERM (`kill`, `timeout`) ends the process on the spot,
    leaving the temporary file of an --output or a model behind and a
    training run without its last checkpoint; handled as Ctrl-C, it goes
    through the same clean-up and saving.
    """
    # Only the main thread may set a signal handler (tests invoke the group from others).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        keep_swallowed()


def _terminate(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt
