"""The module named by this package's ``nlp_tool`` entry point.

nlp-tool imports it at start-up (for ``nlp-tool --help`` too), so it stays
cheap: the engine module imports only ``re`` and nlp-tool's engine base class.
"""

from __future__ import annotations

from typing import Callable

from toolkit import hookimpl

from nlp_tool_keywords.engine import CONTRACT, RakeEngine


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    # The task's contract, declared once, before any engine of it is registered.
    register(CONTRACT)


@hookimpl
def register_engines(register: Callable[..., None]) -> None:
    # A task nlp-tool does not have yet: registering it creates the
    # `nlp-tool keywords` verb and makes toolkit.pipeline("keywords") work.
    register("keywords", "rake", RakeEngine, RakeEngine.description)
