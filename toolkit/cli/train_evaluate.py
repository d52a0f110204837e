"""``nlp-tool train TASK`` and ``nlp-tool evaluate TASK``: their flags (data, columns, engine options),
the checks of their arguments, and their reports and exit codes."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

import click

from toolkit import api
from toolkit.cli.errors import ReportingCommand, interrupted, reported
from toolkit.cli.group import registry_of
from toolkit.cli.options import engine_option, flag_of, given_options, option_params
from toolkit.cli.render import print_report
from toolkit.datasets import DATA_FORMATS
from toolkit.engine import can_evaluate, can_train
from toolkit.plugins import EngineEntry, Registry
from toolkit.progress import ElapsedTicker
from toolkit.training_process import set_up_training_process


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
        registry = registry_of(ctx)
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


def _data_command(
    task: str,
    registry: Registry,
    verb: str,
    params: list[click.Parameter],
    intro: str,
    capable: dict[str, EngineEntry],
    default: str,
    tail: str,
    owners: dict[str, list[str]],
    column_params: dict[str, str],
    run: Callable[..., None],
    short_help: str,
) -> click.Command:
    """A train/evaluate subcommand: help listing the capable engines; its callback checks the engine, its
    options and columns, and calls ``run(options, reading, **the other parameters)``, ``reading`` being
    how DATA is read, as the API's ``train`` and ``evaluate`` take it (columns, format, encoding, header)."""
    lines = [intro, "", "\b", "Engines:"]
    lines += [f"  {name}{' (default)' if name == default else ''}: {entry.description}"
              f" Record fields: {', '.join(entry.engine_class.record_fields)}." for name, entry in capable.items()]
    lines += ["", tail]
    can, attribute = (can_train, "train_options") if verb == "trained" else (can_evaluate, "options")

    def callback(**kwargs: Any) -> None:
        engine_options = {key: kwargs.pop(key) for key in owners}
        columns = {field: kwargs.pop(param) for field, param in column_params.items()}
        entry = api.capable_engine(registry, task, kwargs["engine"], can, verb, kwargs.get("model"))
        cls, kwargs["engine"] = entry.engine_class, entry.name
        options = given_options(kwargs["engine"], engine_options, getattr(cls, attribute), owners)
        reading = {"columns": _columns(kwargs["engine"], cls.record_fields, columns),
                   "data_format": kwargs.pop("data_format"), "encoding": kwargs.pop("encoding"),
                   "header": not kwargs.pop("no_header")}
        run(options, reading, **kwargs)

    return ReportingCommand(task, params=params, callback=callback, help="\n".join(lines), short_help=short_help)


def make_train_command(task: str, engines: dict[str, EngineEntry], registry: Registry) -> click.Command:
    """``nlp-tool train TASK``: the data options plus every training option of the task's trainable engines."""
    trainable = {name: entry for name, entry in engines.items() if can_train(entry.engine_class)}
    # The task's default engine may be rule-based: the first trainable one is the default here.
    default = next(iter(trainable))
    flag_params, owners = option_params(trainable, "train_options")
    data_params, column_params = _data_params(engines, can_train)
    params: list[click.Parameter] = [
        *data_params,
        engine_option(engines, default, "Engine to use.", takes_model=False),
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
        *flag_params,
    ]
    return _data_command(
        task, registry, "trained", params,
        f"Train a {task!r} model on DATA and write it to one model file.\n\n{_DATA_HELP}",
        trainable, default, f"Use the model with `nlp-tool {task} --model FILE`. Details: docs/cli.md.",
        owners, column_params, functools.partial(run_train, task, registry),
        f"Train a {task} model ({', '.join(trainable)}).",
    )


