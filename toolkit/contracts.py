"""Task contracts: what every engine of a task takes, answers and shares, declared once per task.

A plugin that creates a task declares its :class:`TaskContract` through the
``register_tasks`` hook; an engine registered for the task is then held to
it. The registry refuses an engine whose input kind differs, or that
re-declares a shared option otherwise than the contract, and gives every
engine the contract's shared options (a plugin author adds an engine to an
existing task without copying any option). ``Engine.__init__`` applies the
contract's exclusions ("at most one of sentences, ratio and words"),
``toolkit.pipeline`` checks every result against it, and
``toolkit.testing.check_contract`` checks an engine against it in a plugin's
own test suite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toolkit.engine import Option
from toolkit.errors import NlpToolError

#: The JSON types a result key may have, by the names contracts use for them.
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "number": (int, float), "bool": (bool,), "list": (list,), "object": (dict,),
    "null": (type(None),),
}


class ContractError(NlpToolError):
    """An engine's result breaks its task's contract: a bug of the engine (or its plugin), not of the input."""


@dataclass(frozen=True)
class TaskContract:
    """What every engine of ``task`` takes and answers.

    ``results`` maps each required key of a result to its JSON types (names of
    ``JSON_TYPES`` joined by "|", e.g. "str|null"); ``check(input, result)``
    returns what else is wrong with a result (offsets that do not quote the
    input, say), or None. ``options`` are shared by every engine of the task;
    of each group in ``exclusive`` at most one may be set (given a value
    other than its default). ``arguments`` says what the task verb's
    arguments are: "files" (inputs read from them) or "texts" (each one an
    input, as a prompt is for ``generate``; files then come with ``--file``).
    """

    task: str
    inputs: str
    description: str
    results: Mapping[str, str]
    options: Mapping[str, Option] = field(default_factory=dict)
    exclusive: tuple[tuple[str, ...], ...] = ()
    check: Callable[[Any, dict], str | None] | None = None
    arguments: str = "files"

    def problem(self, item: Any, result: Any) -> str | None:
        """What is wrong with ``result`` as the answer to ``item``, or None."""
        if not isinstance(result, dict):
            return f"a result is a dict, not {type(result).__name__}"
        for key, kinds in self.results.items():
            if key not in result:
                return f"the result has no {key!r} (a {self.task} result has {', '.join(map(repr, self.results))})"
            allowed = tuple(t for kind in kinds.split("|") for t in JSON_TYPES[kind])
            value = result[key]
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                return f"the result's {key!r} is {type(value).__name__} {value!r:.60}, not {kinds}"
        return self.check(item, result) if self.check is not None else None

    def engine_problem(self, inputs: str, options: Mapping[str, Option]) -> str | None:
        """How an engine taking ``inputs`` and declaring ``options`` breaks this task's declaration (other inputs,
        or a shared option declared otherwise), or None."""
        if inputs != self.inputs:
            return f"the {self.task} task takes {self.inputs!r} inputs, not {inputs!r}"
        differ = sorted(name for name, option in self.options.items() if options.get(name, option) != option)
        if differ:
            return (f"options {differ} are shared by every engine of the {self.task} task; leave them out of the"
                    " engine's options (it gets the task's) or declare them as the task does")
        return None

    def settings_problem(self, settings: Mapping[str, Any]) -> str | None:
        """Which options of an ``exclusive`` group are set together, or None."""
        for group in self.exclusive:
            given = [name for name in group if settings.get(name) != self.options[name].default]
            if len(given) > 1:
                return f"options {given[0]!r} and {given[1]!r} cannot be used together"
        return None


def check_result(contract: TaskContract, engine: str, item: Any, result: Any) -> None:
    """ContractError naming ``engine`` and the problem unless ``result`` keeps ``contract``."""
    problem = contract.problem(item, result)
    if problem is not None:
        raise ContractError(f"engine {engine} broke the {contract.task} contract: {problem}")


def quotes(text: str, start: Any, end: Any, quoted: Any, what: str) -> str | None:
    """Offsets that do not quote ``text`` (``text[start:end] == quoted``), said in words; None when they do."""
    if not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)
            and 0 <= start <= end <= len(text)):
        return f"{what} has offsets {start!r}:{end!r} outside the input (0:{len(text)})"
    if text[start:end] != quoted:
        return f"{what} {quoted!r:.40} is not the input's text at {start}:{end} ({text[start:end]!r:.40})"
    return None
