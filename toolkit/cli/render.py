"""Reports and tables as the commands print them: aligned ``key: value`` lines, tables of metrics and listings."""

from __future__ import annotations

import json
from typing import Any

import click

from toolkit import io
from toolkit.cli.errors import Failure


def print_report(report: dict, fmt: str, what: str) -> None:
    """``report`` on stdout: JSON, or the aligned lines of :func:`report_lines`."""
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


def _record_list(value: Any) -> bool:
    """A list of dicts of scalars, such as a training history: printed as a table, one row per dict."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v and all(map(_scalar, v.values())) for v in value)
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
    dicts of dicts (per-class metrics), for lists of dicts (a training history) and for confusion matrices (``{"labels": [...], "matrix": [[...]]}``).
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
        elif _record_list(value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            lines += _aligned([columns, *([_cell(row.get(c)) for c in columns] for row in value)], inner)
        elif isinstance(value, dict):
            lines += report_lines(value, inner)
        else:
            lines[-1] += "  " + json.dumps(value, ensure_ascii=False)
    return lines


def table(header: list[str], rows: list[tuple]) -> None:
    """``rows`` under ``header`` in aligned columns; the last column runs on unaligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        cells = [str(x).ljust(w) for x, w in zip(row[:-1], widths)] + [str(row[-1])]
        click.echo("  ".join(cells).rstrip())


