"""What a task verb writes: each input's result or error, in input order, as the pipeline runs them."""

from __future__ import annotations

import itertools
import sys
from typing import IO, Callable, Iterator

import click

from toolkit import api, io
from toolkit.cli.errors import Failure
from toolkit.errors import RUNTIME_FAILURE, NlpToolError
from toolkit.plugins import error_text
from toolkit.progress import ProgressBar


class LineWriter:
    """``-i lines -f text``: one output line per input line, so that output and input line up (``paste``).

    A result's text has its line breaks written as ``\\n`` (``\\r``); a
    failed input gets an empty line (its error goes to stderr), and so does
    each blank input line.
    """

    def __init__(self, stream: IO[str], format_text: Callable[[dict], str]) -> None:
        self.stream = stream
        self.format_text = format_text

    def result(self, rid: str, result: dict) -> None:
        """Write one result; UnwritableResult, with nothing written, when ``format_text`` fails."""
        text = io.rendered(self.format_text, result)
        self.stream.write(text.replace("\n", "\\n").replace("\r", "\\r") + "\n")

    def error(self, rid: str, message: str) -> None:
        self.stream.write("\n")

    def blank(self) -> None:
        self.stream.write("\n")

    def close(self) -> None:
        """Nothing to end: every line is complete once written."""


def write_results(
    pipe: api.Pipeline, stamp: dict, records: Iterator[io.Record], out: io.AtomicOutput, fmt: str, lines: bool,
    on_error: str, quiet: bool, debug: bool,
) -> int:
    """Run ``records`` through ``pipe`` and write their results in ``fmt``, stamped with ``stamp`` (``lines``:
    the inputs are the lines of files); the number of failed inputs. With ``on_error`` "stop", the first one
    raises Failure. The results of each batch are flushed as it ends, so that a reader downstream has them
    before the run waits for more input. A failure of the output itself (OSError) ends the run."""
    first_two = list(itertools.islice(records, 2))
    many = len(first_two) > 1
    records = itertools.chain(first_two, records)
    if lines and fmt == "text":
        writer: io.Writer | LineWriter = LineWriter(out.stream, pipe.engine.format_text)
    else:
        writer = io.Writer(out.stream, fmt, stamp, pipe.engine.format_text, many)
    progress = ProgressBar(None, "nlp-tool:", unit="inputs", enabled=many and not quiet and sys.stderr.isatty(),
                           leave=False)
    failed = 0
    try:
        for batch in _batches(pipe, records):
            for record, result, error, code in batch:
                if record.blank:
                    if isinstance(writer, LineWriter):
                        writer.blank()
                    continue
                if error is None:
                    try:
                        writer.result(record.id, result)
                    except io.UnwritableResult as problem:  # a plugin's result or format_text: the input fails
                        if debug:
                            raise
                        error, code = f"its result cannot be written: {error_text(problem.error)}", RUNTIME_FAILURE
                if error is not None:
                    failed += 1
                    writer.error(record.id, error)
                    if on_error == "stop":
                        # What went to stdout stays readable: a JSON array ends with the error object.
                        writer.close()
                        raise Failure(f"input {record.id!r}: {error}", code)
                    click.echo(f"nlp-tool: error: input {record.id!r}: {error}", err=True)
                progress.update(1)
            out.stream.flush()
        writer.close()
    finally:
        progress.close()
    return failed


def stream_results(pipe: api.Pipeline, records: Iterator[io.Record], stream: IO[str], on_error: str,
                   debug: bool) -> int:
    """``-f text`` on a terminal, for an engine that streams (``generate``): each input's text written as it
    is made, under a ``==> id <==`` header when there are several, as :class:`io.Writer` lays them out;
    the number of failed inputs (with ``on_error`` "stop", the first raises Failure)."""
    first_two = list(itertools.islice(records, 2))
    many = len(first_two) > 1
    failed = written = 0
    for record in itertools.chain(first_two, records):
        if record.blank:
            continue
        error, code = record.error, RUNTIME_FAILURE
        if error is None:
            if many:
                stream.write(f"{'' if written == 0 else chr(10)}==> {record.id} <==\n")
            started = False
            try:
                for piece in pipe.stream(record.value):
                    stream.write(piece)
                    stream.flush()
                    started = True
                stream.write("\n")
                written += 1
            except Exception as problem:
                if debug:
                    raise
                error = error_text(problem)
                code = problem.exit_code if isinstance(problem, NlpToolError) else RUNTIME_FAILURE
                if started:
                    stream.write("\n")
        if error is not None:
            failed += 1
            if on_error == "stop":
                raise Failure(f"input {record.id!r}: {error}", code)
            click.echo(f"nlp-tool: error: input {record.id!r}: {error}", err=True)
    return failed


# What became of one input: (record, result, None, 0) or (record, None, error, the exit code it ends a run with:
# 2 for an input the engine refuses as unusable, an InputError, and 1 for any other failure).
Outcome = tuple[io.Record, dict | None, str | None, int]


def ramped(items: Iterator, batch_size: int) -> Iterator[list]:
    """Lists of consecutive ``items``: 1, 2, 4, ... of them, then ``batch_size`` each.

    The first results of a stream come after one input, not after a full
    batch (a batch of 32 news articles kept ``summarize -i jsonl`` silent for
    1.5 s); results do not depend on their batch (the engine contract), so
    only the speed of the first few differs.
    """
    size = 1
    while batch := list(itertools.islice(items, size)):
        yield batch
        size = min(2 * size, batch_size)


def _batches(pipe: api.Pipeline, records: Iterator[io.Record]) -> Iterator[list[Outcome]]:
    """The outcome of each record, in order, a batch of records at a time (:func:`ramped` up to
    ``pipe.batch_size``).

    The pipeline runs the values of the records that could be read; the
    others (a file that cannot be decoded, a bad JSONL line, a blank line)
    are reported in their place. Batches count records of every kind: were
    the pipeline left to pull the runnable ones, the others before them (a
    long run of blank lines) would wait in memory without bound.
    """
    for batch in ramped(records, pipe.batch_size):
        runnable = [record.value for record in batch if record.error is None and not record.blank]
        results = iter(pipe(runnable) if runnable else [])
        outcomes = []
        for record in batch:
            if record.error is not None or record.blank:
                outcomes.append((record, None, record.error, RUNTIME_FAILURE))
                continue
            result = next(results)
            if isinstance(result, api.ErrorRecord):
                code = result.exception.exit_code if isinstance(result.exception, NlpToolError) else RUNTIME_FAILURE
                outcomes.append((record, None, result.error, code))
            else:
                outcomes.append((record, result, None, 0))
        yield outcomes
