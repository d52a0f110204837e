"""SQuAD-format data: the nested JSON of the official files, and flat question records.

A record of the ``qa`` task is ``{"question", "context", "answers"}`` where
``answers`` is a list of ``{"text", "answer_start"}`` (SQuAD's own shape),
of plain strings, or one string (a CSV column); :func:`to_examples` turns
any of these into :class:`Example`. :func:`read_squad` flattens a SQuAD
v1.1 file (``{"data": [{"paragraphs": [{"context", "qas": [...]}]}]}``,
optionally gzip-compressed) into such records.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any

from toolkit.engine import DataError, RecordError
from toolkit.records import check_records


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context; -1 when the data gave none and the text is not in it


@dataclass(frozen=True)
class Example:
    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]


def is_squad_file(path: str) -> bool:
    """True when ``path`` holds one JSON object (optionally gzip-compressed), as SQuAD files do."""
    try:
        with _open(path, "utf-8") as stream:
            head = stream.read(256).lstrip()
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    return head.startswith("{") and '"data"' in head


def read_squad(path: str, encoding: str = "utf-8") -> list[dict]:
    """The questions of a SQuAD-format JSON file as flat records; DataError naming the file for a bad one."""
    try:
        with _open(path, encoding) as stream:
            document = json.load(stream)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    except (UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not valid SQuAD JSON: {error}") from error
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise DataError(f"{path}: not a SQuAD file (no \"data\" list of articles)")
    records = []
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: article {a}: no \"paragraphs\" list")
        for p, paragraph in enumerate(paragraphs):
            where = f"{path}: article {a}, paragraph {p}"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{where}: no \"qas\" list")
            for q, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict):
                    raise DataError(f"{where}, question {q}: not an object")
                records.append({
                    "id": str(qa.get("id", f"{a}-{p}-{q}")),
                    "title": article.get("title"),
                    "question": qa.get("question"),
                    "context": paragraph.get("context"),
                    "answers": qa.get("answers"),
                })
    if not records:
        raise DataError(f"{path}: no questions")
    return records


def to_examples(records: list[dict], what: str = "training data") -> list[Example]:
    """``records`` as Examples; DataError naming the first bad record."""
    examples = []
    for number, record in enumerate(check_records(records, ("question", "context"), what), 1):
        question, context = record["question"], record["context"]
        try:
            answers = tuple(_answer(context, item) for item in _answer_items(record.get("answers")))
        except ValueError as problem:
            raise RecordError(what, number, f": {problem}") from None
        examples.append(Example(str(record.get("id", number)), question, context, answers))
    return examples


def _answer_items(answers: Any) -> list:
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not answers:
        raise ValueError("'answers' must be a non-empty list (or one answer string)")
    return answers


def _answer(context: str, item: Any) -> Answer:
    if isinstance(item, str):
        item = {"text": item}
    if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
        raise ValueError("an answer must be a non-empty string or {\"text\", \"answer_start\"}")
    text, start = item["text"], item.get("answer_start")
    if start is None:
        start = context.find(text)
    elif not isinstance(start, int) or context[start : start + len(text)] != text:
        raise ValueError(f"answer {text!r} is not at answer_start {start!r} of the context")
    return Answer(text, start)


def _open(path: str, encoding: str):
    if path.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding)
    return open(path, encoding=encoding)
