"""The task verbs (``nlp-tool summarize ...``): their flags, the checks of their arguments, and ``--explain``."""

from __future__ import annotations

import codecs
import json
import os
import shlex
import sys
from typing import Any, Iterator

import click

from toolkit import api, io
from toolkit.cli.errors import Failure, ReportingCommand, reported
from toolkit.cli.options import click_type, engine_defaults, engine_option, given_options, option_params
from toolkit.cli.task_output import stream_results, write_parts, write_results
from toolkit.engine import can_stream, can_train, takes_model
from toolkit.errors import OptionError
from toolkit.languages import covered
from toolkit.memory import keep_freed_memory
from toolkit.plugins import EngineEntry, Registry
from toolkit.shards import ShardedOutput, input_files, is_directory_target
from toolkit.workers import DEFAULT_CHUNK_SIZE, ChunkPool


def make_task_command(task: str, engines: dict[str, EngineEntry], registry: Registry) -> click.Command:
    """The verb for ``task``: the common I/O options plus every option its engines declare."""
    default = next(iter(engines))
    engine_params, owners = option_params(engines, "options", skip=("top_k",))
    rankers = {name: entry for name, entry in engines.items() if "top_k" in entry.engine_class.options}
    takes_question = any(entry.engine_class.inputs == "question+context" for entry in engines.values())
    contract = engines[default].engine_class.contract
    texts = contract is not None and contract.arguments == "texts"

    params: list[click.Parameter] = [
        click.Argument(["inputs"], nargs=-1, metavar="[TEXT|-]..." if texts else "[FILE|GLOB|-]..."),
        click.Option(["--text", "-t"], multiple=True, help="Inline input text (repeatable)."),
        *([click.Option(["--file", "files"], multiple=True, metavar="FILE|GLOB",
                        help="Read inputs from FILE (repeatable; - for stdin).")] if texts else []),
        click.Option(
            ["--input-format", "-i"],
            type=click.Choice(io.INPUT_FORMATS),
            default="text",
            show_default=True,
            help="text: one input per file; lines: one per non-empty line (with -f text: one output line per"
            " input line); jsonl: one per JSON object.",
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
            type=click.Path(writable=True),
            metavar="FILE|DIR/",
            help="Write to FILE (atomically: complete or not at all) instead of stdout; to DIR/ (a path ending in /"
            " or an existing directory): one part file per --chunk-size inputs and a manifest, so that the same"
            " command run again skips the parts written.",
        ),
        engine_option(engines, default, "Engine to run."),
        click.Option(["--model", "-m"], help="Model file (default: the engine's shipped model, if it has one)."),
        # Only where some engine ranks: on other verbs the flag could never be used.
        *([click.Option(["--top-k", "top_k"],
                        type=click_type([entry.engine_class.options["top_k"] for entry in rankers.values()]),
                        help=_top_k_help(rankers) + engine_defaults(rankers, 'options', 'top_k'))]
          if rankers else []),
        click.Option(["--batch-size"], type=click.IntRange(min=1), default=api.DEFAULT_BATCH_SIZE, show_default=True,
                     help="Inputs per engine call."),
        click.Option(["--workers"], type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
                     help="Run the inputs in N processes, a chunk at a time; the output is the one of a single"
                     " process, in input order. Kernel threads per process: the cores / N, unless OMP_NUM_THREADS"
                     " is set."),
        click.Option(["--chunk-size"], type=click.IntRange(min=1), default=DEFAULT_CHUNK_SIZE, show_default=True,
                     metavar="N", help="Inputs per chunk: what a worker process runs at a time, and one part file of -o DIR/."),
        click.Option(["--cluster"], metavar="ADDRESS|local:N",
                     help="Run the chunks on a Dask cluster: a scheduler's address (tcp://HOST:8786), or local:N for"
                     " N worker processes started for the run; the output is the one of a single process. Needs"
                     " pip install \"nlp-tool[dask]\"."),
        click.Option(["--language"], default=None, metavar="CODE",
                     help="Run every input with the task's installed model of this language (an ISO 639-1 code such"
                     " as zh). Without it and without --model, each input goes to the installed model of its"
                     " detected language, the default model where none is."),
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

    lines = [f"Run the {task!r} task on " + ("the texts given as arguments, --file FILE or stdin." if texts
                                             else "files, stdin or --text."), "", "\b", "Engines:"]
    lines += [f"  {name}{' (default)' if name == default else ''}: {entry.description}" for name, entry in engines.items()]
    lines += ["", "With no TEXT or --file, or with -, read standard input. Details: docs/cli.md." if texts else
              "With no FILE, or when FILE is -, read standard input. Details: docs/cli.md."]
    if takes_question:
        lines += ["", f"With --context FILE the arguments are questions: nlp-tool {task} --context doc.txt \"Who?\""]

    def callback(**kwargs: Any) -> None:
        # The common --top-k flag is named top_k too: it goes to the engine like the engines' own flags.
        engine_options = {key: kwargs.pop(key) for key in owners}
        if texts:
            # The arguments are inputs' texts, "-" standard input; files come with --file.
            arguments = kwargs.pop("inputs")
            for argument in arguments:
                # `nlp-tool generate notes.txt` runs on the words "notes.txt": say so where it names a file.
                if argument != "-" and not any(c.isspace() for c in argument) and os.path.isfile(argument):
                    click.echo(f"nlp-tool: warning: {argument!r} is read as a text, not as the file of that name;"
                               f" to read the file, use --file {shlex.quote(argument)}", err=True)
            kwargs["inputs"] = kwargs.pop("files") + (("-",) if "-" in arguments else ())
            kwargs["text"] = tuple(argument for argument in arguments if argument != "-") + kwargs["text"]
        run_task(task, registry, engine_options, owners, **kwargs)

    short_help = f"Run the {task} task ({', '.join(engines)})."
    return ReportingCommand(task, params=params, callback=callback, help="\n".join(lines), short_help=short_help)


def run_task(
    task: str,
    registry: Registry,
    engine_options: dict,
    owners: dict[str, list[str]],
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
    workers: int,
    chunk_size: int,
    cluster: str | None,
    language: str | None,
    on_error: str,
    explain: bool,
    quiet: bool,
    debug: bool,
    encoding: str,
    question: str | None = None,
    context: str | None = None,
    questions: str | None = None,
) -> None:
    """A task verb: check the arguments (usage errors, exit 2), then run and write (runtime errors, exit 1;
    an engine that cannot start exits as its error's class says)."""
    entry = registry.engine(task, engine, model)
    engine = entry.name
    options = given_options(engine, engine_options, entry.engine_class.options, owners)

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise click.UsageError(f"unknown encoding {encoding!r}") from None

    check_pool_options(workers, cluster)
    if explain:
        explain_run(registry, entry, model, options, fmt)
        return
    if question is not None and not question.strip():
        raise click.UsageError("a question is empty")

    if context is not None or questions is not None:
        files = [path for path in (context, questions) if path is not None]
        records = _question_records(context, questions, question, inputs, text, encoding)
    else:
        sources = io.expand_sources(inputs)
        if not sources and not text:
            if sys.stdin.isatty():
                raise click.UsageError("no input: give " + ("texts, --file FILE" if _takes_texts(entry) else
                                                           "files, --text") + ", or pipe text to stdin")
            sources = ["-"]
        if entry.engine_class.inputs == "question+context" and question is None and input_format != "jsonl":
            raise click.UsageError(
                f"engine {engine!r} needs --context FILE with questions, --question, or JSONL records with"
                " 'question' and 'context'"
            )
        records = io.read_records(sources, text, input_format, text_field, id_field, question,
                                  pairs=entry.engine_class.inputs == "question+context", encoding=encoding)
        files = sources

    keep_freed_memory()
    try:
        # Without --debug, a failing input becomes an error record, reported with its id.
        pipe = api.Pipeline(task, engine, model, batch_size=batch_size, on_error="raise" if debug else "skip",
                            language=language, registry=registry, **options)
    except Exception as error:
        if debug:
            raise
        raise reported(error, f"cannot start engine {task}:{engine}") from error
    import hashlib

    run = {"task": task, "engine": engine, "model": model, "options": options,
           "input_format": input_format, "text_field": text_field, "id_field": id_field,
           "encoding": encoding, "question": question, "format": fmt,
           "texts_sha256": hashlib.sha256(json.dumps([text, inputs if context is not None else ()]
                                                     ).encode("utf-8")).hexdigest(),
           "chunk_size": chunk_size}
    write_run(pipe, records, run, files, output=output, fmt=fmt, lines=input_format == "lines", on_error=on_error,
              quiet=quiet, debug=debug, workers=workers, cluster=cluster, chunk_size=chunk_size)


def check_pool_options(workers: int, cluster: str | None) -> None:
    """``--workers`` and ``--cluster`` as usage errors before anything starts: both given, or a bad local:N."""
    if cluster is None:
        return
    # Here and below, not at the top: the pools (and their threads' and processes' modules) are no part of
    # the command line's start-up.
    from toolkit.distributed import local_workers

    if workers > 1:
        raise click.UsageError("give --workers N (processes here) or --cluster (a Dask cluster), not both")
    try:
        local_workers(cluster)
    except OptionError as error:
        raise click.UsageError(str(error)) from None


def write_run(pipe: api.Pipeline, records: Iterator[io.Record], run: dict, files: list[str], *, output: str | None,
              fmt: str, lines: bool, on_error: str, quiet: bool, debug: bool, workers: int, cluster: str | None,
              chunk_size: int) -> None:
    """Run ``records`` (read from ``files``) through ``pipe`` (in this process, ``workers`` processes or on
    ``cluster``) and write the results to stdout, to ``output`` (atomically), or to the part files of
    ``output`` DIR/ with ``run`` (the command's options) and the files in its manifest. Failure when inputs
    failed or the output did; an engine that cannot start is reported as the verbs report it.

    The one run writer of the task verbs and of commands of their kind that
    plugins add (``chat -i jsonl``)."""
    if is_directory_target(output):
        if "-" in files:
            raise click.UsageError(_SHARDS_NEED_FILES)
        run = {**run, "inputs": input_files(files)}
    from toolkit.distributed import pool as chunk_pool

    with chunk_pool(pipe, workers, cluster) as pool:
        try:
            # Engines load their model when first asked, and the stamp asks: both are the engine starting, so a
            # model file that cannot be read ends the run here, in one line, rather than failing each input.
            stamp = pool.stamp()
        except Exception as error:
            if debug:
                raise
            raise reported(error, f"cannot start engine {pipe.task}:{pipe.engine_name}") from error
        if is_directory_target(output):
            _write_directory(pool, stamp, records, ShardedOutput(output, {**run, "stamp": stamp}, fmt), fmt, lines,
                             on_error, quiet, debug, chunk_size)
        else:
            _write_output(pool, stamp, records, output, fmt, lines, on_error, quiet, debug, chunk_size)


def _write_output(pool: ChunkPool, stamp: dict, records: Iterator[io.Record], output: str | None, fmt: str,
                  lines: bool, on_error: str, quiet: bool, debug: bool, chunk_size: int) -> None:
    """The results to stdout or ``output`` (atomically); Failure when inputs failed or the output did."""
    try:
        out = io.AtomicOutput(output)
    except OSError as error:
        raise Failure(f"cannot write {output}: {error.strerror or error}") from error
    try:
        if fmt == "text" and not lines and output is None and sys.stdout.isatty() \
                and can_stream(type(pool.pipe.engine)) and pool.serial:
            # On a terminal the text appears as it is generated.
            failed = stream_results(pool.pipe, records, out.stream, on_error, debug)
        else:
            failed = write_results(pool, stamp, records, out, fmt, lines, on_error, quiet, debug, chunk_size)
        out.commit()
    except BrokenPipeError:
        # Not a failure: the reader of stdout went away (`| head`), and the group ends the command quietly.
        out.discard()
        raise
    except OSError as error:
        # Inputs that cannot be read and engines that fail are failed inputs, so this is the output failing
        # (a full disk, a file size limit): no later result could be written either.
        out.discard()
        if debug:
            raise
        raise Failure(f"cannot write {out.name}: {error.strerror or error}") from error
    except BaseException:
        out.discard()
        raise
    if failed:
        raise Failure(f"{failed} input(s) failed; the results of the others were written")


_SHARDS_NEED_FILES = "-o DIR/ reads the inputs again when the command is run again: give files, not stdin"


def _write_directory(pool: ChunkPool, stamp: dict, records: Iterator[io.Record], shards: ShardedOutput, fmt: str,
                     lines: bool, on_error: str, quiet: bool, debug: bool, chunk_size: int) -> None:
    """``-o DIR/``: the parts not yet written, then the manifest's word that the run is complete."""
    try:
        done = shards.open()
        if done and not quiet:
            click.echo(f"nlp-tool: {shards.directory}: {len(done)} part(s) written by an earlier run are kept",
                       err=True)
        failed = write_parts(pool, stamp, records, shards, done, fmt, lines, on_error, quiet, debug, chunk_size)
    except OSError as error:
        if debug:
            raise
        raise Failure(f"cannot write {shards.directory}: {error.strerror or error}") from error
    finally:
        shards.close()
    if failed:
        raise Failure(f"{failed} input(s) failed; the results of the others were written")


def _top_k_help(rankers: dict[str, EngineEntry]) -> str:
    """The common --top-k flag's help: its engines' own words when they declare it alike (a task's shared
    option: generate's top-k is a sampling cut, not a number of results), else what it means for most."""
    helps = {entry.engine_class.options["top_k"].help for entry in rankers.values()}
    return helps.pop() if len(helps) == 1 else "Number of ranked results, for engines that rank."


def _takes_texts(entry: EngineEntry) -> bool:
    contract = entry.engine_class.contract
    return contract is not None and contract.arguments == "texts"


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
    if any(not q.strip() for q in inputs):
        raise click.UsageError("a question is empty")
    return io.question_records(context, asked, questions, encoding=encoding)


def explain_run(registry: Registry, entry: EngineEntry, model: str | None, options: dict, fmt: str) -> None:
    """``--explain``: the plugin, engine, model and options that would run, as text or JSON."""
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
        "languages": covered(cls, model),
        "options": settings,
    }
    folder = None
    if model is not None and cls.checkpoint_types:
        from toolkit.nn.pretrained import checkpoint_folder, checkpoint_type  # numpy and the kernels: not at start-up

        folder = checkpoint_folder(model)
    if folder is not None:
        info["checkpoint"] = {"folder": str(folder), "model_type": checkpoint_type(folder)}
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
    if folder is not None:
        model_line += f" (a {info['checkpoint']['model_type']} checkpoint: {folder})"
    click.echo(f"model:   {model_line}")
    click.echo(f"inputs:  {cls.inputs}")
    if info["languages"]:
        click.echo(f"languages: {', '.join(info['languages'])}" + (
            " (each input goes to the installed model of its language)" if model is None and len(info["languages"]) > 1
            and info["languages"] != ["any"] else ""))
    click.echo("options: " + (", ".join(f"{k}={v!r}" for k, v in settings.items()) or "none"))
