"""Property tests (hypothesis) of the input readers: the verbs' `-i text|lines|jsonl` and the CSV/TSV/JSONL
training data. Any bytes give records or one clear error, never another exception; what was written reads back."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit import io as tio
from toolkit.datasets import read_records
from toolkit.errors import DataError

BOUNDED = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
# Texts of any characters but line ends, which the line readers split at (\n, \r\n and \r).
LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def records_of(data: bytes, input_format: str) -> list[tio.Record]:
    return list(tio.read_records(["-"], [], input_format, stdin=io.BytesIO(data)))


@BOUNDED
@given(data=st.binary(max_size=2000), input_format=st.sampled_from(["text", "lines", "jsonl"]))
def test_any_bytes_on_stdin_give_records_or_one_failed_input(data, input_format):
    records = records_of(data, input_format)
    for record in records:
        assert (record.value is None) == (record.error is not None or record.blank)
        assert record.error is None or (record.error.strip() and "\n" not in record.error)
    # Only an undecodable byte or a bad JSONL line fails an input; every failure names where it is.
    assert all(r.error is None or r.id.startswith("-") for r in records)


@BOUNDED
@given(lines=st.lists(LINE, max_size=30), ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=30,
                                                         max_size=30), final=st.booleans())
def test_lines_read_back_whatever_their_line_ends(lines, ends, final):
    ends = ends[: len(lines)]
    for i in range(len(ends) - 1):
        # "\r" then an empty line's "\n" is one "\r\n": the writer of such a file meant one line end.
        if ends[i] == "\r" and lines[i + 1] == "" and ends[i + 1].startswith("\n"):
            ends[i] = "\r\n"
    text = "".join(line + end for line, end in zip(lines, ends))
    if not final and text:
        text = text[: -len(ends[len(lines) - 1])]  # no line end after the last line
    records = records_of(text.encode("utf-8"), "lines")
    expected = [line for line in lines]
    if not final and lines and lines[-1] == "":
        expected = expected[:-1]  # an empty last line without its end is no line
    assert [r.value if not r.blank else "" for r in records] == [line if line.strip() else "" for line in expected]
    assert [r.id for r in records] == [f"-:{n}" for n in range(1, len(records) + 1)]
    assert all(r.blank == (not line.strip()) for r, line in zip(records, expected))


@BOUNDED
@given(texts=st.lists(ANY_TEXT.filter(str.strip), max_size=20))
def test_jsonl_texts_read_back(texts):
    data = "".join(json.dumps({"text": text}) + "\n" for text in texts).encode("utf-8")
    assert [r.value for r in records_of(data, "jsonl")] == texts


def read_back(content: bytes, suffix: str, columns: dict[str, str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(content)
        return read_records(str(path), columns)


@BOUNDED
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_any_bytes_as_training_data_give_records_or_one_data_error(data, suffix):
    try:
        records = read_back(data, suffix, {"text": "text", "label": "label"})
    except DataError as error:
        assert str(error).strip() and "\n" not in str(error)
        return
    assert records and all(set(r) == {"text", "label"} for r in records)


@BOUNDED
@given(rows=st.lists(st.tuples(ANY_TEXT, LINE), min_size=1, max_size=20))
def test_csv_written_by_the_csv_module_reads_back(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    records = read_back(out.getvalue().encode("utf-8"), ".csv", {"text": "text", "label": "label"})
    assert [(r["text"], r["label"]) for r in records] == [tuple(row) for row in rows]


@BOUNDED
@given(rows=st.lists(st.tuples(ANY_TEXT, st.one_of(LINE, st.integers(), st.lists(LINE, max_size=3))),
                     min_size=1, max_size=20))
def test_jsonl_training_records_read_back_with_their_json_values(rows):
    content = "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows)
    records = read_back(content.encode("utf-8"), ".jsonl", {"text": "text", "label": "label"})
    assert [(r["text"], r["label"]) for r in records] == rows
