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
from toolkit.errors import DataError, OptionError

from toolkit_plugins.chat.contract import DOCS_OPTIONS, DialogueEngine, Reply, dialogues_of

CANDIDATES = 10  # the true response and 9 from other dialogues, as Recall@1 among 10 is reported
EVALUATION_SEED = 0


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
    record_fields: ClassVar[tuple[str, ...]] = ("turns",)
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
        if not self.settings["fallback"].strip():
            raise OptionError("the fallback reply is empty; give a text to say when nothing matches")

    def _load(self) -> tuple[list, Any]:
        from toolkit_plugins.chat.bm25 import BM25Index
        from toolkit_plugins.chat.corpus import read_pairs

        # Checked here, when a reply is asked for, not when the engine is made: an evaluation needs no corpus.
        if not self.settings["corpus"]:
            raise OptionError(f"engine {self.task}:{self.name} needs --corpus FILE (corpus=): dialogues as JSON"
                              " lines with 'turns', or FAQ question/answer pairs in CSV, TSV or JSONL")
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

    def evaluate(self, records: list[dict]) -> dict:
        """Recall@1 among :data:`CANDIDATES`: for every response turn of the dialogues of ``records`` (each turn
        after the first), the true response and responses drawn from other dialogues (a fixed seed), placed
        in random order; a hit when the true one scores best against the last ``context_turns`` turns before
        it (BM25 over all the responses, ties to the first listed). Also the mean reciprocal rank."""
        import numpy as np

        from toolkit_plugins.chat.bm25 import BM25Index

        dialogues = dialogues_of(records, "evaluation data")
        pairs = [(d, turns[max(0, i - self.settings["context_turns"]):i], turns[i])
                 for d, turns in enumerate(dialogues) for i in range(1, len(turns))]
        owner = np.array([d for d, _, _ in pairs])
        if len(set(owner.tolist())) < 2:
            raise DataError("evaluation data: Recall@1 draws the other candidates from other dialogues; give two"
                            " dialogues or more")
        index = BM25Index([response for _, _, response in pairs])
        rng = np.random.default_rng(EVALUATION_SEED)
        hits, reciprocal = 0, 0.0
        for n, (d, context, _) in enumerate(pairs):
            others = np.flatnonzero(owner != d)
            candidates = np.append(rng.choice(others, size=min(CANDIDATES - 1, len(others)), replace=False), n)
            rng.shuffle(candidates)
            scores = index.scores("\n".join(context))[candidates]
            true = int(np.flatnonzero(candidates == n)[0])
            # Ties go to the candidate listed first, so an uninformed score is right 1 time in 10, not always.
            rank = int((scores > scores[true]).sum() + (scores[:true] == scores[true]).sum())
            hits += rank == 0
            reciprocal += 1 / (rank + 1)
        return {"engine": f"{self.task}:{self.name}", "scorer": "bm25", "records": len(dialogues),
                "responses": len(pairs), "candidates": CANDIDATES, "seed": EVALUATION_SEED,
                "recall_at_1": round(hits / len(pairs), 4), "mrr": round(reciprocal / len(pairs), 4)}

    def stamp(self) -> dict:
        """The base stamp with the corpus and its number of responses: the corpus is read and indexed here,
        as engines with a model file load it for their stamp, so that a corpus that cannot be used ends a
        command before its first input (DataError)."""
        return {**super().stamp(), "corpus": self.settings["corpus"], "responses": len(self._loaded()[0])}
