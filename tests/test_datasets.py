"""toolkit.datasets: CSV/TSV/JSONL records for training and evaluation, their errors, the validation split."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from toolkit.datasets import (ColumnError, data_format_of, read_line_files, read_records, split_positions,
                              split_records)
from toolkit.engine import DataError

COLUMNS = {"text": "review", "label": "sentiment"}


def test_csv_with_mapped_columns_quotes_and_multiline_fields(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,review,sentiment\n1,"Great, really ""great""",pos\n\n2,"two\nlines",neg\n', encoding="utf-8")
    assert read_records(str(path), COLUMNS) == [
        {"text": 'Great, really "great"', "label": "pos"},
        {"text": "two\nlines", "label": "neg"},
    ]


def test_tsv_jsonl_json_array_gzip_and_byte_order_mark(tmp_path):
    (tmp_path / "d.tsv").write_text("review\tsentiment\nfine\tpos\n", encoding="utf-8-sig")
    assert read_records(str(tmp_path / "d.tsv"), COLUMNS) == [{"text": "fine", "label": "pos"}]
    rows = [{"review": "a\u2028b", "sentiment": 1, "extra": None}, {"review": "c", "sentiment": ["x", "y"]}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    expected = [{"text": "a\u2028b", "label": 1}, {"text": "c", "label": ["x", "y"]}]
    assert read_records(str(tmp_path / "d.jsonl"), COLUMNS) == expected
    (tmp_path / "d.json").write_text(json.dumps(rows, indent=1))
    assert read_records(str(tmp_path / "d.json"), COLUMNS) == expected
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress((tmp_path / "d.jsonl").read_bytes()))
    assert read_records(str(tmp_path / "d.jsonl.gz"), COLUMNS) == expected
    (tmp_path / "d.txt").write_text("review,sentiment\nok,pos\n")
    assert read_records(str(tmp_path / "d.txt"), COLUMNS, data_format="csv") == [{"text": "ok", "label": "pos"}]


def test_other_encodings(tmp_path):
    (tmp_path / "d.csv").write_bytes("review,sentiment\ncafé,pos\n".encode("latin-1"))
    assert read_records(str(tmp_path / "d.csv"), COLUMNS, encoding="latin-1") == [{"text": "café", "label": "pos"}]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("d.csv", "id,text,sentiment\n1,a,pos\n",
         "d.csv: no column 'review' for the 'text' field (CSV columns: 'id', 'text', 'sentiment')"),
        ("d.csv", 'review,sentiment\nok,pos\n"bad"x,neg\n', "d.csv: line 3: malformed CSV: "),
        ("d.csv", "review,sentiment\nok,pos\n\nthree,fields,here\n",
         "d.csv: line 4: 3 field(s) where the header has 2 (an unquoted delimiter?)"),
        ("d.tsv", "review\tsentiment\nonly one\n", "d.tsv: line 2: 1 field(s) where the header has 2"),
        ("d.jsonl", '{"review": "a", "sentiment": "pos"}\n{"review": "b",\n', "d.jsonl: line 2: invalid JSON: "),
        ("d.jsonl", '{"review": "a", "sentiment": "pos"}\n[1, 2]\n', "d.jsonl: line 2: expected a JSON object, not list"),
        ("d.jsonl", '{"review": "a"}\n', "d.jsonl: line 1: no field 'sentiment' for the 'label' field (fields: 'review')"),
        ("d.jsonl", '{"review": "a", "sentiment": null}\n', "d.jsonl: line 1: field 'sentiment' is null"),
        ("d.csv", "", "d.csv: the file is empty"),
        ("d.jsonl", "\n  \n", "d.jsonl: the file is empty"),
        ("d.csv", "review,sentiment\n", "d.csv: no records (only a header?)"),
        ("d.csv", b"review,sentiment\nok,pos\nbad \xff byte,neg\n",
         "d.csv: line 3: not valid utf-8 (byte 0xff at offset 28); convert the file or give its encoding"),
        ("d.xlsx", "x", "d.xlsx: cannot tell the data format from the extension '.xlsx'; name it (csv, tsv, jsonl)"),
        ("d.jsonl.gz", "not gzip", "d.jsonl.gz: not a readable gzip file"),
    ],
)
def test_errors_name_the_file_line_and_column(tmp_path, monkeypatch, name, content, message):
    monkeypatch.chdir(tmp_path)
    if isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    elif content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_records(name, COLUMNS)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_tsv_is_read_without_quoting_and_headerless_files_number_their_columns(tmp_path):
    (tmp_path / "p.tsv").write_text('"Look," she said.\tElle a dit : « Regarde. »\r\nHi.\tSalut !\n')
    pairs = {"source": "source", "target": "target"}
    assert read_records(str(tmp_path / "p.tsv"), pairs, header=False) == [
        {"source": '"Look," she said.', "target": "Elle a dit : « Regarde. »"},
        {"source": "Hi.", "target": "Salut !"},
    ]
    assert read_records(str(tmp_path / "p.tsv"), {"source": "2", "target": "1"}, header=False)[1] == {
        "source": "Salut !", "target": "Hi."
    }
    with pytest.raises(ColumnError, match=r"no column 'source' .*\(TSV columns: '\"Look,\" she said.', .*"
                                          r"no header row\? say so \(--no-header\)$"):
        read_records(str(tmp_path / "p.tsv"), pairs)
    with pytest.raises(ColumnError, match=r"no column '3' for the 'target' field \(TSV columns: 1 to 2\)$"):
        read_records(str(tmp_path / "p.tsv"), {"source": "1", "target": "3"}, header=False)
    (tmp_path / "q.csv").write_text("a,b\nc\n")
    with pytest.raises(DataError, match="q.csv: line 2: 1 field\\(s\\) where line 1 has 2"):
        read_records(str(tmp_path / "q.csv"), {"x": "x", "y": "y"}, header=False)


