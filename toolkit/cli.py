"""The ``nlp-tool`` command line: a thin click front end over ``toolkit.api``.

Task verbs are built from the registry when the group first lists or looks
up its commands. Nothing here imports numpy; engines load their heavy
dependencies when they are constructed, so ``--help``, ``plugins`` and
``tasks`` stay fast.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn

import click

from toolkit import __version__, io
from toolkit.datasets import DATA_FORMATS, ColumnError
from toolkit.engine import DataError, Option, OptionError, can_evaluate, can_train, takes_model
from toolkit.plugins import EngineEntry, PluginInfo, Registry, get_registry, normalize, set_disabled
from toolkit.progress import ElapsedTicker, ProgressBar

if TYPE_CHECKING:
    from toolkit.api import Pipeline

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


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


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
            self._registry = self._registry_factory()
            # Commands first: a plugin whose register_commands fails loses its engines too, and the
            # verbs built below must not offer them.
            self._registry.add_commands(self)
            for task, engines in self._registry.tasks().items():
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

    def list_commands(self, ctx: click.Context) -> list[str]:
        _ = self.registry
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _ = self.registry
        return super().get_command(ctx, cmd_name)


def _registry(ctx: click.Context) -> Registry:
    return ctx.find_root().command.registry


# -- task verbs -------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option_params(
    engines: dict[str, EngineEntry], attribute: str, skip: tuple[str, ...] = ()
) -> tuple[list[click.Parameter], dict[str, list[str]]]:
    """One flag per option (``options`` or ``train_options``) the engines declare, and which engines declare each.

    A flag shared by several engines is made once, from the first; its help
    lists every engine's default. Options named in ``skip`` have a common
    flag of their own.
    """
    params: list[click.Parameter] = []
    declared: dict[str, list[str]] = {}
    for name, entry in engines.items():
        for key, option in getattr(entry.engine_class, attribute).items():
            declared.setdefault(key, []).append(name)
            if key in skip or len(declared[key]) > 1:
                continue
            flags = option.flags(key)
            # click spells a bool's pair "--name/--no-name".
            declared_flags = [f"{flags[0]}/{flags[1]}", *flags[2:]] if option.type is bool else list(flags)
            params.append(
                click.Option(
                    [*declared_flags, key],
                    # click.Choice compares strings; other choices are checked by Option.convert.
                    type=click.Choice(option.choices)
                    if option.choices and all(isinstance(c, str) for c in option.choices)
                    else option.type,
                    default=None,
                    help=option.help + (f" [{option.range_text()}]" if option.range_text() else ""),
                )
            )
    for param in params:
        # An empty default ("" or None) means "none": the option's help says what happens then.
        defaults = ", ".join(
            f"{e}: {default}" for e in declared[param.name]
            if (default := getattr(engines[e].engine_class, attribute)[param.name].default) not in ("", None)
        )
        if defaults:
            param.help += f"  [default for engine {defaults}]"
    return params, declared


def _describe(option: Option) -> dict[str, Any]:
    """An option as ``nlp-tool tasks --json`` lists it."""
    described = {"type": option.type.__name__, "default": option.default, "help": option.help}
    if option.range_text():
        described["range"] = option.range_text()
    return described


def _checked_options(engine: str, options: dict, accepted: dict, declared: dict[str, list[str]]) -> dict:
    """``options`` checked by their ``accepted`` Options; a usage error, naming the flag, for a value
    out of bounds or a flag that ``engine`` does not declare (it belongs to another engine of the task)."""
    for key in options:
        if key not in accepted:
            owners = ", ".join(declared.get(key, [])) or "no engine"
            raise click.UsageError(f"engine {engine!r} has no option {_flag(key)} (it belongs to: {owners})")
    try:
        # Named by their flags here; the engine checks them again, by name, for API callers.
        return {key: accepted[key].convert(_flag(key), value) for key, value in options.items()}
    except OptionError as error:
        raise click.UsageError(str(error)) from error


def make_task_command(task: str, engines: dict[str, EngineEntry], registry: Registry) -> click.Command:
    """The verb for ``task``: the common I/O options plus every option its engines declare."""
    names = list(engines)
    default = names[0]
    engine_params, declared = _option_params(engines, "options", skip=("top_k",))
    top_k_defaults = ", ".join(
        f"{name}: {entry.engine_class.options['top_k'].default}"
        for name, entry in engines.items()
        if "top_k" in entry.engine_class.options
    )
    takes_question = any(entry.engine_class.inputs == "question+context" for entry in engines.values())

    params: list[click.Parameter] = [
        click.Argument(["inputs"], nargs=-1, metavar="[FILE|GLOB|-]..."),
        click.Option(["--text", "-t"], multiple=True, help="Inline input text (repeatable)."),
        click.Option(
            ["--input-format", "-i"],
            type=click.Choice(io.INPUT_FORMATS),
            default="text",
            show_default=True,
            help="text: one input per file; lines: one per non-empty line; jsonl: one per JSON object.",
        ),
        click.Option(["--encoding"], default="utf-8", show_default=True,
                     help="Text encoding of the input files and stdin (a UTF-8 byte-order mark is skipped)."),
        click.Option(["--text-field"], default="text", show_default=True, help="JSONL field holding the text."),
        click.Option(["--id-field"], default="id", show_default=True, help="JSONL field holding the record id."),
        click.Option(
            ["--format", "-f", "fmt"],
            type=click.Choice(io.OUTPUT_FORMATS),
            default="text",
            show_default=True,
            help="Output format.",
        ),
        click.Option(
            ["--output", "-o"],
            type=click.Path(dir_okay=False, writable=True),
            help="Write to FILE (atomically: complete or not at all) instead of stdout.",
        ),
        click.Option(
            ["--engine", "-e"],
            type=click.Choice(names),
            default=default,
            show_default=True,
            help="Engine to run.",
        ),
        click.Option(["--model", "-m"], help="Model file (default: the engine's shipped model, if it has one)."),
        # Only where some engine ranks: on other verbs the flag could never be used.
        *([click.Option(["--top-k", "top_k"], type=click.IntRange(min=1),
                        help=f"Number of ranked results, for engines that rank.  [default for engine {top_k_defaults}]")]
          if top_k_defaults else []),
        click.Option(["--batch-size"], type=click.IntRange(min=1), default=32, show_default=True, help="Inputs per engine call."),
        click.Option(
            ["--on-error"],
            type=click.Choice(["stop", "skip"]),
            default="stop",
            show_default=True,
            help="On a failing input: stop there, or report it and go on with the others.",
        ),
        click.Option(["--explain"], is_flag=True, help="Say which plugin, engine and model would run, and exit."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress display."),
        click.Option(["--debug"], is_flag=True, help="Show tracebacks of errors."),
    ]
    if takes_question:
        params[2:2] = [
            click.Option(["--question"], help="Question asked of every input text (its context)."),
            click.Option(
                ["--context", "-c"],
                metavar="FILE",
                help="The document to ask (FILE or - for stdin); the arguments are then questions, not files.",
            ),
            click.Option(
                ["--questions"], metavar="FILE", help="Questions asked of --context, one per non-empty line."
            ),
        ]
    params += engine_params

    lines = [f"Run the {task!r} task on files, stdin or --text.", "", "\b", "Engines:"]
    lines += [f"  {name}{' (default)' if name == default else ''}: {entry.description}" for name, entry in engines.items()]
    lines += ["", "With no FILE, or when FILE is -, read standard input. Details: docs/cli.md."]
    if takes_question:
        lines += ["", f"With --context FILE the arguments are questions: nlp-tool {task} --context doc.txt \"Who?\""]

    def callback(**kwargs: Any) -> None:
        # --top-k is a common flag, passed on as the top_k option of engines that declare it.
        engine_options = {key: kwargs.pop(key) for key in declared if key != "top_k"}
        run_task(task, registry, engine_options, declared, **kwargs)

    short_help = f"Run the {task} task ({', '.join(engines)})."
    return click.Command(task, params=params, callback=callback, help="\n".join(lines), short_help=short_help)


def run_task(
    task: str,
    registry: Registry,
    engine_options: dict,
    declared: dict[str, list[str]],
    *,
    inputs: tuple[str, ...],
    text: tuple[str, ...],
    input_format: str,
    text_field: str,
    id_field: str,
    fmt: str,
    output: str | None,
    engine: str,
    model: str | None,
    batch_size: int,
    on_error: str,
    explain: bool,
    quiet: bool,
    debug: bool,
    encoding: str,
    top_k: int | None = None,
    question: str | None = None,
    context: str | None = None,
    questions: str | None = None,
) -> None:
    """A task verb: check the arguments (usage errors, exit 2), then run and write (runtime errors, exit 1)."""
    entry = registry.engine(task, engine)
    accepted = entry.engine_class.options
    options = {key: value for key, value in engine_options.items() if value is not None}
    if top_k is not None:
        options["top_k"] = top_k
    options = _checked_options(engine, options, accepted, declared)

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise click.UsageError(f"unknown encoding {encoding!r}") from None

    if explain:
        explain_run(registry, entry, model, options, fmt)
        return

    if context is not None or questions is not None:
        records = _question_records(context, questions, question, inputs, text, encoding)
    else:
        try:
            sources = io.expand_sources(inputs)
        except io.InputError as error:
            raise click.UsageError(str(error)) from error
        if not sources and not text:
            if sys.stdin.isatty():
                raise click.UsageError("no input: give files, --text, or pipe text to stdin")
            sources = ["-"]
        if entry.engine_class.inputs == "question+context" and question is None and input_format != "jsonl":
            raise click.UsageError(
                f"engine {engine!r} needs --context FILE with questions, --question, or JSONL records with"
                " 'question' and 'context'"
            )
        records = io.read_records(sources, text, input_format, text_field, id_field, question,
                                  pairs=entry.engine_class.inputs == "question+context", encoding=encoding)

    from toolkit.api import Pipeline

    try:
        pipe = Pipeline(task, engine, model, batch_size=batch_size, registry=registry, **options)
    except OptionError as error:
        raise click.UsageError(str(error)) from error
    except Exception as error:
        if debug:
            raise
        raise Failure(f"cannot start engine {task}:{engine}: {_one_line(error)}") from error

    try:
        out = io.AtomicOutput(output)
    except OSError as error:
        raise Failure(f"cannot write {output}: {error.strerror or error}") from error
    try:
        failed = _process(pipe, records, out, fmt, on_error, quiet, debug)
        out.commit()
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): click exits quietly.
        out.discard()
        raise
    except OSError as error:
        # Engine errors are caught per input in _run_batch, so this is the output failing (disk full, ...).
        out.discard()
        if debug:
            raise
        raise Failure(f"cannot write the output: {error}") from error
    except BaseException:
        out.discard()
        raise
    if failed:
        raise Failure(f"{failed} input(s) failed; the results of the others were written")


def _question_records(
    context: str | None, questions: str | None, question: str | None, inputs: tuple[str, ...], text: tuple[str, ...],
    encoding: str,
) -> Iterator[io.Record]:
    """The inputs of ``--context FILE`` with questions as arguments, ``--question`` or ``--questions FILE``."""
    if context is None:
        raise click.UsageError("--questions needs --context FILE (the document the questions are asked of)")
    if text:
        raise click.UsageError("with --context, give the questions as arguments or --questions FILE, not --text")
    if context == "-" and questions == "-":
        raise click.UsageError("--context and --questions cannot both read stdin")
    asked = ([question] if question is not None else []) + list(inputs)
    if not asked and questions is None:
        raise click.UsageError("no question: give questions as arguments, --question or --questions FILE")
    if any(not q.strip() for q in asked):
        raise click.UsageError("a question is empty")
    try:
        return io.question_records(context, asked, questions, encoding=encoding)
    except io.InputError as error:
        raise click.UsageError(str(error)) from error


def _process(
    pipe: Pipeline, records: Iterator[io.Record], out: io.AtomicOutput, fmt: str, on_error: str, quiet: bool, debug: bool
) -> int:
    """Run ``records`` through ``pipe`` a batch at a time and write the results; the number of failed inputs."""
    first_two = list(itertools.islice(records, 2))
    many = len(first_two) > 1
    records = itertools.chain(first_two, records)
    writer = io.Writer(out.stream, fmt, pipe.stamp(), pipe.engine.format_text, many)
    progress = ProgressBar(None, "nlp-tool:", unit="inputs", enabled=many and not quiet and sys.stderr.isatty(),
                           leave=False)
    failed = 0
    try:
        for batch in _batches(records, pipe.batch_size):
            for record, result, error in _run_batch(pipe, batch, debug):
                if error is None:
                    try:
                        writer.result(record.id, result)
                        continue
                    except Exception as problem:  # a plugin's result or format_text: the input fails, not the run
                        if debug:
                            raise
                        error = f"its result cannot be written: {_one_line(problem)}"
                failed += 1
                writer.error(record.id, error)
                if on_error == "stop":
                    # What went to stdout stays readable: a JSON array ends with the error object.
                    writer.close()
                    raise Failure(f"input {record.id!r}: {error}")
                click.echo(f"nlp-tool: error: input {record.id!r}: {error}", err=True)
            progress.update(len(batch))
        writer.close()
    finally:
        progress.close()
    return failed


def _batches(records: Iterator[io.Record], size: int) -> Iterator[list[io.Record]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


def _run_batch(
    pipe: Pipeline, batch: list[io.Record], debug: bool
) -> Iterator[tuple[io.Record, dict | None, str | None]]:
    """(record, result, error message) per record; a failing batch is retried one by one to find the culprit."""
    good = [r for r in batch if r.error is None]
    try:
        results = _checked_run(pipe, [r.value for r in good])
    except Exception:
        if debug:
            raise
        results = None
    position = 0
    for record in batch:
        if record.error is not None:
            yield record, None, record.error
        elif results is not None:
            yield record, results[position], None
            position += 1
        else:
            try:
                yield record, _checked_run(pipe, [record.value])[0], None
            except Exception as error:
                yield record, None, _one_line(error)


def _checked_run(pipe: Pipeline, values: list) -> list[dict]:
    results = pipe.engine.run(values)
    if not isinstance(results, list) or len(results) != len(values):
        count = len(results) if isinstance(results, list) else type(results).__name__
        raise RuntimeError(f"engine {pipe.task}:{pipe.engine_name} returned {count} results for {len(values)} inputs")
    return results


def explain_run(registry: Registry, entry: EngineEntry, model: str | None, options: dict, fmt: str) -> None:
    cls = entry.engine_class
    plugin = registry.plugins[entry.plugin]
    settings = {key: options.get(key, option.default) for key, option in cls.options.items()}
    info = {
        "task": entry.task,
        "engine": entry.name,
        "engine_version": cls.version,
        "description": entry.description,
        "plugin": plugin.name,
        "plugin_version": plugin.version,
        "source": plugin.source,
        "package": plugin.package,
        "model": model if model is not None else cls.default_model,
        "inputs": cls.inputs,
        "options": settings,
    }
    if fmt in ("json", "jsonl"):
        click.echo(json.dumps(info, ensure_ascii=False, indent=2 if fmt == "json" else None))
        return
    source = "built-in" if plugin.source == "built-in" else f"package {plugin.package}"
    click.echo(f"task:    {entry.task}")
    click.echo(f"engine:  {entry.name} {cls.version} — {entry.description}")
    click.echo(f"plugin:  {plugin.name} {plugin.version or ''} ({source})")
    if info["model"]:
        model_line = info["model"]
    elif takes_model(cls):
        model_line = "none: this engine needs --model FILE" + (
            f" (train one with `nlp-tool train {entry.task} DATA --engine {entry.name}`)" if can_train(cls) else "")
    else:
        model_line = "none (the engine needs no model)"
    click.echo(f"model:   {model_line}")
    click.echo(f"inputs:  {cls.inputs}")
    click.echo("options: " + (", ".join(f"{k}={v!r}" for k, v in settings.items()) or "none"))


# -- train and evaluate -----------------------------------------------------


class TaskGroup(click.Group):
    """``train`` or ``evaluate``: one subcommand per task with an engine that can do it.

    The subcommands are built from the registry on first use, like the task
    verbs, because their flags (record field columns, engine options) come
    from the engines. A task whose engines cannot do it gets a clear usage
    error instead of click's "no such command".
    """

    def __init__(
        self,
        *args: Any,
        capable: Callable[[type], bool],
        make_command: Callable[[str, dict[str, EngineEntry], Registry], click.Command],
        verb: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.capable = capable
        self.make_command = make_command
        self.verb = verb
        self._built = False

    def _build(self, ctx: click.Context) -> Registry:
        registry = _registry(ctx)
        if not self._built:
            self._built = True
            for task, engines in registry.tasks().items():
                if any(self.capable(entry.engine_class) for entry in engines.values()):
                    self.add_command(self.make_command(task, engines, registry))
        return registry

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._build(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        registry = self._build(ctx)
        command = super().get_command(ctx, cmd_name)
        engines = registry.tasks().get(cmd_name)
        if command is None and engines:
            raise click.UsageError(f"no engine of task {cmd_name!r} can be {self.verb} (engines: {', '.join(engines)})")
        return command


def _data_params(
    engines: dict[str, EngineEntry], capable: Callable[[type], bool], data_required: bool = True
) -> tuple[list[click.Parameter], dict[str, str]]:
    """DATA, --data-format, --no-header, --encoding and one ``--<field>-column`` per record field;
    the column params' names."""
    fields: list[str] = []
    for entry in engines.values():
        if capable(entry.engine_class):
            fields += [f for f in entry.engine_class.record_fields if f not in fields]
    column_params = {field: f"{field}_column" for field in fields}
    params: list[click.Parameter] = [
        # Several files: aligned line files, one per record field (train.en train.de).
        click.Argument(["data"], metavar="DATA..." if data_required else "[DATA...]", nargs=-1, required=data_required),
        *(
            click.Option(
                # --<field>-field reads better for JSONL keys; both name the same thing.
                [f"--{field.replace('_', '-')}-column", f"--{field.replace('_', '-')}-field", param],
                metavar="NAME",
                help=f"CSV/TSV column (JSONL key) holding the {field}.  [default: {field}]",
            )
            for field, param in column_params.items()
        ),
        click.Option(
            ["--data-format"],
            type=click.Choice(DATA_FORMATS),
            help="Format of DATA.  [default: from the extension: .csv, .tsv, .jsonl/.json, optionally .gz]",
        ),
        click.Option(
            ["--no-header"],
            is_flag=True,
            help="CSV/TSV DATA has no header row: columns are numbered from 1, fields take them in order.",
        ),
        click.Option(["--encoding"], default="utf-8", show_default=True, help="Text encoding of the data files."),
    ]
    return params, column_params


