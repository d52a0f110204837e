"""``nlp-tool chat`` and ``nlp-tool logs``, added through the plugin's register_commands hook.

``chat`` is a command of its own rather than the task's verb because a
conversation is state (its turns, saved between runs) and a terminal
session, which a verb's inputs-to-results run does not have. What it shares
with the verbs, it does with their code: a batch of conversations (``-i
jsonl``) is written by their run writer (toolkit.cli.task_verb.write_run),
and an error ends it as it ends them (toolkit.cli.errors).

The message of a one-shot reply is the command's argument, as a prompt is
``generate``'s: ``-m`` is ``--model`` on every verb, here too, so it cannot
be the message.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from toolkit.api import DEFAULT_BATCH_SIZE
from toolkit.cli.errors import Failure
from toolkit.cli.task_verb import check_pool_options
from toolkit.engine import Option
from toolkit.errors import NlpToolError, UsageError
from toolkit.workers import DEFAULT_CHUNK_SIZE

from toolkit_plugins.chat.contract import TASK
from toolkit_plugins.chat.retrieval import RetrievalEngine
from toolkit_plugins.chat.transformer import TransformerChat

DEFAULT_ENGINE = TransformerChat.name
#: The engines whose options are flags of ``chat``: this plugin's.
ENGINE_CLASSES = (RetrievalEngine, TransformerChat)


def _failure(error: NlpToolError) -> Failure:
    return Failure(str(error), error.exit_code)


def _option_param(name: str, option: Option) -> click.Option:
    """The flag of an engine option; its value is None unless given, so that the engine's default applies."""
    kinds = {int: click.INT, float: click.FLOAT, str: click.STRING}
    if option.type is bool:
        return click.Option([f"{option.flags(name)[0]}/{option.flags(name)[1]}", name], default=None,
                            help=option.help)
    shown = f" [default: {option.default}]" if option.default not in ("", None, ()) else ""
    kind = click.Choice(option.choices) if option.choices and option.type is str else kinds[option.type]
    return click.Option([*option.flags(name), name], type=kind, multiple=option.multiple, default=None,
                        help=option.help + shown)


def _engine_params() -> list[click.Option]:
    params: dict[str, click.Option] = {}
    for engine_class in ENGINE_CLASSES:
        for name, option in engine_class.options.items():
            params.setdefault(name, _option_param(name, option))
    return list(params.values())


def _pipeline(engine: str, model: str | None, options: dict, batch_size: int = DEFAULT_BATCH_SIZE) -> Any:
    """The pipeline of the dialogue task's ``engine`` with ``model`` and the given ``options``, its corpus or
    model read now (engines read them for their stamp): a problem with either ends the command before any
    turn."""
    from toolkit.api import Pipeline

    try:
        pipe = Pipeline(TASK, engine, model, batch_size=batch_size, on_error="skip", **options)
        pipe.stamp()
    except NlpToolError as error:
        raise _failure(error) from None
    return pipe


def _store(no_log: bool, resume: bool) -> Any:
    """The conversation database, or None when nothing is read or saved from it."""
    if no_log and not resume:
        return None
    from toolkit_plugins.chat.store import Store

    try:
        return Store()
    except NlpToolError as error:
        raise _failure(error) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("message", nargs=-1)
@click.option("--engine", "-e", default=DEFAULT_ENGINE, show_default=True,
              help="Dialogue engine: transformer (replies a language model writes) or retrieval (the"
              " best-scoring response of a corpus: the model's, or yours with --corpus).")
@click.option("--model", "-m", metavar="FILE", help="Model file of the engine (default: its shipped model): a language"
              " model for transformer, a dual encoder for retrieval, as `nlp-tool train chat` writes them.")
@click.option("--continue", "resume", is_flag=True, help="Go on with the latest saved conversation.")
@click.option("--cid", metavar="ID", help="Go on with the saved conversation ID (`nlp-tool logs` lists them).")
@click.option("--no-log", is_flag=True, help="Save nothing of this conversation.")
@click.option("--input-format", "-i", type=click.Choice(["jsonl"]),
              help="jsonl: the arguments are files (- for stdin) of records {\"id\", \"turns\"}; reply to each.")
@click.option("--id-field", default="id", show_default=True, help="JSONL field holding the record id.")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json", "jsonl", "tsv"]), default="text",
              show_default=True, help="Output format of one-shot and -i jsonl replies.")
