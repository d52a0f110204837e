"""The record checks every engine makes before it trains or evaluates: one function, one wording."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toolkit.errors import DataError, RecordError


def check_records(records: Any, fields: Sequence[str], part: str = "training data", *,
                  empty: bool = False) -> list[Mapping[str, Any]]:
    """``records`` once checked: a non-empty list of mappings whose ``fields`` are strings.

    ``part`` names the list in messages ("training data", "validation data",
    "evaluation data"). A field's string must hold more than white space
    unless ``empty``. Raises DataError for a list that is none or empty, and
    RecordError naming the first bad record ("training data: record 7 has an
    empty text"). Plugins add their domain checks after this one.
    """
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise DataError(f"{part}: records must be a list of mappings, not a {type(records).__name__}")
    if not records:
        raise DataError(f"{part}: no records")
    for number, record in enumerate(records, 1):
        if not isinstance(record, Mapping):
            raise RecordError(part, number, f" is a {type(record).__name__}, not a mapping")
        for field in fields:
            value = record.get(field)
            if value is None:
                raise RecordError(part, number, f" has no {field!r}")
            if not isinstance(value, str):
                raise RecordError(part, number, f": {field} is a {type(value).__name__}, not a string")
            if not empty and not value.strip():
                raise RecordError(part, number, f" has an empty {field}")
    return list(records)
