"""Input reading and output writing for the task verbs of the command line.

Kept apart from click so the contract (ids, formats, atomic output) can be
tested and reused without a terminal.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
from io import TextIOWrapper
from dataclasses import dataclass
from contextlib import nullcontext
from typing import IO, Any, Callable, ContextManager, Iterable, Iterator

# InputError lived here before toolkit.errors.
from toolkit.errors import InputError
from toolkit.files import AtomicFile, decoded, write_target
from toolkit.remote import expand_url, is_url, open_url

INPUT_FORMATS = ("text", "lines", "jsonl")
OUTPUT_FORMATS = ("text", "json", "jsonl", "tsv")

# Line breaks to str.splitlines that json.dumps(ensure_ascii=False) leaves raw.
UNICODE_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


@dataclass
class Record:
    """One input: its id, and the value to run on, or why it could not be read, or ``blank``: a blank line of
    ``-i lines`` input, which is no input but still has its (empty) line in line-per-line output."""

    id: str
    value: Any = None
    error: str | None = None
    blank: bool = False


def expand_sources(args: Iterable[str]) -> list[str]:
    """File arguments with globs expanded (for shells that do not), ``-`` kept for stdin; URLs (``s3://...``)
    through fsspec, globs included (toolkit.remote)."""
    sources: list[str] = []
    for arg in args:
        if is_url(arg):
            sources.extend(expand_url(arg))
            continue
        if arg == "-" or os.path.exists(arg):
            sources.append(arg)
            continue
        matches = sorted(glob.glob(arg, recursive=True)) if glob.has_magic(arg) else []
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            raise InputError(f"no such file: {arg}" if not glob.has_magic(arg) else f"no file matches {arg}")
        sources.extend(files)
    for source in sources:
        if source != "-" and not is_url(source) and os.path.isdir(source):
            raise InputError(f"{source} is a directory; give files or a glob such as '{source}/*.txt'")
    return sources


def text_lines(content: str) -> list[str]:
    """``content`` split at line ends: \n, \r\n and \r only.

    str.splitlines also splits at form feeds, U+0085 and U+2028/2029, which
    JSON strings may hold unescaped and which text editors show inside a
    line: line numbers would then drift from the editor's and a JSONL record
    would be cut in two.
    """
    return list(_split_lines([content]))


def _split_lines(chunks: Iterable[str]) -> Iterator[str]:
    """The lines of the text ``chunks`` make together, as :func:`text_lines` cuts them, each line as soon as it ends."""
    # The unfinished line, in pieces: joined once a line end comes, not copied again with every chunk of a
    # long line.
    pieces: list[str] = []
    for chunk in chunks:
        pieces.append(chunk)
        if "\n" not in chunk and "\r" not in chunk:
            continue
        text = "".join(pieces)
        # A \r at the end of a chunk may be the first half of a \r\n that the next chunk completes.
        held = "\r" if text.endswith("\r") else ""
        lines = text[:len(text) - len(held)].replace("\r\n", "\n").replace("\r", "\n").split("\n")
        pieces = [lines.pop() + held]
        yield from lines
    text = "".join(pieces)
    if text:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        yield from lines[:-1] if lines[-1] == "" else lines


def _decoded(stream: IO[bytes], encoding: str) -> Iterator[str]:
    """The text of ``stream`` as it arrives (:func:`toolkit.files.decoded`), a bad byte's error saying what to do."""
    try:
        yield from decoded(stream, encoding)
    except ValueError as error:
        raise ValueError(f"{error}; give the file's encoding with --encoding") from None


def _opened(source: str, stdin: IO[bytes]) -> ContextManager[IO[bytes]]:
    # stdin is read, never closed: it is not the reader's to close.
    if source == "-":
        return nullcontext(stdin)
    return open_url(source) if is_url(source) else open(source, "rb")


def _read_source(source: str, stdin: IO[bytes], encoding: str) -> str:
    """The whole text of a file (``-``: stdin); OSError, or ValueError at a byte that does not decode."""
    with _opened(source, stdin) as stream:
        return "".join(_decoded(stream, encoding))


def read_records(
    sources: list[str],
    texts: Iterable[str],
    input_format: str,
    text_field: str = "text",
    id_field: str = "id",
    question: str | None = None,
    stdin: IO[bytes] | None = None,
    pairs: bool = False,
    encoding: str = "utf-8",
    dialogue: bool = False,
) -> Iterator[Record]:
    """Every input, lazily, in command-line order: ``--text`` values first, then the sources.

    Ids: ``text`` for one ``--text`` (``text:N`` for several), the file name
    (``-`` for stdin) for whole-file input, ``NAME:LINE`` for lines and JSONL
    records, unless a JSONL record has the ``id_field``. With ``question``,
    each text becomes the context of a question+context input; without it,
    for engines that read such ``pairs``, JSONL records must hold "question"
    and "context" fields; with ``dialogue`` (engines that read conversations), a
    "turns" field: a list of strings, the conversation so far.

    Lines and JSONL records are read as they arrive, a chunk at a time, so a
    stream of any length takes constant memory; a whole file (``text``) is
    one input and is read whole. A source that cannot be read (or decoded,
    from the bad byte on) is one failed input named after the source.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    texts = list(texts)
    for n, text in enumerate(texts, 1):
        yield Record("text" if len(texts) == 1 else f"text:{n}", _wrap(text, question))
    for source in sources:
        name = "-" if source == "-" else source
        try:
            if input_format == "text":
                yield Record(name, _wrap(_read_source(source, stdin, encoding), question))
                continue
            with _opened(source, stdin) as stream:
                for number, line in enumerate(_split_lines(_decoded(stream, encoding)), 1):
                    rid = f"{name}:{number}"
                    if input_format == "lines":
                        yield Record(rid, _wrap(line, question)) if line.strip() else Record(rid, blank=True)
                    elif line.strip():
                        yield _jsonl_record(rid, line, text_field, id_field, question, pairs, dialogue)
        except (OSError, ValueError) as error:
            yield Record(name, error=f"cannot read {name}: {error}")


def question_records(
    context: str, questions: list[str], questions_file: str | None = None, stdin: IO[bytes] | None = None,
    encoding: str = "utf-8",
) -> Iterator[Record]:
    """Question+context inputs: every question asked of the document ``context`` (a file name, ``-`` for stdin).

    ``questions`` come first (ids ``question``, or ``question:N`` for
    several), then the non-empty lines of ``questions_file`` (ids
    ``FILE:LINE``). Files that cannot be read raise InputError before
    anything runs.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    document = _read_named(context, stdin, "context", encoding)
    lines = (text_lines(_read_named(questions_file, stdin, "questions", encoding)) if questions_file is not None
             else [])
    records = [Record("question" if len(questions) == 1 else f"question:{n}", {"question": q, "context": document})
               for n, q in enumerate(questions, 1)]
    records += [Record(f"{questions_file}:{n}", {"question": line.strip(), "context": document})
                for n, line in enumerate(lines, 1) if line.strip()]
    if not records:
        raise InputError(f"{questions_file} holds no question")
    return iter(records)


def _read_named(source: str, stdin: IO[bytes], what: str, encoding: str) -> str:
    if source != "-" and os.path.isdir(source):
        raise InputError(f"{what} {source} is a directory, not a file")
    try:
        return _read_source(source, stdin, encoding)
    except FileNotFoundError:
        raise InputError(f"no such file: {source}") from None
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {what} {source}: {error}") from None


def _wrap(text: str, question: str | None) -> Any:
    return text if question is None else {"question": question, "context": text}


def _jsonl_record(
    where: str, line: str, text_field: str, id_field: str, question: str | None, pairs: bool, dialogue: bool = False
) -> Record:
    try:
        record = json.loads(line)
    except ValueError as error:
        return Record(where, error=f"invalid JSON: {error}")
    if not isinstance(record, dict):
        return Record(where, error="a JSONL line must hold a JSON object")
    rid = str(record[id_field]) if record.get(id_field) is not None else where
    if dialogue:
        turns = record.get("turns")
        if not isinstance(turns, list) or not all(isinstance(turn, str) for turn in turns):
            return Record(rid, error="no 'turns' field holding a list of strings (the conversation so far)")
        return Record(rid, {"turns": turns})
    if pairs and question is None:
        for field in ("question", "context"):
            if field not in record:
                return Record(rid, error=f"no {field!r} field (records need 'question' and 'context';"
                                         " --question asks one question of every text)")
        if not (isinstance(record["question"], str) and isinstance(record["context"], str)):
            return Record(rid, error="fields 'question' and 'context' must be strings")
        return Record(rid, {"question": record["question"], "context": record["context"]})
    text = record.get(text_field)
    if not isinstance(text, str):
        return Record(rid, error=f"no string field {text_field!r} (choose another with --text-field)")
    return Record(rid, _wrap(text, question))


class AtomicOutput:
    """A text stream that is either stdout, or a file that appears only once complete.

    The file goes through :class:`toolkit.files.AtomicFile`: it replaces its
    destination on :meth:`commit`; on an error or Ctrl-C :meth:`discard`
    removes it and any earlier version stays as it was. A symbolic link's
    target is what gets replaced; a device or named pipe (``-o /dev/stderr``,
    a FIFO) is written in place. ``name`` is what messages call it.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.name = "stdout" if path is None or path == "-" else path
        self._file: AtomicFile | None = None
        if path is None or path == "-":
            self.stream: IO[str] = sys.stdout
            return
        self.path, replaceable = write_target(path)
        if not replaceable:
            self.stream = open(self.path, "w", encoding="utf-8", newline="\n")
            return
        self._file = AtomicFile(self.path)
        try:
            self.stream = TextIOWrapper(self._file.stream, encoding="utf-8", newline="\n")
        except BaseException:  # Ctrl-C or SIGTERM this early must not leave the temporary file either
            self._file.discard()
            raise

    def commit(self) -> None:
        if self.stream is sys.stdout:
            self.stream.flush()
            return
        if self._file is None:
            self.stream.close()
            return
        self.stream.flush()
        self._file.commit()

    def discard(self) -> None:
        """End a run that failed: a file is removed; what went to stdout or a device stays, as far as it can
        be written."""
        if self._file is not None:
            self._file.discard()
            return
        try:
            self.stream.flush()
            if self.stream is not sys.stdout:
                self.stream.close()
        except OSError:
            # The output itself failed (a full disk, a reader gone): what it still buffers is dropped.
            abandon(self.stream)


def abandon(stream: IO[str]) -> None:
    """Drop what ``stream`` buffers and send what follows nowhere, for an output that cannot be written (its
    reader went away, its disk is full): Python would otherwise try to flush it again at exit and print a
    second error."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file of the system (tests capture stdout in memory), or closed
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class UnwritableResult(Exception):
    """A result that cannot be written (a value JSON cannot hold, an engine's ``format_text`` failing):
    a failure of its input, unlike an OSError of the output, which ends the run. ``error`` is why."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def rendered(render: Callable[..., str], *args: Any) -> str:
    """``render(*args)``, the text of one result; UnwritableResult if it fails."""
    try:
        return render(*args)
    except Exception as error:
        raise UnwritableResult(error) from error


def _tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def plain(value: Any) -> Any:
    """``value`` as JSON's types: numpy scalars and arrays as numbers and lists, NaN and infinities as None.

    Engines compute with numpy, and a stray ``np.float32`` in a result or a
    report would make ``json.dumps`` fail; NaN would make it write ``NaN``,
    which is not JSON. Anything else that JSON cannot hold raises TypeError
    naming its type.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return plain(value.tolist())
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


class Writer:
    """Writes results in one of OUTPUT_FORMATS.

    - text: the engine's plain-text reading of each result; with several
      inputs, each under a ``==> id <==`` header, blank line between;
    - jsonl: one ``{"id", "result", "stamp"}`` object per line (``"error"``
      instead of ``"result"`` for a skipped input);
    - json: the same objects in one JSON array;
    - tsv: a header ``id`` + the scalar fields of the first result, then
      one row per result; tabs and newlines in cells are escaped as \\t, \\n.
    """

    def __init__(
        self, stream: IO[str], fmt: str, stamp: dict, format_text: Callable[[dict], str], many: bool
    ) -> None:
        self.stream = stream
        self.fmt = fmt
        self.stamp = stamp
        self.format_text = format_text
        self.many = many
        self.count = 0
        self.columns: list[str] | None = None

    def result(self, rid: str, result: dict) -> None:
        """Write one result; UnwritableResult, with nothing written, when it cannot be (values JSON cannot
        hold, ``format_text`` failing); OSError when the stream fails."""
        self.stream.write(rendered(self._text, rid, result))
        self.count += 1

    def _text(self, rid: str, result: dict) -> str:
        if self.fmt == "text":
            block = self.format_text(result)
            if self.many:
                block = f"{'' if self.count == 0 else chr(10)}==> {rid} <==\n{block}"
            return block + "\n"
        if self.fmt == "tsv":
            result = plain(result)
            columns = self.columns
            if columns is None:
                columns = [k for k, v in result.items() if v is None or isinstance(v, (str, int, float, bool))]
            row = "\t".join(_tsv_cell(x) for x in [rid, *(result.get(k) for k in columns)]) + "\n"
            if self.columns is None:
                self.columns = columns
                row = "\t".join(["id", *columns]) + "\n" + row
            return row
        return self._json({"id": rid, "result": plain(result), "stamp": self.stamp})

    def error(self, rid: str, message: str) -> None:
        if self.fmt in ("json", "jsonl"):
            self.stream.write(self._json({"id": rid, "error": message, "stamp": self.stamp}))
            self.count += 1

    def _json(self, obj: dict) -> str:
        # Escaped, these stay inside their line for readers that split at every
        # Unicode line break (str.splitlines); unescaped they are valid JSON too.
        text = json.dumps(obj, ensure_ascii=False).translate(UNICODE_LINE_BREAKS)
        if self.fmt == "jsonl":
            return text + "\n"
        return ("[\n" if self.count == 0 else ",\n") + text

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("[]\n" if self.count == 0 else "\n]\n")
