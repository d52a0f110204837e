"""Training and evaluation data: CSV, TSV and JSON lines files read into records.

A record is a dict keyed by an engine's ``record_fields`` (``{"text": ...,
"label": ...}``); ``columns`` maps each field to the file's own column (CSV,
TSV) or key (JSONL) name. Every problem is a :class:`~toolkit.errors.DataError`
with a one-line message naming the file and, where there is one, the line.
Only the standard library is used, so the command line stays cheap to start.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import zlib
from collections.abc import Iterator
from typing import Any

# ColumnError lived here before toolkit.errors.
from toolkit.errors import ColumnError, DataError
from toolkit.files import decode_text

DATA_FORMATS = ("csv", "tsv", "jsonl")
# ".json" files are read as JSON lines, or as one JSON array of objects when they start with "[".
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

# The csv module refuses fields over 128 KiB by default; a record may hold a
# whole article. The limit is process-wide, hence set once, at import.
csv.field_size_limit(2**31 - 1)


def data_format_of(path: str) -> str:
    """The data format that ``path``'s extension names (a trailing ``.gz`` is looked through)."""
    name = path[:-3] if path.lower().endswith(".gz") else path
    extension = os.path.splitext(name)[1].lower()
    if extension not in EXTENSIONS:
        raise DataError(
            f"{path}: cannot tell the data format from the extension {extension or '(none)'!r};"
            f" name it ({', '.join(DATA_FORMATS)})"
        )
    return EXTENSIONS[extension]


def read_records(
    path: str, columns: dict[str, str], data_format: str | None = None, encoding: str = "utf-8",
    header: bool = True,
) -> list[dict]:
    """The records of the CSV, TSV or JSON lines file ``path``, as dicts keyed by the fields of ``columns``.

    ``columns`` maps record fields to column names: ``{"text": "review",
    "label": "sentiment"}``. ``data_format`` is one of :data:`DATA_FORMATS`;
    by default it follows the extension (``.csv``, ``.tsv``, ``.jsonl``,
    ``.json``, each optionally ``.gz``-compressed). CSV and TSV files have a
    header row, or with ``header=False`` none: their columns are then named
    by number from 1, and a field left at its own name takes the column of
    its place in ``columns`` (``{"source": "source", "target": "target"}``
    reads columns 1 and 2). They give string values; JSON values are kept as they are
    (a label may be a number, or a list for multi-label data). A UTF-8
    byte-order mark is skipped. Raises DataError (ColumnError for a missing
    column) naming the file and line.
    """
    fmt = data_format or data_format_of(path)
    if fmt not in DATA_FORMATS:
        raise DataError(f"unknown data format {fmt!r} (choose from {', '.join(DATA_FORMATS)})")
    text = read_text(path, encoding)
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    if fmt == "jsonl":
        records = _json_records(path, text, columns)
    else:
        records = _delimited_records(path, text, columns, "\t" if fmt == "tsv" else ",", header)
    if not records:
        raise DataError(f"{path}: no records (only a header?)")
    return records


