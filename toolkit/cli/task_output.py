"""What a task verb writes: each input's result or error, in input order, as the pipeline runs them."""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from io import StringIO
from typing import IO, Callable, Iterator

import click

from toolkit import api, io, languages
from toolkit.cli.errors import Failure
from toolkit.errors import RUNTIME_FAILURE, NlpToolError
from toolkit.plugins import error_text
from toolkit.progress import ProgressBar
from toolkit.shards import ShardedOutput
from toolkit.workers import ChunkPool, Outcome, chunked, outcomes, ramped, runnable


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


class LanguageTally:
    """The results a run wrote, and how many of them are in a language the model does not read, for the one line
    said after them (toolkit.languages)."""

    def __init__(self) -> None:
        self.unread: Counter = Counter()
        self.answered = 0

    def add(self, batch: list[Outcome]) -> None:
        results = [outcome[1] for outcome in batch]
        self.answered += sum(result is not None for result in results)
        self.unread += languages.unread(results)

    def say(self, task: str) -> None:
        """On stderr, after the results: which inputs the model could not read, and what to do."""
        said = languages.summary(self.unread, self.answered, task)
        if said is not None:
            click.echo(f"nlp-tool: warning: {said}", err=True)


def write_results(
    pool: ChunkPool, stamp: dict, records: Iterator[io.Record], out: io.AtomicOutput, fmt: str, lines: bool,
    on_error: str, quiet: bool, debug: bool, chunk_size: int,
) -> int:
    """Run ``records`` through the pipeline of ``pool`` and write their results in ``fmt``, stamped with
    ``stamp`` (``lines``: the inputs are the lines of files); the number of failed inputs. With ``on_error``
    "stop", the first one raises Failure. The results of each batch (with worker processes: of each chunk of
    ``chunk_size`` inputs) are flushed as it ends, so that a reader downstream has them before the run waits
    for more input. A failure of the output itself (OSError) ends the run."""
    pipe = pool.pipe
    records, many = _peeked(records)
    writer = _writer(out.stream, pipe, stamp, fmt, lines, many)
    progress = ProgressBar(None, "nlp-tool:", unit="inputs", enabled=many and not quiet and sys.stderr.isatty(),
                           leave=False)
    failed = 0
    tally = LanguageTally()
    try:
        if pool.serial:
            batches: Iterator[list[Outcome]] = _batches(pipe, records)
        else:
            chunks = ((chunk, runnable(chunk)) for chunk in chunked(records, chunk_size))
            batches = (outcomes(chunk, results) for chunk, results in pool.map(chunks, progress.update))
        for batch in batches:
            for outcome in batch:
                failed += _written(writer, outcome, on_error, debug)
                if pool.serial and not outcome[0].blank:
                    progress.update(1)
            tally.add(batch)
            out.stream.flush()
        writer.close()
    finally:
        progress.close()
    tally.say(pipe.task)
    return failed


def write_parts(
    pool: ChunkPool, stamp: dict, records: Iterator[io.Record], shards: ShardedOutput, done: set[int], fmt: str,
    lines: bool, on_error: str, quiet: bool, debug: bool, chunk_size: int,
) -> int:
    """``-o DIR/``: the results of each chunk of ``chunk_size`` records (but those ``done`` before) in a part
    file of ``shards``, written as it finishes, each part formatted as a whole output of its own; the number
    of failed inputs, those of parts written by earlier runs included. With ``on_error`` "stop", the chunk
    holding the first failure is not written (the parts finished before it are)."""
    records, many = _peeked(records)
    progress = ProgressBar(None, "nlp-tool:", unit="inputs", enabled=many and not quiet and sys.stderr.isatty(),
                           leave=False)
    total = 0

    def chunks() -> Iterator[tuple[tuple[int, list[io.Record]], list]]:
        nonlocal total
        for index, chunk in enumerate(chunked(records, chunk_size)):
            total = index + 1
            if index not in done:
                yield (index, chunk), runnable(chunk)

    failed = shards.failed_before(done)
    tally = LanguageTally()
    try:
        for (index, chunk), results in pool.map(chunks(), progress.update):
            text = StringIO()
            writer = _writer(text, pool.pipe, stamp, fmt, lines, many)
            found = outcomes(chunk, results)
            failures = sum(_written(writer, outcome, on_error, debug) for outcome in found)
            writer.close()
            shards.write_part(index, text.getvalue(), len(chunk), failures)
            failed += failures
            tally.add(found)
    finally:
        progress.close()
    shards.finish(total)
    # For the inputs this run ran: an earlier run said it of its own.
    tally.say(pool.pipe.task)
    return failed


def _peeked(records: Iterator[io.Record]) -> tuple[Iterator[io.Record], bool]:
    """``records`` as they were, and whether there is more than one (text output then heads each with its id)."""
    first_two = list(itertools.islice(records, 2))
    return itertools.chain(first_two, records), len(first_two) > 1


def _writer(stream: IO[str], pipe: api.Pipeline, stamp: dict, fmt: str, lines: bool, many: bool
            ) -> io.Writer | LineWriter:
    if lines and fmt == "text":
        return LineWriter(stream, pipe.engine.format_text)
    return io.Writer(stream, fmt, stamp, pipe.engine.format_text, many)


def _written(writer: io.Writer | LineWriter, outcome: Outcome, on_error: str, debug: bool) -> int:
    """Write one outcome: 1 for an input that failed (said on stderr; with ``on_error`` "stop", Failure), else 0."""
    record, result, error, code = outcome
    if record.blank:
        if isinstance(writer, LineWriter):
            writer.blank()
        return 0
    if error is None:
        try:
            writer.result(record.id, result)
            return 0
        except io.UnwritableResult as problem:  # a plugin's result or format_text: the input fails
            if debug:
                raise
            error, code = f"its result cannot be written: {error_text(problem.error)}", RUNTIME_FAILURE
    writer.error(record.id, error)
    if on_error == "stop":
        # What went to stdout stays readable: a JSON array ends with the error object.
        writer.close()
        raise Failure(f"input {record.id!r}: {error}", code)
    click.echo(f"nlp-tool: error: input {record.id!r}: {error}", err=True)
    return 1


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


def _batches(pipe: api.Pipeline, records: Iterator[io.Record]) -> Iterator[list[Outcome]]:
    """The outcome of each record, in order, a batch of records at a time (:func:`ramped` up to
    ``pipe.batch_size``).

    Batches count records of every kind, those the pipeline does not run
    (a file that cannot be decoded, a bad JSONL line, a blank line) too:
    were the pipeline left to pull the runnable ones, the others before
    them (a long run of blank lines) would wait in memory without bound.
    """
    for batch in ramped(records, pipe.batch_size):
        values = runnable(batch)
        yield outcomes(batch, pipe(values) if values else [])
