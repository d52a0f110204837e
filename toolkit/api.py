"""The Python API: ``toolkit.pipeline``, ``toolkit.tasks``, ``toolkit.train`` and ``toolkit.evaluate``.

The command line is a thin layer over these functions.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit import __version__
from toolkit.contracts import check_result
from toolkit.datasets import read_line_files, read_records, split_positions
from toolkit.engine import Engine, can_evaluate, can_stream, can_train, check_input, train_settings
from toolkit.errors import DataError, OptionError, RecordError, UnsupportedError
from toolkit.languages import annotate, detected, input_text, installed_models
from toolkit.plugins import EngineEntry, Registry, error_text, get_registry

DEFAULT_BATCH_SIZE = 32
# Guards the engines a pipeline makes for other languages' models: a pipeline may be called from several threads.
_ROUTES_LOCK = threading.Lock()
ON_ERROR = ("raise", "skip")


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


@dataclass(frozen=True)
class ErrorRecord:
    """What a pipeline with ``on_error="skip"`` gives in place of the result of an input that failed."""

    #: The exception in one line: "ValueError: cannot summarize BOOM".
    error: str
    exception: Exception = field(repr=False, compare=False)


class Pipeline:
    """A ready engine for one task.

    ``p("text")`` returns one result dict; ``p([...])`` (a list, tuple or any
    other re-iterable collection) returns a list of dicts; ``p(iterator)``
    (a generator, a file, ...) returns a lazy iterator of dicts, pulling
    ``batch_size`` inputs at a time. For "question+context" engines one input
    is a mapping with "question" and "context" keys.

    ``on_error="raise"`` (the default) lets an engine's exception through;
    ``"skip"`` runs a failing batch again one input at a time, so that one
    bad input does not fail its neighbours, and puts an :class:`ErrorRecord`
    in place of the result of each input that still fails. An engine that
    returns a result count other than its input count fails the batch with
    a RuntimeError.
    Picklable, and safe to call from several threads (engines do not mutate
    themselves in ``run``).

    With no ``model``, an input in a language another installed model of the
    engine reads goes to that model (its result names it); ``language``
    (a code such as "zh") runs every input with the installed model of that
    language. Results of a model that lists its languages carry their input's
    ``language`` and, where the model does not read it, a ``warning``
    (docs/languages.md).
    """

    def __init__(
        self,
        task: str,
        engine: str | None = None,
        model: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_error: str = "raise",
        language: str | None = None,
        registry: Registry | None = None,
        **options: Any,
    ) -> None:
        # bool is an int subclass, but batch_size=True is a mistake, not a batch of one.
        if not isinstance(batch_size, int) or isinstance(batch_size, bool):
            raise TypeError(f"batch_size must be an int, not {type(batch_size).__name__} ({batch_size!r})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        registry = registry or get_registry()
        entry = registry.engine(task, engine, model)
        self.task = task
        self.engine_name = entry.name
        self.plugin = entry.plugin
        self.plugin_version = registry.plugins[entry.plugin].version
        self.batch_size = batch_size
        self.on_error = on_error
        # The task's installed models by language (issue 24): with no model named, an input in the language of
        # another than the default goes to that one; ``language`` picks one for every input.
        if language is not None and model is not None:
            raise OptionError("language picks one of the task's installed models: give it or a model, not both")
        routes = installed_models(entry.engine_class) if model is None else {}
        if language is not None:
            if language not in routes:
                raise OptionError(f"no installed {task}:{entry.name} model for language {language!r} (installed:"
                                  f" {', '.join(sorted(routes)) or 'none'}); pass --model FILE")
            model, routes = routes[language], {}
        self.engine: Engine = entry.engine_class(model=model, **options)
        # Only an engine that runs its default model shares inputs with the others (not one whose options chose
        # to run without a model, or another).
        default = self.engine.model is not None and str(self.engine.model) == str(entry.engine_class.default_model)
        self.routes = {lang: path for lang, path in routes.items() if path != str(self.engine.model)} if default else {}
        self._options = options
        self._routed: dict[str, Engine] = {}

    def __call__(self, inputs: Any) -> Any:
        single = str if self.engine.inputs == "text" else Mapping
        if isinstance(inputs, single):
            return self._run([inputs])[0]
        # A str, bytes or mapping here is one input of the wrong kind, not a collection of inputs.
        if isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, Mapping)):
            results = self._results(iter(inputs))
            return results if isinstance(inputs, Iterator) else list(results)
        kind = {"text": "a str", "question+context": "a mapping with 'question' and 'context'",
                "dialogue": "a mapping with 'turns'"}.get(self.engine.inputs, "a mapping")
        raise TypeError(
            f"{self.task}:{self.engine_name} takes {kind} or an iterable of them, not {type(inputs).__name__}"
        )

    def _results(self, inputs: Iterator) -> Iterator[dict | ErrorRecord]:
        while batch := list(itertools.islice(inputs, self.batch_size)):
            yield from self._run(batch)

    def _run(self, batch: list) -> list[dict | ErrorRecord]:
        if self.on_error == "raise":
            return self._checked_run(batch)
        try:
            return self._checked_run(batch)
        except Exception as error:
            if len(batch) == 1:
                return [ErrorRecord(error_text(error), error)]
            # One bad input must not fail its neighbours: run them one at a time to find it.
            return [result for value in batch for result in self._run([value])]

    def _checked_run(self, batch: list) -> list[dict]:
        if not self.routes:
            return self._engine_run(self.engine, batch)
        found = detected([input_text(item) for item in batch])
        groups: dict[str, list[int]] = {}
        for i, language in enumerate(found):
            groups.setdefault(self.routes.get(language, ""), []).append(i)
        results: list[dict] = [{}] * len(batch)
        for path, rows in groups.items():
            engine = self._routed_engine(path) if path else self.engine
            for i, result in zip(rows, self._engine_run(engine, [batch[i] for i in rows], [found[i] for i in rows])):
                if engine is not self.engine:
                    result["model"] = (engine.loaded_metadata() or {}).get("name") or path
                results[i] = result
        return results

    def _routed_engine(self, path: str) -> Engine:
        """The engine of the installed model ``path`` (another language's), made on first use."""
        with _ROUTES_LOCK:
            if path not in self._routed:
                self._routed[path] = type(self.engine)(model=path, **self._options)
            return self._routed[path]

    def _engine_run(self, engine: Engine, batch: list, found: list[str] | None = None) -> list[dict]:
        for item in batch:
            check_input(type(engine), item)
        results = engine.run(batch)
        # Results are matched to inputs by position: a missing or extra one would shift every result after it.
        if not isinstance(results, list):
            raise RuntimeError(f"engine {self.task}:{self.engine_name} returned a {type(results).__name__},"
                               f" not a list of {len(batch)} results")
        if len(results) != len(batch):
            raise RuntimeError(f"engine {self.task}:{self.engine_name} returned {len(results)} results for"
                               f" {len(batch)} inputs")
        contract = type(engine).contract
        if contract is not None:
            # A malformed result is the engine's bug: said here, naming it, rather than by whatever reads it.
            for item, result in zip(batch, results):
                check_result(contract, f"{self.task}:{self.engine_name}", item, result)
        # Each result says its input's language, and warns where the model does not read it (issue 24).
        annotate(engine, batch, results, found)
        return results

    def stream(self, item: Any) -> Iterator[str]:
        """The text of one input's result in pieces as they are made (``generate``'s tokens as they come);
        joined, they are the text of ``self(item)`` with the same options. UnsupportedError for an engine
        that does not stream (:func:`toolkit.engine.can_stream`)."""
        check_input(type(self.engine), item)
        if not can_stream(type(self.engine)):
            raise UnsupportedError(f"engine {self.task}:{self.engine_name} does not stream its results")
        return self.engine.stream(item)

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
    ``batch_size`` and ``on_error`` (see :class:`Pipeline`).
    """
    return Pipeline(task, engine, model, **options)


def run(task: str, inputs: Any, engine: str | None = None, model: str | None = None, **options: Any) -> Any:
    """``pipeline(task, engine, model, **options)(inputs)`` in one call, for a one-off job.

    The engine (and its model) is built for this call alone: to run many
    calls, build a :func:`pipeline` once and call it.
    """
    return Pipeline(task, engine, model, **options)(inputs)


# A data file, aligned line files (one per record field), or the records themselves.
Data = str | os.PathLike | Sequence[str | os.PathLike] | Iterable[Mapping]


def _is_path(data: object) -> bool:
    return isinstance(data, (str, os.PathLike))


def _own_format(engine_class: type, data: Data, data_format: str | None, encoding: str) -> Data:
    """The records of a data file in the engine's own format (``Engine.read_data``), else ``data`` unchanged."""
    if data_format is not None or not _is_path(data):
        return data
    records = engine_class.read_data(os.fspath(data), encoding)
    return data if records is None else records


def load_data(
    data: Data,
    fields: tuple[str, ...],
    columns: Mapping[str, str] | None = None,
    data_format: str | None = None,
    encoding: str = "utf-8",
    header: bool = True,
) -> list[dict]:
    """Records keyed by ``fields`` from a data file (see :func:`toolkit.datasets.read_records`), from
    aligned line files (a list of paths, one per field: :func:`toolkit.datasets.read_line_files`) or dicts.

    ``columns`` maps a field to the column (or key) holding it, where that
    is not the field's own name; ``header=False`` reads CSV/TSV files
    without a header row. Raises DataError.
    """
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(fields))
    if unknown:
        raise DataError(f"no record field {', '.join(map(repr, unknown))} (the fields are {', '.join(fields)})")
    mapping = {field: columns.get(field, field) for field in fields}
    if _is_path(data):
        return read_records(os.fspath(data), mapping, data_format, encoding, header)
    if isinstance(data, (list, tuple)) and data and all(map(_is_path, data)):
        if columns:
            raise DataError("line files have no columns to choose; give the files in field order")
        return read_line_files([os.fspath(path) for path in data], fields, encoding)
    records = []
    for number, item in enumerate(data, 1):
        if not isinstance(item, Mapping):
            raise DataError(f"record {number}: expected a dict, not {type(item).__name__}")
        missing = [key for key in mapping.values() if item.get(key) is None]
        if missing:
            raise DataError(f"record {number}: no field {missing[0]!r} (fields: {', '.join(map(repr, item)) or 'none'})")
        records.append({field: item[key] for field, key in mapping.items()})
    if not records:
        raise DataError("no records")
    return records