def _columns(engine: str, fields: tuple[str, ...], given: dict[str, str | None]) -> dict[str, str]:
    """The ``--<field>-column`` values given, checked against the fields of ``engine``."""
    for field, column in given.items():
        if column is not None and field not in fields:
            raise click.UsageError(f"engine {engine!r} has no record field {field!r} (its fields: {', '.join(fields)})")
    return {field: column for field, column in given.items() if column is not None}


def _engine_choice(engines: dict[str, EngineEntry], default: str) -> click.Option:
    # Every engine is a choice, so that picking one that cannot do it gets a clear message, not click's.
    return click.Option(
        ["--engine", "-e"], type=click.Choice(list(engines)), default=default, show_default=True, help="Engine to use."
    )


def _common_params() -> list[click.Parameter]:
    return [
        click.Option(
            ["--format", "-f", "fmt"],
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Output format.",
        ),
        click.Option(["--debug"], is_flag=True, help="Show tracebacks of errors."),
    ]


def _capable_entry(
    registry: Registry, task: str, engine: str, capable: Callable[[type], bool], verb: str
) -> EngineEntry:
    entry = registry.engine(task, engine)
    if not capable(entry.engine_class):
        able = ", ".join(n for n, e in registry.tasks()[task].items() if capable(e.engine_class))
        raise click.UsageError(f"engine {task}:{engine} cannot be {verb} (engines that can: {able})")
    return entry