def test_line_files_are_aligned_records(tmp_path):
    (tmp_path / "a.en").write_text("one\r\ntwo\n\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n\n")
    (tmp_path / "b.de").write_text("eins\n")
    fields = ("source", "target")
    assert read_line_files([str(tmp_path / "a.en"), str(tmp_path / "a.de")], fields) == [
        {"source": "one", "target": "eins"}, {"source": "two", "target": "zwei"}, {"source": "", "target": ""}
    ]
    with pytest.raises(DataError, match=r"line files not aligned: .*a.en has 3 lines, .*b.de has 1 lines"):
        read_line_files([str(tmp_path / "a.en"), str(tmp_path / "b.de")], fields)
    with pytest.raises(DataError, match=r"1 line file\(s\) for 2 record fields; .* source, target"):
        read_line_files([str(tmp_path / "a.en")], fields)
    (tmp_path / "train.jsonl.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"train.jsonl.gz: a data file \(jsonl\), but several files are read as"
                                        r" plain-text line files, one per record field; give one data file"):
        read_line_files([str(tmp_path / "a.en"), str(tmp_path / "train.jsonl.gz")], fields)


def test_missing_column_error_says_which_field():
    assert issubclass(ColumnError, DataError) and issubclass(DataError, ValueError)


def test_directory_and_extension_rules(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_records(str(tmp_path), COLUMNS, data_format="csv")
    assert [data_format_of(p) for p in ("a.CSV", "b.tsv.gz", "c.json", "d.ndjson")] == ["csv", "tsv", "jsonl", "jsonl"]


def test_imdb_sized_file_reads_fast(tmp_path):
    # 25,000 reviews, about 33 MB, like the IMDb training set.
    body = "word " * 260
    rows = [json.dumps({"text": f"{i} {body}", "label": "pos" if i % 2 else "neg"}) for i in range(25_000)]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(rows))
    csv_path = tmp_path / "big.csv"
    csv_path.write_text("text,label\n" + "".join(f'"{i} {body}",{"pos" if i % 2 else "neg"}\n' for i in range(25_000)))
    assert path.stat().st_size > 30e6
    for p in (path, csv_path):
        start = time.perf_counter()
        records = read_records(str(p), {"text": "text", "label": "label"})
        assert len(records) == 25_000 and records[1]["label"] == "pos"
        assert time.perf_counter() - start < 3


def _records(n_pos: int, n_neg: int) -> list[dict]:
    return [{"text": f"t{i}", "label": "pos"} for i in range(n_pos)] + [
        {"text": f"u{i}", "label": "neg"} for i in range(n_neg)
    ]


def test_split_is_deterministic_stratified_and_keeps_order():
    records = _records(90, 10)
    train, valid = split_records(records, 0.1, seed=3)
    assert (train, valid) == split_records(records, 0.1, seed=3)
    assert valid != split_records(records, 0.1, seed=4)[1]
    assert sorted(r["label"] for r in valid) == ["neg"] + ["pos"] * 9
    assert len(train) == 90 and {r["text"] for r in train} | {r["text"] for r in valid} == {r["text"] for r in records}
    assert train == [r for r in records if r in train]


def test_split_positions_are_those_of_split_records():
    records = _records(30, 10)
    train_rows, valid_rows = split_positions(records, 0.25, seed=2)
    assert train_rows == sorted(train_rows) and valid_rows == sorted(valid_rows)
    assert sorted(train_rows + valid_rows) == list(range(40))
    assert ([records[i] for i in train_rows], [records[i] for i in valid_rows]) == split_records(records, 0.25, seed=2)
    assert split_positions(records, 0, seed=2) == (list(range(40)), [])


def test_split_edge_cases():
    assert split_records(_records(3, 0), 0, seed=0) == (_records(3, 0), [])
    train, valid = split_records(_records(1, 1), 0.1, seed=0)
    assert len(train) == 1 and len(valid) == 1
    # Multi-label records (lists) cannot be stratified: a plain shuffle.
    records = [{"text": str(i), "label": ["a"]} for i in range(20)]
    assert len(split_records(records, 0.25, seed=1)[1]) == 5
    with pytest.raises(DataError, match="too few records"):
        split_records(_records(2, 0), 0.9, seed=0)
    with pytest.raises(ValueError):
        split_records(_records(5, 5), 1.0, seed=0)
