"""The "retrieval" dialogue engine: replies with the response of a corpus whose context best matches the
conversation's last turns, by BM25.

The corpus is the user's (``--corpus FILE``: dialogues or an FAQ, see
:mod:`toolkit_plugins.chat.corpus`), so the replies are texts someone wrote
and approved, never made up. It is read and indexed on first use, once per
engine. When no context shares a word with the conversation (or none scores
above ``min_score``), the reply is the ``fallback`` text, said by its route.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

from toolkit.engine import LoadsModel, Option
from toolkit.errors import OptionError

from toolkit_plugins.chat.contract import DOCS_OPTIONS, DialogueEngine, Reply


def _pieces(text: str) -> Iterator[str]:
    """``text`` in words with the spaces after them: a reply found whole still comes out as a stream does."""
    import re

    yield from re.findall(r"\s*\S+\s*", text) or [text]


class RetrievalEngine(LoadsModel, DialogueEngine):
    """Replies taken from a corpus of dialogues or FAQ answers, matched by BM25."""

    name = "retrieval"
    description = "Best-matching response of your dialogues or FAQ (--corpus FILE), scored by BM25."
    version = "1.0"
    takes_model = False
    options: ClassVar[dict[str, Option]] = {
        "corpus": Option(str, "", "Dialogues (JSONL with 'turns') or FAQ question/answer pairs (CSV, TSV or"
                         " JSONL) whose responses are the replies; may end in .gz."),
        "context_turns": Option(int, 1, "Last turns of the conversation matched against the corpus's contexts"
                                " (and turns before each corpus response that make its context).",
                                minimum=1, maximum=20),
        "min_score": Option(float, 0.0, "Reply with --fallback unless the best match scores above this.",
                            minimum=0),
        "fallback": Option(str, "Sorry, I don't know how to answer that.",
                           "The reply when nothing in the corpus matches."),
        **DOCS_OPTIONS,
    }

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if not self.settings["corpus"]:
            raise OptionError(f"engine {self.task}:{self.name} needs --corpus FILE (corpus=): dialogues as JSON"
                              " lines with 'turns', or FAQ question/answer pairs in CSV, TSV or JSONL")
        if not self.settings["fallback"].strip():
            raise OptionError("the fallback reply is empty; give a text to say when nothing matches")

    def _load(self) -> tuple[list, Any]:
        from toolkit_plugins.chat.bm25 import BM25Index
        from toolkit_plugins.chat.corpus import read_pairs

        pairs = read_pairs(self.settings["corpus"], self.settings["context_turns"])
        return pairs, BM25Index([pair.context for pair in pairs])

    def reply(self, turns: list[str]) -> Reply:
        from toolkit_plugins.chat.bm25 import best

        pairs, index = self._loaded()
        query = "\n".join(turns[-self.settings["context_turns"]:])
        position, score = best(index.scores(query))
        if score <= self.settings["min_score"]:
            text = self.settings["fallback"]
            return Reply("fallback", _pieces(text), {"score": round(score, 4)})
        pair = pairs[position]
        return Reply("corpus", _pieces(pair.response),
                     {"score": round(score, 4), "match": pair.context, "source": pair.source})

    def stamp(self) -> dict:
        """The base stamp with the corpus and its number of responses: the corpus is read and indexed here,
        as engines with a model file load it for their stamp, so that a corpus that cannot be used ends a
        command before its first input (DataError)."""
        return {**super().stamp(), "corpus": self.settings["corpus"], "responses": len(self._loaded()[0])}