def _data_command(
    task: str,
    params: list[click.Parameter],
    intro: str,
    capable: dict[str, EngineEntry],
    default: str,
    tail: str,
    declared: dict[str, list[str]],
    column_params: dict[str, str],
    run: Callable[..., None],
    short_help: str,
) -> click.Command:
    """A train/evaluate subcommand: help listing the capable engines, engine options and columns split out for ``run``."""
    lines = [intro, "", "\b", "Engines:"]
    lines += [f"  {name}{' (default)' if name == default else ''}: {entry.description}"
              f" Record fields: {', '.join(entry.engine_class.record_fields)}." for name, entry in capable.items()]
    lines += ["", tail]

    def callback(**kwargs: Any) -> None:
        options = {key: kwargs.pop(key) for key in declared}
        columns = {field: kwargs.pop(param) for field, param in column_params.items()}
        run(options, declared, columns, **kwargs)

    return click.Command(task, params=params, callback=callback, help="\n".join(lines), short_help=short_help)


def make_train_command(task: str, engines: dict[str, EngineEntry], registry: Registry) -> click.Command:
    """``nlp-tool train TASK``: the data options plus every training option of the task's trainable engines."""
    trainable = {name: entry for name, entry in engines.items() if can_train(entry.engine_class)}
    # The task's default engine may be rule-based: the first trainable one is the default here.
    default = next(iter(trainable))
    option_params, declared = _option_params(trainable, "train_options")
    data_params, column_params = _data_params(engines, can_train)
    params: list[click.Parameter] = [
        *data_params,
        _engine_choice(engines, default),
        click.Option(
            ["--output", "-o"],
            type=click.Path(dir_okay=False),
            help=f"Model file to write.  [default: {task}-ENGINE.nlpt]",
        ),
        click.Option(["--force"], is_flag=True, help="Replace the output file if it exists."),
        click.Option(
            ["--valid"],
            metavar="FILE",
            multiple=True,
            help="Validation data, in DATA's format and columns (line files: repeat --valid, one per field).",
        ),
        click.Option(
            ["--valid-split"],
            type=click.FloatRange(0, 1, max_open=True),
            default=0.1,
            show_default=True,
            help="Without --valid: the fraction of DATA held out for validation (0 for none)"
            + ("; stratified by label." if any("label" in e.engine_class.record_fields for e in trainable.values())
               else "."),
        ),
        click.Option(
            ["--seed"], type=int, default=0, show_default=True, help="Random seed (split, initialisation, order)."
        ),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress display."),
        *_common_params(),
        *option_params,
    ]
    return _data_command(
        task, params, f"Train a {task!r} model on DATA and write it to one model file.\n\n{_DATA_HELP}",
        trainable, default, f"Use the model with `nlp-tool {task} --model FILE`. Details: docs/cli.md.",
        declared, column_params, functools.partial(run_train, task, registry),
        f"Train a {task} model ({', '.join(trainable)}).",
    )


