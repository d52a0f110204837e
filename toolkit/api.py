"""The Python API: ``toolkit.pipeline`` and ``toolkit.tasks``.

The command line is a thin layer over these two functions.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from toolkit import __version__
from toolkit.engine import Engine
from toolkit.plugins import Registry, get_registry

DEFAULT_BATCH_SIZE = 32


def tasks(registry: Registry | None = None) -> dict[str, dict[str, str]]:
    """Every available task, mapped to its engines (engine name -> one-line description).

    The first engine of each task is its default. Example:
    ``{"summarize": {"lead": "First N sentences of the text ..."}}``.
    """
    registry = registry or get_registry()
    return {
        task: {name: entry.description for name, entry in engines.items()}
        for task, engines in registry.tasks().items()
    }


class Pipeline:
    """A ready engine for one task.

    ``p("text")`` returns one result dict; ``p([...])`` (a list, tuple or any
    other re-iterable collection) returns a list of dicts; ``p(iterator)``
    (a generator, a file, ...) returns a lazy iterator of dicts, pulling
    ``batch_size`` inputs at a time. For "question+context" engines one input
    is a mapping with "question" and "context" keys.
    Picklable, and safe to call from several threads (engines do not mutate
    themselves in ``run``).
    """

    def __init__(
        self,
        task: str,
        engine: str | None = None,
        model: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        registry: Registry | None = None,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        registry = registry or get_registry()
        entry = registry.engine(task, engine)
        self.task = task
        self.engine_name = entry.name
        self.plugin = entry.plugin
        self.plugin_version = registry.plugins[entry.plugin].version
        self.batch_size = batch_size
        self.engine: Engine = entry.engine_class(model=model, **options)

    def __call__(self, inputs: Any) -> Any:
        single = str if self.engine.inputs == "text" else Mapping
        if isinstance(inputs, single):
            return self.engine.run([inputs])[0]
        # A str, bytes or mapping here is one input of the wrong kind, not a collection of inputs.
        if isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, Mapping)):
            if isinstance(inputs, Iterator):
                return self._lazy(inputs)
            return [result for batch in self._batches(iter(inputs)) for result in self.engine.run(batch)]
        kind = "a str" if single is str else "a mapping with 'question' and 'context'"
        raise TypeError(
            f"{self.task}:{self.engine_name} takes {kind} or an iterable of them, not {type(inputs).__name__}"
        )

    def _batches(self, inputs: Iterator) -> Iterator[list]:
        while batch := list(itertools.islice(inputs, self.batch_size)):
            yield batch

    def _lazy(self, inputs: Iterator) -> Iterator[dict]:
        for batch in self._batches(inputs):
            yield from self.engine.run(batch)

    def stamp(self) -> dict:
        """What produces the results: tool, plugin, engine and model, with their versions."""
        return {
            "tool": "nlp-tool",
            "tool_version": __version__,
            "plugin": self.plugin,
            "plugin_version": self.plugin_version,
            **self.engine.stamp(),
        }

    def __repr__(self) -> str:
        return f"<Pipeline {self.task} {self.engine!r}>"


def pipeline(task: str, engine: str | None = None, model: str | None = None, **options: Any) -> Pipeline:
    """A ready :class:`Pipeline` for ``task``.

    ``engine`` picks one of the task's engines (default: its first one, see
    :func:`tasks`), ``model`` a model file or name for engines that use one;
    other keywords are the engine's declared options (``sentences=2``), plus
    ``batch_size``.
    """
    return Pipeline(task, engine, model, **options)
