"""The "retrieval" dialogue engine: replies with the best-scoring response of a corpus, never made-up text.

Two scorers:

- ``encoder`` (the default): the dual encoder of the model file
  (:mod:`toolkit_plugins.chat.dual_encoder`) scores every response of the
  corpus against the conversation's last turns; the default model is trained
  on DailyDialog and carries the responses of its training dialogues, which
  are the corpus unless ``--corpus FILE`` gives another;
- ``bm25``: no model; the last ``context_turns`` turns are matched by BM25
  against the contexts of the ``--corpus`` (its dialogues' turns before each
  response, or its FAQ questions), and the reply is the best one's response.
  It is the baseline the encoder is measured against, and the scorer for an
  FAQ whose questions are worded as users ask them.

The corpus is the user's (``--corpus FILE``: dialogues or an FAQ, see
:mod:`toolkit_plugins.chat.corpus`), so the replies are texts someone wrote
and approved. It is read and scored on first use, once per engine. When
nothing scores above ``min_score`` (BM25: no shared word), the reply is the
``fallback`` text, said by its route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterator

from toolkit.engine import LoadsModel, Option, train_settings
from toolkit.errors import OptionError
from toolkit.training import trainer_options

from toolkit_plugins.chat.contract import DOCS_OPTIONS, DialogueEngine, Reply, dialogues_of

MODEL_DIR = Path(__file__).resolve().parent / "models"
SCORERS = ("encoder", "bm25")


def _pieces(text: str) -> Iterator[str]:
    """``text`` in words with the spaces after them: a reply found whole still comes out as a stream does."""
    import re

    yield from re.findall(r"\s*\S+\s*", text) or [text]


class _BM25:
    """Scores of a corpus's pairs by BM25 between their contexts and the conversation's last turns."""

    def __init__(self, contexts: list[str], turns: int) -> None:
        from toolkit_plugins.chat.bm25 import BM25Index

        self.index, self.turns = BM25Index(contexts), turns

    def scores(self, turns: list[str]) -> Any:
        return self.index.scores("\n".join(turns[-self.turns:]))


class _Encoded:
    """Scores of responses by the dual encoder: their vectors, encoded once (or read from the cache), against
    the conversation's."""

    def __init__(self, encoder: Any, responses: list[str]) -> None:
        import numpy as np

        self.encoder, self.vectors = encoder, encoder.response_vectors(responses).astype(np.float32)

    def scores(self, turns: list[str]) -> Any:
        return self.vectors @ self.encoder.encode_contexts([turns])[0]