def run_train(
    task: str,
    registry: Registry,
    engine_options: dict,
    declared: dict[str, list[str]],
    columns: dict[str, str | None],
    *,
    data: tuple[str, ...],
    data_format: str | None,
    no_header: bool,
    encoding: str,
    engine: str,
    output: str | None,
    force: bool,
    valid: tuple[str, ...],
    valid_split: float,
    seed: int,
    quiet: bool,
    fmt: str,
    debug: bool,
) -> None:
    """``nlp-tool train TASK``: check the arguments (exit 2), train (bad data: exit 2, failure: 1, Ctrl-C: 130)."""
    options, given = _engine_arguments(
        registry, task, engine, can_train, "trained", "train_options", engine_options, declared, columns
    )
    output = output or f"{task}-{engine}.nlpt"
    if os.path.isdir(output):
        raise click.UsageError(f"{output} is a directory; give a file name with --output")
    if os.path.exists(output) and not force:
        raise click.UsageError(f"{output} exists; use --force to replace it, or another --output")
    ctx = click.get_current_context()
    if valid and ctx.get_parameter_source("valid_split") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("give --valid or --valid-split, not both")

    from toolkit import api

    # The engine writes its model file atomically, so an interrupted run leaves none behind.
    _report(
        lambda: api.train(
            task, _data_argument(data), engine, output, valid=_data_argument(valid) if valid else None,
            valid_split=valid_split, columns=given, data_format=data_format, encoding=encoding,
            header=not no_header, seed=seed, progress=False if quiet else None,
            registry=registry, **options,
        ),
        debug, f"training {task}:{engine} failed", fmt,
    )


