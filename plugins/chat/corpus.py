"""Reply corpora: the user's dialogues or FAQ, as (context, response) pairs for retrieval.

Two kinds of file, told apart by their records:

- dialogues: JSON lines ``{"turns": ["...", "...", ...]}`` (DailyDialog's
  files as they are); every turn after the first is a response, its context
  the turns before it (the last ``context_turns`` of them);
- FAQ: question/answer pairs, in CSV or TSV with ``question`` and ``answer``
  columns, or JSON lines ``{"question": ..., "answer": ...}``; the answer is
  the response, the question its context.

A file may end in ``.gz``. Every problem is a DataError naming the file and,
where there is one, the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from toolkit.datasets import data_format_of, read_records, read_text
from toolkit.errors import DataError


@dataclass(frozen=True)
class Pair:
    """A response of the corpus and the context it answers; ``source`` is ``FILE:LINE`` (CSV/TSV: ``FILE:N``,
    the N-th pair) and, for a dialogue, the turn (``FILE:LINE#TURN``, turns counted from 1)."""

    context: str
    response: str
    source: str


def read_pairs(path: str, context_turns: int, encoding: str = "utf-8") -> list[Pair]:
    """The (context, response) pairs of the corpus file ``path``; DataError for a file that cannot be read or
    holds none."""
    fmt = data_format_of(path)
    if fmt == "jsonl":
        pairs = _jsonl_pairs(path, read_text(path, encoding, "corpus file"), context_turns)
    else:
        records = read_records(path, {"question": "question", "answer": "answer"}, fmt, encoding)
        pairs = [Pair(r["question"], r["answer"], f"{path}:{n}") for n, r in enumerate(records, 1)
                 if r["answer"].strip()]
    if not pairs:
        raise DataError(f"{path}: no response to reply with (dialogues need two turns or more; answers must"
                        " not be empty)")
    return pairs


def _jsonl_pairs(path: str, text: str, context_turns: int) -> list[Pair]:
    pairs = []
    # Split on "\n" only: str.splitlines would also cut at U+2028, valid inside JSON strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            record = json.loads(line)
        except ValueError as error:
            raise DataError(f"{where}: invalid JSON: {error}") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, not {type(record).__name__}")
        if "turns" in record:
            turns = record["turns"]
            if not isinstance(turns, list) or not all(isinstance(turn, str) for turn in turns):
                raise DataError(f"{where}: 'turns' must be a list of strings")
            pairs += [Pair("\n".join(turns[max(0, i - context_turns):i]), turns[i], f"{path}:{number}#{i + 1}")
                      for i in range(1, len(turns)) if turns[i].strip()]
        elif isinstance(record.get("question"), str) and isinstance(record.get("answer"), str):
            if record["answer"].strip():
                pairs.append(Pair(record["question"], record["answer"], f"{path}:{number}"))
        else:
            raise DataError(f"{where}: a record needs 'turns' (a dialogue) or 'question' and 'answer' strings"
                            f" (an FAQ entry); it has {', '.join(map(repr, record)) or 'no field'}")
    return pairs