def read_text(path: str, encoding: str = "utf-8", kind: str = "file") -> str:
    """The text of the file ``path`` (gzip-compressed when its name ends in .gz), decoded as
    :func:`toolkit.files.decode_text` decodes; DataError naming the file, as a ``kind``, when it cannot be
    read or decoded."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if path.lower().endswith(".gz"):
            data = gzip.decompress(data)
    except FileNotFoundError:
        raise DataError(f"{path}: no such {kind}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a {kind}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{path}: not a readable gzip file ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return decode_text(data, encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}") from None
    except ValueError as error:
        raise DataError(f"{path}: {error}; convert the file or give its encoding") from None


def _delimited_records(
    path: str, text: str, columns: dict[str, str], delimiter: str, has_header: bool = True
) -> list[dict]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    if not has_header:
        columns = {field: str(place) if column == field else column
                   for place, (field, column) in enumerate(columns.items(), 1)}
    records: list[dict] = []
    header: list[str] | None = None
    picks: list[tuple[str, int]] = []
    rows = _tsv_rows(text) if kind == "TSV" else _csv_rows(path, text)
    for line, row in rows:
        if header is None:
            header = row if has_header else [str(n) for n in range(1, len(row) + 1)]
            # When no wanted column is there, the first line may be data rather than a header.
            hint = has_header and not set(columns.values()) & set(header)
            picks = [(field, _column_index(path, header, field, column, kind, not has_header, hint))
                     for field, column in columns.items()]
            if has_header:
                continue
        if len(row) != len(header):
            first = "the header" if has_header else "line 1"
            raise DataError(
                f"{path}: line {line}: {len(row)} field(s) where {first} has {len(header)}"
                + (" (a quoted field not closed?)" if kind == "CSV" and len(row) < len(header) else "")
                + (" (an unquoted delimiter?)" if kind == "CSV" and len(row) > len(header) else "")
            )
        records.append({field: row[index] for field, index in picks})
    return records


def _tsv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    # TSV as IANA defines it: fields split at tabs, no quoting, so text may hold quotes as it is
    # (sentence-pair files such as Tatoeba's start lines with '"'); fields with tabs or newlines need CSV.
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if line:
            yield number, line.split("\t")


def _csv_rows(path: str, text: str) -> Iterator[tuple[int, list[str]]]:
    # strict: a stray quote is an error with a line number, not a silently merged field.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for row in reader:
            if row:
                yield start, row
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV: {error}") from None


def _column_index(
    path: str, header: list[str], field: str, column: str, kind: str, numbered: bool, header_hint: bool
) -> int:
    try:
        return header.index(column)
    except ValueError:
        available = f"1 to {len(header)}" if numbered else ", ".join(map(repr, header))
        hint = "; no header row? say so (--no-header)" if header_hint else ""
        message = f"{path}: no column {column!r} for the {field!r} field ({kind} columns: {available}){hint}"
        raise ColumnError(message, field) from None


def _json_records(path: str, text: str, columns: dict[str, str]) -> list[dict]:
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {error.lineno}: invalid JSON: {error.msg}") from None
        return [_json_record(path, f"record {n}", item, columns) for n, item in enumerate(items, 1)]
    records = []
    # Split on "\n" only: str.splitlines would also cut at U+2028 and other separators valid inside JSON strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number}: invalid JSON: {error.msg} (column {error.colno})") from None
        records.append(_json_record(path, f"line {number}", item, columns))
    return records


def _json_record(path: str, where: str, item: Any, columns: dict[str, str]) -> dict:
    if not isinstance(item, dict):
        raise DataError(f"{path}: {where}: expected a JSON object, not {type(item).__name__}")
    record = {}
    for field, key in columns.items():
        value = item.get(key)
        if value is None:
            if key in item:
                raise DataError(f"{path}: {where}: field {key!r} is null")
            available = ", ".join(map(repr, item)) or "none"
            raise ColumnError(f"{path}: {where}: no field {key!r} for the {field!r} field (fields: {available})", field)
        record[field] = value
    return record


def read_line_files(paths: list[str], fields: tuple[str, ...], encoding: str = "utf-8") -> list[dict]:
    """Records from aligned plain-text files, one per field in order: line i of each file is record i.

    The layout of parallel corpora (``train.en`` beside ``train.de``). The
    files must have the same number of lines; a final newline is optional.
    Raises DataError.
    """
    if len(paths) != len(fields):
        raise DataError(f"{len(paths)} line file(s) for {len(fields)} record fields; give one file per field,"
                        f" in this order: {', '.join(fields)}")
    for path in paths:
        name = path[:-3] if path.lower().endswith(".gz") else path
        # A CSV or JSONL file's lines are records, not one field each: read as a line file, each whole
        # line would become a text or a label.
        if os.path.splitext(name)[1].lower() in EXTENSIONS:
            raise DataError(f"{path}: a data file ({EXTENSIONS[os.path.splitext(name)[1].lower()]}), but several"
                            " files are read as plain-text line files, one per record field; give one data file")
    columns = []
    for path in paths:
        text = read_text(path, encoding)
        if not text.strip():
            raise DataError(f"{path}: the file is empty")
        columns.append(text[:-1].split("\n") if text.endswith("\n") else text.split("\n"))
    counts = {path: len(lines) for path, lines in zip(paths, columns)}
    if len(set(counts.values())) > 1:
        raise DataError("line files not aligned: " + ", ".join(f"{path} has {n} lines" for path, n in counts.items()))
    return [{field: line.rstrip("\r") for field, line in zip(fields, row)} for row in zip(*columns)]


def split_records(records: list[dict], valid_fraction: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """``records`` split into (train, valid), with about ``valid_fraction`` of them in valid.

    Deterministic for a given ``seed`` and record order. When every record
    has a scalar "label", the split is stratified: each label keeps its share
    in both parts, and a label seen once stays in train. Both parts keep the
    records' original order. :func:`split_positions` gives the same split as
    positions in ``records``.
    """
    train, valid = split_positions(records, valid_fraction, seed)
    return [records[i] for i in train], [records[i] for i in valid]


def split_positions(records: list[dict], valid_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """The positions in ``records`` (from 0, increasing) of the train and valid parts of :func:`split_records`."""
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in [0, 1), not {valid_fraction}")
    if valid_fraction == 0:
        return list(range(len(records))), []
    rng = random.Random(seed)
    stratify = all(isinstance(r.get("label"), (str, int, float, bool)) for r in records)
    groups: dict[Any, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(record["label"] if stratify else None, []).append(i)
    chosen: set[int] = set()
    for indices in groups.values():
        rng.shuffle(indices)
        chosen.update(indices[: round(len(indices) * valid_fraction)])
    if not chosen and len(records) > 1:
        chosen.add(rng.randrange(len(records)))
    train = [i for i in range(len(records)) if i not in chosen]
    if not train:
        raise DataError(f"too few records ({len(records)}) to set {valid_fraction:.0%} aside for validation")
    return train, sorted(chosen)