def run_train(
    task: str,
    registry: Registry,
    options: dict,
    reading: dict,
    *,
    data: tuple[str, ...],
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
    output = output or f"{task}-{engine}.nlpt"
    if os.path.isdir(output):
        raise click.UsageError(f"{output} is a directory; give a file name with --output")
    # A resumed run replaces the model its time limit wrote.
    if os.path.exists(output) and not force and not options.get("resume"):
        raise click.UsageError(f"{output} exists; use --force to replace it, or another --output")
    ctx = click.get_current_context()
    if valid and ctx.get_parameter_source("valid_split") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("give --valid or --valid-split, not both")

    # Before the engine imports numpy, whose OpenBLAS reads it.
    set_up_training_process()
    # The engine writes its model file atomically, so an interrupted run leaves none behind.
    _report(
        lambda: api.train(
            task, _data_argument(data), engine, output, valid=_data_argument(valid) if valid else None,
            valid_split=valid_split, **reading, seed=seed, progress=False if quiet else None,
            registry=registry, **options,
        ),
        debug, f"training {task}:{engine} failed", fmt,
    )


def make_evaluate_command(task: str, engines: dict[str, EngineEntry], registry: Registry) -> click.Command:
    """``nlp-tool evaluate TASK``: the data options, --model, and the run options of the task's engines."""
    evaluable = {name: entry for name, entry in engines.items() if can_evaluate(entry.engine_class)}
    default = next(iter(evaluable))
    flag_params, owners = option_params(evaluable, "options")
    line_flags: dict[str, str] = {}  # flag's parameter name -> record field
    for entry in evaluable.values():
        line_flags.update(entry.engine_class.line_file_flags)
    data_params, column_params = _data_params(engines, can_evaluate, data_required=not line_flags)
    params: list[click.Parameter] = [
        *data_params,
        *(
            click.Option(
                [flag_of(flag), flag],
                metavar="FILE",
                help=f"Plain-text file of the {field}s, one per line, aligned line by line with"
                f" {' and '.join(flag_of(f) for f in line_flags if f != flag)}; in place of DATA.",
            )
            for flag, field in line_flags.items()
        ),
        engine_option(engines, default, "Engine to use."),
        click.Option(["--model", "-m"], help="Model file (default: the engine's shipped model, if it has one)."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No elapsed-time display."),
        *_common_params(),
        *flag_params,
    ]
    return _data_command(
        task, registry, "evaluated", params, f"Score a {task!r} engine and its model on labelled DATA.\n\n{_DATA_HELP}",
        evaluable, default, "Details: docs/cli.md.", owners, column_params,
        functools.partial(run_evaluate, task, registry, line_flags), f"Evaluate a {task} model ({', '.join(evaluable)}).",
    )


def run_evaluate(
    task: str,
    registry: Registry,
    line_flags: dict[str, str],
    options: dict,
    reading: dict,
    *,
    data: tuple[str, ...],
    engine: str,
    model: str | None,
    fmt: str,
    debug: bool,
    quiet: bool,
    **line_files: str | None,
) -> None:
    """``nlp-tool evaluate TASK``: build the engine as the verb does, print its metrics on DATA
    (or on the line files named by the engine's ``line_file_flags``, ``line_files`` here)."""
    files = _line_files(registry.engine(task, engine).engine_class, line_files)
    instead = " ".join(f"{flag_of(f)} FILE" for f in line_flags)
    if files and data:
        raise click.UsageError(f"give DATA or {instead}, not both")
    if not files and not data:
        raise click.UsageError(f"give DATA ({instead} in its place)")

    def evaluate() -> dict:
        # An engine's evaluate reports no steps; on a terminal, the elapsed time shows it is at work.
        with ElapsedTicker(f"nlp-tool: evaluating {task}:{engine}", enabled=not quiet and sys.stderr.isatty()):
            return api.evaluate(
                task, files or _data_argument(data), engine, model, **reading, registry=registry, **options,
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
                               f" {', '.join(map(flag_of, foreign))}")
    missing = [flag for flag in flags.values() if flag not in named]
    if missing:
        raise click.UsageError(f"give {', '.join(map(flag_of, missing))} FILE as well")
    return [given[flags[field]] for field in engine_class.record_fields]


def _report(call: Callable[[], dict], debug: bool, what: str, fmt: str) -> None:
    """Run a train/evaluate call and print its report; errors as ``reported`` says, Ctrl-C in training with
    the checkpoint to resume from (any other Ctrl-C: as the group ends every command)."""
    from toolkit.nn.trainer import TrainingInterrupted

    try:
        report = call()
    except TrainingInterrupted as stop:
        kept = f"; the checkpoint {stop.checkpoint} holds the run: continue it with the same command and --resume"
        raise interrupted(kept if stop.checkpoint else "") from None
    except Exception as error:
        if debug:
            raise
        raise reported(error, what) from error
    print_report(report, fmt, what)
    if report.get("stopped") == "time limit":
        click.echo(f"nlp-tool: stopped at the time limit with the best model so far in {report['model']}; the"
                   f" checkpoint {report['checkpoint']} holds the run: continue it with the same command and"
                   " --resume", err=True)