def make_evaluate_command(task: str, engines: dict[str, EngineEntry], registry: Registry) -> click.Command:
    """``nlp-tool evaluate TASK``: the data options, --model, and the run options of the task's engines."""
    evaluable = {name: entry for name, entry in engines.items() if can_evaluate(entry.engine_class)}
    default = next(iter(evaluable))
    option_params, declared = _option_params(evaluable, "options")
    line_flags: dict[str, str] = {}  # flag's parameter name -> record field
    for entry in evaluable.values():
        line_flags.update(entry.engine_class.line_file_flags)
    data_params, column_params = _data_params(engines, can_evaluate, data_required=not line_flags)
    params: list[click.Parameter] = [
        *data_params,
        *(
            click.Option(
                [_flag(flag), flag],
                metavar="FILE",
                help=f"Plain-text file of the {field}s, one per line, aligned line by line with"
                f" {' and '.join(_flag(f) for f in line_flags if f != flag)}; in place of DATA.",
            )
            for flag, field in line_flags.items()
        ),
        _engine_choice(engines, default),
        click.Option(["--model", "-m"], help="Model file (default: the engine's shipped model, if it has one)."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No elapsed-time display."),
        *_common_params(),
        *option_params,
    ]
    return _data_command(
        task, params, f"Score a {task!r} engine and its model on labelled DATA.\n\n{_DATA_HELP}",
        evaluable, default, "Details: docs/cli.md.", declared, column_params,
        functools.partial(run_evaluate, task, registry, line_flags), f"Evaluate a {task} model ({', '.join(evaluable)}).",
    )


def run_evaluate(
    task: str,
    registry: Registry,
    line_flags: dict[str, str],
    engine_options: dict,
    declared: dict[str, list[str]],
    columns: dict[str, str | None],
    *,
    data: tuple[str, ...],
    data_format: str | None,
    no_header: bool,
    encoding: str,
    engine: str,
    model: str | None,
    fmt: str,
    debug: bool,
    quiet: bool,
    **line_files: str | None,
) -> None:
    """``nlp-tool evaluate TASK``: build the engine as the verb does, print its metrics on DATA
    (or on the line files named by the engine's ``line_file_flags``, ``line_files`` here)."""
    options, given = _engine_arguments(
        registry, task, engine, can_evaluate, "evaluated", "options", engine_options, declared, columns
    )
    files = _line_files(registry.engine(task, engine).engine_class, line_files)
    instead = " ".join(f"{_flag(f)} FILE" for f in line_flags)
    if files and data:
        raise click.UsageError(f"give DATA or {instead}, not both")
    if not files and not data:
        raise click.UsageError(f"give DATA ({instead} in its place)")

    from toolkit import api

    def evaluate() -> dict:
        # An engine's evaluate reports no steps; on a terminal, the elapsed time shows it is at work.
        with ElapsedTicker(f"nlp-tool: evaluating {task}:{engine}", enabled=not quiet and sys.stderr.isatty()):
            return api.evaluate(
                task, files or _data_argument(data), engine, model, columns=given, data_format=data_format,
                encoding=encoding, header=not no_header, registry=registry, **options,
            )

    _report(evaluate, debug, f"evaluating {task}:{engine} failed", fmt)


_DATA_HELP = (
    "DATA is one CSV, TSV or JSONL file (optionally .gz), or aligned plain-text files,"
    " one per record field in the order the engine lists them (line i of each file is record i)."
)


def _data_argument(files: tuple[str, ...]) -> str | list[str]:
    """DATA as the API takes it: one data file, or a list of aligned line files."""
    return files[0] if len(files) == 1 else list(files)


def _line_files(engine_class: type, given: dict[str, str | None]) -> list[str]:
    """The line files given for ``engine_class``'s record fields (its ``line_file_flags``), in field order."""
    flags = {field: flag for flag, field in engine_class.line_file_flags.items()}
    named = {flag for flag, path in given.items() if path is not None}
    if not named:
        return []
    foreign = sorted(named - set(flags.values()))
    if foreign:
        raise click.UsageError(f"engine {engine_class.task}:{engine_class.name} takes no"
                               f" {', '.join(map(_flag, foreign))}")
    missing = [flag for flag in flags.values() if flag not in named]
    if missing:
        raise click.UsageError(f"give {', '.join(map(_flag, missing))} FILE as well")
    return [given[flags[field]] for field in engine_class.record_fields]


def _engine_arguments(
    registry: Registry,
    task: str,
    engine: str,
    capable: Callable[[type], bool],
    verb: str,
    options_attribute: str,
    engine_options: dict,
    declared: dict[str, list[str]],
    columns: dict[str, str | None],
) -> tuple[dict, dict[str, str]]:
    """The options given (checked against the engine's ``options_attribute``) and the column mapping."""
    cls = _capable_entry(registry, task, engine, capable, verb).engine_class
    options = {key: value for key, value in engine_options.items() if value is not None}
    options = _checked_options(engine, options, getattr(cls, options_attribute), declared)
    return options, _columns(engine, cls.record_fields, columns)


def _report(call: Callable[[], dict], debug: bool, what: str, fmt: str) -> None:
    """Run a train/evaluate call and print its report; Ctrl-C exits 130, errors as ``_fail`` says."""
    try:
        report = call()
    except KeyboardInterrupt:
        click.echo("nlp-tool: interrupted", err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None
    except Exception as error:
        _fail(error, debug, what)
    _print_report(report, fmt, what)


def _fail(error: Exception, debug: bool, what: str) -> NoReturn:
    """Turn an exception of train/evaluate into its exit code: 2 for usage and data errors, 1 otherwise."""
    if debug:
        raise error
    if isinstance(error, OptionError):
        raise click.UsageError(str(error)) from error
    if isinstance(error, DataError):
        if isinstance(error, ColumnError):
            raise BadData(f"{error}; choose the column with --{error.field.replace('_', '-')}-column") from error
        raise BadData(str(error)) from error
    raise Failure(f"{what}: {_one_line(error)}") from error


def _print_report(report: dict, fmt: str, what: str) -> None:
    try:
        report = io.plain(report)
    except TypeError as error:
        raise Failure(f"{what}: the engine's report cannot be printed: {error}") from error
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(report_lines(report)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _labelled_matrix(value: Any) -> tuple[list, list[list]] | None:
    """(labels, rows) of a confusion matrix ``{"labels": [...], <any key>: [[...], ...]}``, else None."""
    if not isinstance(value, dict) or not isinstance(value.get("labels"), list) or len(value) != 2:
        return None
    labels = value["labels"]
    rows = next(v for k, v in value.items() if k != "labels")
    square = isinstance(rows, list) and len(rows) == len(labels)
    if not square or not all(isinstance(r, list) and len(r) == len(labels) and all(map(_scalar, r)) for r in rows):
        return None
    return labels, rows


def _row_table(value: Any) -> bool:
    """A dict of dicts of scalars, such as per-class metrics: printed as a table, one row per key."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, dict) and v and all(map(_scalar, v.values())) for v in value.values())
    )


def _aligned(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    # Names left-aligned, numbers right-aligned: columns of figures read best that way.
    return [
        indent + "  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:]))]).rstrip()
        for row in rows
    ]


def report_lines(report: dict, indent: str = "") -> list[str]:
    """A JSON report as readable text: ``key: value`` lines aligned, nested dicts indented, tables for
    dicts of dicts (per-class metrics) and for confusion matrices (``{"labels": [...], "matrix": [[...]]}``).
    """
    def inline(value: Any) -> str | None:
        if _scalar(value):
            return _cell(value)
        if isinstance(value, list) and all(map(_scalar, value)):
            return ", ".join(map(_cell, value))
        return None

    width = max((len(str(k)) for k, v in report.items() if inline(v) is not None), default=0) + 1
    lines = []
    for key, value in report.items():
        text = inline(value)
        if text is not None:
            lines.append(f"{indent}{str(key) + ':':<{width}}  {text}")
            continue
        lines.append(f"{indent}{key}:")
        inner = indent + "  "
        matrix = _labelled_matrix(value)
        if matrix is not None:
            labels, rows = matrix
            header = ["true \\ predicted", *map(str, labels)]
            lines += _aligned([header, *([str(label), *map(_cell, row)] for label, row in zip(labels, rows))], inner)
        elif _row_table(value):
            columns = list(dict.fromkeys(k for row in value.values() for k in row))
            table = [["", *columns]]
            table += [[str(name), *(_cell(row.get(c)) for c in columns)] for name, row in value.items()]
            lines += _aligned(table, inner)
        elif isinstance(value, dict):
            lines += report_lines(value, inner)
        else:
            lines[-1] += "  " + json.dumps(value, ensure_ascii=False)
    return lines


# -- fixed commands ---------------------------------------------------------


@click.command(name="tasks")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def tasks_command(ctx: click.Context, as_json: bool) -> None:
    """List the tasks and their engines (the first engine of a task is its default)."""
    registry = _registry(ctx)
    if as_json:
        rows = [
            {
                "task": task,
                "engine": name,
                "default": i == 0,
                "description": entry.description,
                "plugin": entry.plugin,
                "inputs": entry.engine_class.inputs,
                "default_model": entry.engine_class.default_model,
                "options": {key: _describe(o) for key, o in entry.engine_class.options.items()},
                "record_fields": list(entry.engine_class.record_fields),
                "trainable": can_train(entry.engine_class),
                "train_options": {key: _describe(o) for key, o in entry.engine_class.train_options.items()},
            }
            for task, engines in registry.tasks().items()
            for i, (name, entry) in enumerate(engines.items())
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    rows = [
        (task, name + (" *" if i == 0 else ""), entry.plugin, entry.description)
        for task, engines in registry.tasks().items()
        for i, (name, entry) in enumerate(engines.items())
    ]
    _table(["TASK", "ENGINE", "PLUGIN", "DESCRIPTION"], rows)
    click.echo("\n* default engine of the task")


def _table(header: list[str], rows: list[tuple]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        cells = [str(x).ljust(w) for x, w in zip(row[:-1], widths)] + [str(row[-1])]
        click.echo("  ".join(cells).rstrip())


@click.group(name="plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List plugins: name, version, source, tasks and status."""
    if ctx.invoked_subcommand is not None:
        return
    registry = _registry(ctx)
    infos = list(registry.plugins.values())
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in infos], indent=2, ensure_ascii=False))
        return
    rows = [
        (
            p.name,
            p.version or "-",
            "built-in" if p.source == "built-in" else f"package {p.package}",
            ", ".join(p.tasks) or "-",
            p.status + (f": {p.error}" if p.error else ""),
        )
        for p in infos
    ]
    _table(["NAME", "VERSION", "SOURCE", "TASKS", "STATUS"], rows)