@click.option("--output", "-o", type=click.Path(), metavar="FILE|DIR/", help="Write one-shot or -i jsonl replies"
              " to FILE (atomically); -i jsonl replies to DIR/ (a path ending in / or an existing directory): one part"
              " file per --chunk-size records and a manifest, so that the same command run again skips the parts"
              " written.")
@click.option("--on-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
              help="-i jsonl: on a failing record, stop there, or report it and go on.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="-i jsonl: conversations per engine call.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="-i jsonl: run the records in N processes, a chunk at a time; the output is the one of a single"
              " process, in input order.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=DEFAULT_CHUNK_SIZE, show_default=True,
              help="-i jsonl: records per chunk a worker process runs, and per part file of -o DIR/.")
@click.option("--cluster", metavar="ADDRESS|local:N", help="-i jsonl: run the chunks on a Dask cluster (a scheduler's"
              " address, or local:N for N worker processes started for the run); the output is the one of a single"
              " process. Needs pip install \"nlp-tool[dask]\".")
def chat(message: tuple[str, ...], engine: str, model: str | None, resume: bool, cid: str | None, no_log: bool,
         input_format: str | None, id_field: str, fmt: str, output: str | None, on_error: str,
         batch_size: int, workers: int, chunk_size: int, cluster: str | None, **options: Any) -> None:
    """Talk with a dialogue engine.

    \b
    nlp-tool chat                                  a conversation on the terminal
    nlp-tool chat "Hi, can you help me?"           one reply
    printf 'Hi\\nThanks\\n' | nlp-tool chat          one reply per line
    nlp-tool chat -i jsonl dialogues.jsonl         the next turn of each
    nlp-tool chat -e retrieval --corpus faq.csv    replies taken from your FAQ's answers

    Conversations are saved (see `nlp-tool logs`) unless --no-log; -i jsonl
    runs save nothing. Details: docs/chat.md.
    """
    from toolkit_plugins.chat import runs

    options = {key: value for key, value in options.items() if value not in (None, ())}
    if input_format == "jsonl":
        if resume or cid:
            raise click.UsageError("-i jsonl replies to the conversations of its records; --continue and --cid"
                                   " do not apply")
        check_pool_options(workers, cluster)
        pipe = _pipeline(engine, model, options, batch_size)
        run = {"task": TASK, "engine": engine, "model": model, "options": options, "input_format": "jsonl",
               "id_field": id_field, "format": fmt, "chunk_size": chunk_size}
        try:
            runs.batch(pipe, message or ("-",), run, output=output, fmt=fmt, on_error=on_error, workers=workers,
                       cluster=cluster, chunk_size=chunk_size)
        except NlpToolError as error:
            raise _failure(error) from None
        return
    if workers > 1 or cluster is not None:
        raise click.UsageError(f"{'--workers' if workers > 1 else '--cluster'} runs the records of -i jsonl;"
                               " a conversation is one turn after another")
    if output is not None and output.endswith(("/", os.sep)):
        raise click.UsageError("-o DIR/ holds the replies of -i jsonl runs; a one-shot reply goes to a FILE")
    if resume and cid:
        raise click.UsageError("give --continue or --cid ID, not both")
    text = " ".join(message)
    if message and not text.strip():
        raise click.UsageError("the message is empty")
    interactive = not message and sys.stdin.isatty()
    if not interactive and not message and fmt != "text":
        raise click.UsageError("one reply per line is plain text; -f applies to a message or -i jsonl")
    pipe = _pipeline(engine, model, options)
    store = _store(no_log, resume or cid is not None)
    try:
        session = runs.session(pipe.engine, store, resume, cid, not no_log)
        if message:
            runs.one_shot(session, pipe.stamp(), text, fmt, output)
        elif interactive:
            runs.interactive_run(session)
        else:
            runs.piped_run(session)
    except NlpToolError as error:
        raise _failure(error) from None
    finally:
        if store is not None:
            store.close()


for _param in _engine_params():
    chat.params.append(_param)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("cid", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.option("--count", "-n", type=click.IntRange(min=0), default=20, show_default=True,
              help="Conversations listed, the latest first (0: all).")
def logs(cid: str | None, as_json: bool, count: int) -> None:
    """List the saved conversations, or show conversation ID."""
    from toolkit_plugins.chat import runs

    try:
        runs.show_logs(cid, as_json, count)
    except UsageError as error:
        raise Failure(str(error), error.exit_code) from None
    except NlpToolError as error:
        raise _failure(error) from None