class RetrievalEngine(LoadsModel, DialogueEngine):
    """Replies taken from a corpus of dialogues or FAQ answers, scored by a dual encoder or by BM25."""

    name = "retrieval"
    description = ("Best-scoring response of a corpus (the model's, or your dialogues or FAQ with --corpus FILE),"
                   " scored by a dual encoder or BM25.")
    version = "2.0"
    takes_model = True
    default_model = str(MODEL_DIR / "dailydialog-retrieval.nlpt")
    default_model_hint = ("train it with `python scripts/train_default_chat_retrieval.py`, or score by words alone"
                          " with --scorer bm25 --corpus FILE")
    record_fields: ClassVar[tuple[str, ...]] = ("turns",)
    options: ClassVar[dict[str, Option]] = {
        "scorer": Option(str, "encoder", "encoder: the dual encoder of --model scores the responses against the"
                         " conversation; bm25: no model, the conversation's words are matched against the corpus's"
                         " contexts.", choices=SCORERS),
        "corpus": Option(str, "", "Dialogues (JSONL with 'turns') or FAQ question/answer pairs (CSV, TSV or"
                         " JSONL) whose responses are the replies; may end in .gz. The encoder's default: the"
                         " responses its model carries."),
        "context_turns": Option(int, 1, "bm25: last turns of the conversation matched against the corpus's"
                                " contexts (and turns before each corpus response that make its context); the"
                                " encoder reads as many as it was trained with.", minimum=1, maximum=20),
        "min_score": Option(float, 0.0, "Reply with --fallback unless the best match scores above this (encoder:"
                            " a cosine, at most 1; bm25: a sum of word weights).", minimum=0),
        "fallback": Option(str, "Sorry, I don't know how to answer that.",
                           "The reply when nothing in the corpus matches."),
        **DOCS_OPTIONS,
    }
    train_options: ClassVar[dict[str, Option]] = {
        **trainer_options(epochs=10, patience=2),
        "batch": Option(int, 256, "Pairs per step; each response is a negative of the batch's other contexts.",
                        minimum=2),
        "learning_rate": Option(float, 1e-3, "Adam learning rate.", minimum=0, min_open=True),
        "vocab_size": Option(int, 20000, "Words of the vocabulary (the most frequent in the training turns).",
                             minimum=1),
        "embedding": Option(int, 128, "Width of the word embedding.", minimum=1),
        "filters": Option(int, 256, "Convolution filters (3 words wide) of the shared tower.", minimum=1),
        "dim": Option(int, 256, "Width of the context and response vectors.", minimum=1),
        "dropout": Option(float, 0.0, "Dropout on the tower's pooled features during training (0: none).",
                          minimum=0, maximum=1, max_open=True),
        "scale": Option(float, 20.0, "Cosines are multiplied by this before the softmax over the batch.",
                        minimum=0, min_open=True, maximum=1000),
        "context_turns": Option(int, 3, "Last turns before a response that make its context.", minimum=1,
                                maximum=20),
        "context_words": Option(int, 64, "Last words of the context read.", minimum=1, maximum=1024),
        "response_words": Option(int, 32, "First words of a response read.", minimum=1, maximum=1024),
        "keep_responses": Option(bool, True, "Store the training dialogues' responses in the model file: its"
                                 " replies when no --corpus is given."),
    }

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if not self.settings["fallback"].strip():
            raise OptionError("the fallback reply is empty; give a text to say when nothing matches")
        if self.settings["scorer"] == "bm25":
            if model is not None:
                raise OptionError("--scorer bm25 reads no model file; leave out --model, or score with the encoder")
            self.model = None

    def _load(self) -> tuple[list, Any, dict | None]:
        from toolkit_plugins.chat.corpus import Pair, read_pairs

        corpus = self.settings["corpus"]
        if self.settings["scorer"] == "bm25":
            # Checked here, when a reply is asked for, not when the engine is made: an evaluation needs no corpus.
            if not corpus:
                raise OptionError(f"engine {self.task}:{self.name} with --scorer bm25 needs --corpus FILE (corpus=):"
                                  " dialogues as JSON lines with 'turns', or FAQ question/answer pairs in CSV, TSV"
                                  " or JSONL")
            pairs = read_pairs(corpus, self.settings["context_turns"])
            return pairs, _BM25([pair.context for pair in pairs], self.settings["context_turns"]), None
        encoder, responses, metadata = self._encoder()
        if corpus:
            pairs = read_pairs(corpus, encoder.context_turns)
        elif responses:
            pairs = [Pair("", response, f"{self.model}#{n}") for n, response in enumerate(responses, 1)]
        else:
            raise OptionError(f"{self.model} carries no responses (trained with keep_responses off); give the"
                              " replies with --corpus FILE")
        return pairs, _Encoded(encoder, [pair.response for pair in pairs]), metadata

    def _encoder(self) -> tuple[Any, list[str], dict]:
        from toolkit_plugins.chat.dual_encoder import read_dual_encoder

        self.model_metadata()  # a missing file, or one of another engine, is refused before it is read
        return read_dual_encoder(self.model)

    def loaded_metadata(self) -> dict | None:
        return self._loaded()[2]

    def reply(self, turns: list[str]) -> Reply:
        from toolkit_plugins.chat.bm25 import best

        pairs, scorer, _ = self._loaded()
        position, score = best(scorer.scores(turns))
        if score <= self.settings["min_score"]:
            text = self.settings["fallback"]
            return Reply("fallback", _pieces(text), {"score": round(score, 4)})
        pair = pairs[position]
        details = {"score": round(score, 4), "source": pair.source}
        if pair.context:
            details["match"] = pair.context
        return Reply("corpus", _pieces(pair.response), details)

    # -- training -----------------------------------------------------------------

    @classmethod
    def train(cls, records: list[dict], output: str, *, valid: list[dict] | None = None, seed: int = 0,
              progress: bool | None = None, **options: Any) -> dict:
        """Train the dual encoder on the (context, response) pairs of the dialogues of ``records``
        (``{"turns": [...]}``), or go on from the checkpoint with ``resume=True``; write one model file.
        ``valid`` picks the best epoch by its Recall@1 among 10."""
        from toolkit_plugins.chat.dual_encoder import train_dual_encoder

        settings = train_settings(cls, options)
        dialogues = dialogues_of(records, "training data")
        held = dialogues_of(valid, "validation data") if valid else None
        return train_dual_encoder(cls, dialogues, held, settings, output, seed, progress)

    # -- evaluation ---------------------------------------------------------------

    def evaluate(self, records: list[dict]) -> dict:
        """Recall@1 among 10 (:mod:`toolkit_plugins.chat.ranking`) and the mean reciprocal rank: for every
        response turn of the dialogues of ``records`` (each turn after the first), the true response among
        responses drawn from other dialogues, scored against the turns before it by the dual encoder, or
        with ``scorer`` bm25 by BM25 between the last ``context_turns`` turns and the responses (ties to the
        candidate listed first)."""
        from toolkit_plugins.chat.ranking import exchanges, rank

        dialogues = dialogues_of(records, "evaluation data")
        found = exchanges(dialogues)
        if self.settings["scorer"] == "bm25":
            from toolkit_plugins.chat.bm25 import BM25Index

            index, k = BM25Index([exchange.response for exchange in found]), self.settings["context_turns"]
            report = rank(found, lambda n, candidates: index.scores("\n".join(found[n].history[-k:]))[candidates])
        else:
            report = self._encoder()[0].rank(found)
        return {"engine": f"{self.task}:{self.name}", "scorer": self.settings["scorer"], "model": self.model,
                "records": len(dialogues), **report}

    def stamp(self) -> dict:
        """The base stamp with the scorer, the corpus and its number of responses: the model and the corpus
        are read here (the responses scored), so that a corpus that cannot be used ends a command before its
        first input (DataError)."""
        return {**super().stamp(), "scorer": self.settings["scorer"], "corpus": self.settings["corpus"] or None,
                "responses": len(self._loaded()[0])}