def _find_plugin(ctx: click.Context, name: str) -> PluginInfo:
    registry = _registry(ctx)
    for info in registry.plugins.values():
        if normalize(name) in {normalize(info.name), normalize(info.package or info.name)}:
            if info.source == "built-in":
                raise click.UsageError(f"{info.name!r} is a built-in plugin and cannot be disabled")
            return info
    raise click.UsageError(f"no plugin named {name!r}; `nlp-tool plugins` lists them")


@plugins_command.command(name="disable")
@click.argument("name")
@click.pass_context
def plugins_disable(ctx: click.Context, name: str) -> None:
    """Stop loading plugin NAME (kept installed; saved in the user config)."""
    info = _find_plugin(ctx, name)
    set_disabled(info.name, True)
    click.echo(f"disabled plugin {info.name!r}")


@plugins_command.command(name="enable")
@click.argument("name")
@click.pass_context
def plugins_enable(ctx: click.Context, name: str) -> None:
    """Load plugin NAME again after `nlp-tool plugins disable`."""
    info = _find_plugin(ctx, name)
    set_disabled(info.name, False)
    click.echo(f"enabled plugin {info.name!r}")


def _pip(args: list[str]) -> None:
    # The tool's own interpreter, so plugins land where nlp-tool can see them.
    code = subprocess.run([sys.executable, "-m", "pip", *args]).returncode
    if code != 0:
        raise Failure(f"pip {args[0]} failed with exit code {code}")


