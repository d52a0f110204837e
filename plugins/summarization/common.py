"""What every summarization engine shares: length options, result dicts and ROUGE evaluation.

An engine subclass provides ``_rank(text, sentences, k)``: the candidate
sentences best first, each with a score (``k``: how many will be kept, None
under a word budget). Choosing how many to keep
(``sentences``, ``ratio`` or ``words``), putting them back in document order
and building the result dict live here, so every engine answers the same
options in the same way and can be scored with ``nlp-tool evaluate summarize``.
"""

from __future__ import annotations

import abc
import math
import re
import time
from typing import Any, ClassVar

from toolkit.contracts import TaskContract, quotes
from toolkit.engine import Engine, Option
from toolkit.records import check_records
from toolkit.text.sentences import Sentence, split_sentences
from toolkit.threads import serial_blas

TASK = "summarize"

# One CJK character counts as one word: those scripts have no spaces, and a
# character is the unit both the word budget and the TF-IDF features use.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD = re.compile(rf"[{CJK}]|[^\W{CJK}]+")

AUTO_MAX = 20  # the longest summary the automatic length gives

LENGTH_OPTIONS = {
    "sentences": Option(int, 0, "Number of sentences in the summary (0: about the square root of the"
                        f" document's sentence count, 1 to {AUTO_MAX}).", minimum=0),
    "ratio": Option(float, 0.0, "Keep this fraction of the sentences instead (0: off).", minimum=0, maximum=1),
    "words": Option(int, 0, "Keep sentences until the summary has about W words instead (0: off).", minimum=0),
}


def _quotes_its_sentences(text: str, result: dict) -> str | None:
    for number, sentence in enumerate(result["sentences"], 1):
        if not isinstance(sentence, dict):
            return f"sentence {number} is not an object"
        problem = quotes(text, sentence.get("start"), sentence.get("end"), sentence.get("text"), f"sentence {number}")
        if problem is not None:
            return problem
    return None


CONTRACT = TaskContract(
    task=TASK,
    inputs="text",
    description="Extractive summary: the chosen sentences of the text, in document order, with their offsets.",
    results={"summary": "str", "sentences": "list"},
    options=LENGTH_OPTIONS,
    # Each option sets the summary's length on its own; with two, one would be silently ignored.
    exclusive=(tuple(LENGTH_OPTIONS),),
    check=_quotes_its_sentences,
)


def count_words(text: str) -> int:
    return len(WORD.findall(text))


def auto_length(n_sentences: int) -> int:
    """The default summary length: short texts keep one or two sentences, long ones grow slowly, up to AUTO_MAX."""
    return min(AUTO_MAX, max(1, round(math.sqrt(n_sentences))))


class SummarizerEngine(Engine):
    """Base of the summarization engines: text in, the chosen sentences with offsets out."""

    task = TASK
    inputs = "text"
    version = "1.0"
    default_model = None
    contract = CONTRACT
    options: ClassVar[dict[str, Option]] = LENGTH_OPTIONS
    record_fields: ClassVar[tuple[str, ...]] = ("article", "summary")

    @abc.abstractmethod
    def _rank(self, text: str, sentences: list[Sentence], k: int | None) -> list[tuple[int, float]]:
        """(index into ``sentences``, score) of the candidates, best first; the first ``k`` (None: as many as
        the word budget takes) will be the summary."""

    def run(self, inputs: list) -> list[dict]:
        return [self.summarize(text) for text in inputs]

    def summarize(self, text: str) -> dict[str, Any]:
        """The summary of one text: its chosen sentences in document order, with rank, score and offsets."""
        found = split_sentences(text)
        # The engines make many small numpy products (sentence similarities):
        # a threaded BLAS woke its threads for them, which cost a third of the
        # time of a news article's summary.
        k = self._sentence_count(len(found))
        with serial_blas:
            ranked = self._rank(text, found, k) if found else []
        kept = self._cut(ranked, found, k)
        kept.sort(key=lambda item: item[1][0])
        return {
            "summary": self._join(text, [found[i] for _, (i, _) in kept]),
            "sentences": [
                {
                    "text": found[i].text,
                    "start": found[i].start,
                    "end": found[i].end,
                    "rank": rank,
                    "score": round(score, 6),
                }
                for rank, (i, score) in kept
            ],
        }

    def _sentence_count(self, n_sentences: int) -> int | None:
        """How many sentences the summary keeps, by the length options; None under a word budget."""
        if self.settings["words"]:
            return None
        if self.settings["ratio"]:
            return max(1, math.ceil(self.settings["ratio"] * n_sentences))
        return self.settings["sentences"] or auto_length(n_sentences)

    def _cut(self, ranked: list[tuple[int, float]], found: list[Sentence],
             k: int | None) -> list[tuple[int, tuple[int, float]]]:
        """The first ``k`` entries of ``ranked``, or as many as the word budget takes, numbered by rank from 1."""
        if k is None:
            words = self.settings["words"]
            kept, total = [], 0
            for item in ranked:
                # At least one sentence, even one longer than the budget.
                if kept and total + count_words(found[item[0]].text) > words:
                    break
                kept.append(item)
                total += count_words(found[item[0]].text)
        else:
            kept = ranked[:k]
        return list(enumerate(kept, start=1))

    @staticmethod
    def _join(text: str, chosen: list[Sentence]) -> str:
        # Neighbouring sentences keep the text's own spacing; where sentences
        # were skipped, a line break marks the gap.
        if not chosen:
            return ""
        parts = [chosen[0].text]
        for prev, cur in zip(chosen, chosen[1:]):
            gap = text[prev.end : cur.start]
            parts.append("\n" if gap.strip() else gap)
            parts.append(cur.text)
        return "".join(parts)

    def format_text(self, result: dict) -> str:
        return result["summary"]

    def evaluate(self, records: list[dict]) -> dict:
        """ROUGE-1/2/L/Lsum F1 (means over ``records`` of {"article", "summary"}) and documents per second."""
        from toolkit_plugins.summarization.rouge import reference_lines, rouge_f1

        records = check_records(records, ("article", "summary"), "evaluation data", empty=True)
        articles, references = [r["article"] for r in records], [r["summary"] for r in records]
        start = time.perf_counter()
        results = self.run(articles)
        seconds = time.perf_counter() - start
        predictions = ["\n".join(s["text"] for s in result["sentences"]) for result in results]
        scores = rouge_f1([reference_lines(r) for r in references], predictions)
        return {
            "engine": f"{TASK}:{self.name}",
            "model": self.model,
            "records": len(articles),
            **{name: round(value, 6) for name, value in scores.items()},
            "documents_per_second": round(len(articles) / max(seconds, 1e-9), 1),
        }

