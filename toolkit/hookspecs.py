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