def train(
    task: str,
    data: Data,
    engine: str | None = None,
    output: str | os.PathLike | None = None,
    *,
    valid: Data | None = None,
    valid_split: float = 0.1,
    columns: Mapping[str, str] | None = None,
    data_format: str | None = None,
    encoding: str = "utf-8",
    header: bool = True,
    seed: int = 0,
    progress: bool | None = None,
    registry: Registry | None = None,
    **options: Any,
) -> dict:
    """Train ``engine`` (default: the task's first trainable engine) of ``task`` and write its model file.

    ``data`` (and ``valid``) is a CSV/TSV/JSONL file (``header=False``: a
    CSV/TSV file without a header row), a list of aligned line files, one
    per record field in order (``["train.en", "train.de"]``), or a list of
    dicts keyed by the engine's ``record_fields`` (other names through ``columns``).
    Without ``valid``, ``valid_split`` of the records (stratified by label)
    are held out for validation; 0 holds out none. ``output`` defaults to
    ``TASK-ENGINE.nlpt`` in the current directory, and is replaced if it
    exists. Other keywords are the engine's ``train_options``.

    Returns the engine's report, after ``task``, ``engine``, ``model`` (the
    file written), ``train_records``, ``valid_records`` and ``seconds``.
    Raises DataError for unusable data (an engine's RecordError, which names
    a record of the part it was given, is renumbered to the record's place in
    ``data``), OptionError for a bad option, UnsupportedError (a
    NotImplementedError) for an engine that cannot be trained.
    """
    registry = registry or get_registry()
    entry = capable_engine(registry, task, engine, can_train, "trained")
    cls = entry.engine_class
    settings = train_settings(cls, options)
    records = load_data(_own_format(cls, data, data_format, encoding), cls.record_fields, columns, data_format,
                        encoding, header)
    places: dict[str, list[int]] | None = None
    if valid is not None:
        valid = _own_format(cls, valid, data_format, encoding)
        held_out: list[dict] | None = load_data(valid, cls.record_fields, columns, data_format, encoding, header)
    elif valid_split:
        train_rows, valid_rows = split_positions(records, valid_split, seed)
        places = {"training data": [i + 1 for i in train_rows], "validation data": [i + 1 for i in valid_rows]}
        records, held_out = [records[i] for i in train_rows], [records[i] for i in valid_rows]
    else:
        held_out = None
    output = os.fspath(output) if output is not None else f"{task}-{entry.name}.nlpt"
    start = time.perf_counter()
    try:
        report = cls.train(records, output, valid=held_out, seed=seed, progress=progress, **settings)
    except RecordError as error:
        # The engine numbers the records of the part it was given; the user knows them by their place
        # in the data.
        place = places.get(error.part, []) if places is not None else []
        if not 1 <= error.number <= len(place):
            raise
        raise RecordError("training data", place[error.number - 1], error.problem) from error
    seconds = time.perf_counter() - start
    if not isinstance(report, dict):
        raise RuntimeError(f"engine {task}:{entry.name} returned a {type(report).__name__} from train, not a dict")
    if not os.path.isfile(output):
        raise RuntimeError(f"engine {task}:{entry.name} wrote no model file at {output}")
    ours = {
        "task": task,
        "engine": f"{task}:{entry.name}",
        "model": output,
        "train_records": len(records),
        "valid_records": len(held_out or []),
        "seconds": round(seconds, 3),
    }
    # What the caller knows wins over the engine's own keys of the same name.
    return {**ours, **{key: value for key, value in report.items() if key not in ours}}


