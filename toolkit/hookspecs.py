"""The hooks a plugin can implement.

Every hook here has a section in docs/plugins.md and a test; the suite
fails if one is added without either (tests/test_hooks_documented.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("nlp_tool")


@hookspec
def register_tasks(register: Callable[..., None]) -> None:
    """Declare the contracts of the tasks this plugin creates.

    Call ``register(contract)`` once per task with a
    :class:`toolkit.contracts.TaskContract`: its input kind, the keys and
    types of its results (and a check of their offsets), its options shared
    by every engine and which of them exclude each other. Engines registered
    for the task, by this plugin or any other, are held to it. Declaring a
    task that another plugin declared fails this plugin.
    """


@hookspec
def register_engines(register: Callable[..., None]) -> None:
    """Register engines for tasks.

    Call ``register(task, engine, engine_class, description)`` once per
    engine: ``task`` is the task (and command-line verb) name such as
    ``"summarize"``, ``engine`` the engine name such as ``"lead"``,
    ``engine_class`` a subclass of :class:`toolkit.engine.Engine` and
    ``description`` one line shown by ``nlp-tool tasks``. A new task name
    creates a new verb; an existing one adds an engine to it. Claiming a
    task+engine pair that another plugin already registered fails this plugin.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the top-level ``nlp-tool`` click group.

    Use ``@cli.command()`` (or ``cli.add_command``) to add commands that are
    not task verbs, for instance to download or inspect models.
    """
