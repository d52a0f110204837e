"""What a task verb writes: each input's result or error, in input order, as the pipeline runs them."""

from __future__ import annotations

import itertools
import sys
from collections import deque
from typing import IO, Callable, Iterator

import click

from toolkit import api, io
from toolkit.cli.errors import Failure
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
        """Write one result; raises, with nothing written, when ``format_text`` fails."""
        self.stream.write(self.format_text(result).replace("\n", "\\n").replace("\r", "\\r") + "\n")

    def error(self, rid: str, message: str) -> None:
        self.stream.write("\n")

    def blank(self) -> None:
        self.stream.write("\n")

    def close(self) -> None:
        """Nothing to end: every line is complete once written."""


def write_results(
    pipe: api.Pipeline, records: Iterator[io.Record], out: io.AtomicOutput, fmt: str, lines: bool, on_error: str,
    quiet: bool, debug: bool,
) -> int:
    """Run ``records`` through ``pipe`` and write their results in ``fmt`` (``lines``: the inputs are the lines
    of files); the number of failed inputs. With ``on_error`` "stop", the first one raises Failure."""
    first_two = list(itertools.islice(records, 2))
    many = len(first_two) > 1
    records = itertools.chain(first_two, records)
    if lines and fmt == "text":
        writer: io.Writer | LineWriter = LineWriter(out.stream, pipe.engine.format_text)
    else:
        writer = io.Writer(out.stream, fmt, pipe.stamp(), pipe.engine.format_text, many)
    progress = ProgressBar(None, "nlp-tool:", unit="inputs", enabled=many and not quiet and sys.stderr.isatty(),
                           leave=False)
    failed = 0
    try:
        for record, result, error in _outcomes(pipe, records):
            if record.blank:
                if isinstance(writer, LineWriter):
                    writer.blank()
                continue
            if error is None:
                try:
                    writer.result(record.id, result)
                except Exception as problem:  # a plugin's result or format_text: the input fails, not the run
                    if debug:
                        raise
                    error = f"its result cannot be written: {error_text(problem)}"
            if error is not None:
                failed += 1
                writer.error(record.id, error)
                if on_error == "stop":
                    # What went to stdout stays readable: a JSON array ends with the error object.
                    writer.close()
                    raise Failure(f"input {record.id!r}: {error}")
                click.echo(f"nlp-tool: error: input {record.id!r}: {error}", err=True)
            progress.update(1)
        writer.close()
    finally:
        progress.close()
    return failed


def _outcomes(pipe: api.Pipeline, records: Iterator[io.Record]) -> Iterator[tuple[io.Record, dict | None, str | None]]:
    """(record, result, None) or (record, None, error) for each record, in order.

    The pipeline runs the values of the records that could be read, pulling
    them a batch at a time; the others (a file that cannot be decoded, a bad
    JSONL line, a blank line) wait in line to be reported in their place.
    """
    waiting: deque[io.Record] = deque()

    def readable() -> Iterator:
        for record in records:
            waiting.append(record)
            if record.error is None and not record.blank:
                yield record.value

    for result in pipe(readable()):
        record = waiting.popleft()
        while record.error is not None or record.blank:
            yield record, None, record.error
            record = waiting.popleft()
        if isinstance(result, api.ErrorRecord):
            yield record, None, result.error
        else:
            yield record, result, None
    for record in waiting:
        yield record, None, record.error