def evaluate(
    task: str,
    data: Data,
    engine: str | None = None,
    model: str | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    data_format: str | None = None,
    encoding: str = "utf-8",
    header: bool = True,
    registry: Registry | None = None,
    **options: Any,
) -> dict:
    """Metrics of ``engine`` (default: the task's first engine that can be evaluated) with ``model`` on ``data``.

    ``data`` as for :func:`train`; other keywords are the engine's run
    options (as for :func:`pipeline`). Returns the engine's metrics dict.
    """
    registry = registry or get_registry()
    entry = capable_engine(registry, task, engine, can_evaluate, "evaluated", model)
    cls = entry.engine_class
    records = load_data(_own_format(cls, data, data_format, encoding), cls.record_fields, columns, data_format,
                        encoding, header)
    return cls(model=model, **options).evaluate(records)


def capable_engine(
    registry: Registry, task: str, engine: str | None, capable: Callable[[type], bool], verb: str,
    model: str | None = None,
) -> EngineEntry:
    """The entry of ``engine``, or of the engine that runs the checkpoint ``model`` names, or of the task's first
    engine for which ``capable`` holds (``can_train``, ``can_evaluate``); UnsupportedError (a
    NotImplementedError), naming the engines that can, when it does not hold."""
    engines = registry.tasks().get(task, {})
    if engine is None and model is not None:
        found = registry.checkpoint_engine(task, model)
        engine = found.name if found is not None else None
    if engine is None:
        # The task's default engine may be rule-based; the first trainable one is the natural default.
        engine = next((name for name, entry in engines.items() if capable(entry.engine_class)), None)
        if engine is None and engines:
            raise UnsupportedError(f"no engine of task {task!r} can be {verb} (engines: {', '.join(engines)})")
    entry = registry.engine(task, engine)
    if not capable(entry.engine_class):
        able = ", ".join(name for name, e in engines.items() if capable(e.engine_class)) or "none"
        raise UnsupportedError(f"engine {task}:{entry.name} cannot be {verb} (engines that can: {able})")
    return entry