@click.command(name="install")
@click.argument("packages", nargs=-1)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade packages to the latest version.")
@click.option("-e", "--editable", help="Install a project in editable mode from this path.")
@click.option("--force-reinstall", is_flag=True, help="Reinstall even if already installed.")
@click.option("--no-cache-dir", is_flag=True, help="Do not use pip's cache.")
def install_command(packages: tuple[str, ...], upgrade: bool, editable: str | None, force_reinstall: bool, no_cache_dir: bool) -> None:
    """Install packages (plugins) with pip into nlp-tool's own environment."""
    if not packages and not editable:
        raise click.UsageError("name at least one package, or -e PATH")
    args = ["install"]
    args += ["--upgrade"] if upgrade else []
    args += ["--force-reinstall"] if force_reinstall else []
    args += ["--no-cache-dir"] if no_cache_dir else []
    args += ["--editable", editable] if editable else []
    _pip(args + list(packages))


@click.command(name="uninstall")
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall_command(packages: tuple[str, ...], yes: bool) -> None:
    """Uninstall packages (plugins) with pip from nlp-tool's own environment."""
    _pip(["uninstall", *(["--yes"] if yes else []), *packages])


def _terminate(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def make_cli(registry_factory: Callable[[], Registry] = get_registry) -> NlpToolGroup:
    """A fresh ``nlp-tool`` group over the registry ``registry_factory`` returns (tests use their own)."""

    @click.group(cls=NlpToolGroup, registry_factory=registry_factory, name="nlp-tool")
    @click.version_option(__version__, prog_name="nlp-tool")
    def group() -> None:
        """nlp-tool: NLP tasks on a C-accelerated core.

        Each task is a command; `nlp-tool tasks` lists the tasks and their
        engines, `nlp-tool plugins` the plugins that provide them.
        """
        # By default SIGTERM (`kill`, `timeout`) ends the process on the spot,
        # leaving the temporary file of an --output or a model behind and a
        # training run without its last checkpoint; handled as Ctrl-C, it goes
        # through the same clean-up and saving.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminate)

    for command in (tasks_command, plugins_command, install_command, uninstall_command):
        group.add_command(command)
    group.add_command(
        TaskGroup(
            name="train",
            capable=can_train,
            make_command=make_train_command,
            verb="trained",
            help="Train a model: `nlp-tool train TASK DATA`; `nlp-tool train TASK --help` lists its options.",
            short_help="Train a model for a task on labelled data.",
        )
    )
    group.add_command(
        TaskGroup(
            name="evaluate",
            capable=can_evaluate,
            make_command=make_evaluate_command,
            verb="evaluated",
            help="Score an engine and its model: `nlp-tool evaluate TASK DATA --model FILE`.",
            short_help="Evaluate a model of a task on labelled data.",
        )
    )
    return group


cli = make_cli()
