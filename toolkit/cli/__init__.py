"""The ``nlp-tool`` command line: a thin click front end over ``toolkit.api``.

Task verbs are built from the registry when the group first lists or looks
up its commands. Nothing here imports numpy; engines load their heavy
dependencies when they are constructed, so ``--help``, ``plugins`` and
``tasks`` stay fast.

- ``group``: the command group, which loads the plugins, and how commands end on Ctrl-C, SIGTERM
  and a closed stdout;
- ``options``: flags from the ``Option``s engines declare;
- ``task_verb`` and ``task_output``: running a task and writing its results;
- ``train_evaluate``: ``train TASK`` and ``evaluate TASK``;
- ``plugin_commands``: ``tasks``, ``plugins``, ``install``, ``uninstall``;
- ``render``: reports and tables; ``errors``: exit codes and failures.
"""

from __future__ import annotations

import sys

try:
    from typing import Callable

    import click

    from toolkit import __version__
    from toolkit.cli.group import NlpToolGroup, handle_signals
    from toolkit.cli.plugin_commands import install_command, plugins_command, tasks_command, uninstall_command
    from toolkit.cli.train_evaluate import TaskGroup, make_evaluate_command, make_train_command
    from toolkit.engine import can_evaluate, can_train
    from toolkit.plugins import Registry, get_registry
except KeyboardInterrupt:
    # Ctrl-C during these imports, most of the command's start-up and before click can catch anything, ends
    # it as a Ctrl-C later does (toolkit.cli.errors.interrupted, itself maybe not imported yet).
    sys.stderr.write("nlp-tool: interrupted\n")
    raise SystemExit(130) from None

__all__ = ["cli", "make_cli"]


def make_cli(registry_factory: Callable[[], Registry] = get_registry) -> NlpToolGroup:
    """A fresh ``nlp-tool`` group over the registry ``registry_factory`` returns (tests use their own)."""

    @click.group(cls=NlpToolGroup, registry_factory=registry_factory, name="nlp-tool")
    @click.version_option(__version__, prog_name="nlp-tool")
    def group() -> None:
        """nlp-tool: NLP tasks on a C-accelerated core.

        Each task is a command; `nlp-tool tasks` lists the tasks and their
        engines, `nlp-tool plugins` the plugins that provide them.
        """
        handle_signals()

    for command in (tasks_command, plugins_command, install_command, uninstall_command):
        group.add_command(command)
    for name, capable, make_command, verb, help_text, short_help in (
        ("train", can_train, make_train_command, "trained",
         "Train a model: `nlp-tool train TASK DATA`; `nlp-tool train TASK --help` lists its options.",
         "Train a model for a task on labelled data."),
        ("evaluate", can_evaluate, make_evaluate_command, "evaluated",
         "Score an engine and its model: `nlp-tool evaluate TASK DATA --model FILE`.",
         "Evaluate a model of a task on labelled data."),
    ):
        group.add_command(TaskGroup(name=name, capable=capable, make_command=make_command, verb=verb,
                                    help=help_text, short_help=short_help))
    return group


cli = make_cli()
