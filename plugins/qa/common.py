"""What every question-answering engine shares: input checks, passages, retrieval, merging, results, evaluation.

An engine subclass provides ``_candidates(jobs)``: for each question (a
:class:`Job` with its tokens and the passages chosen for it) scored spans
of context tokens, with scores in [0, 1] comparable across the question's
passages. Splitting the context, choosing passages with BM25, saying what
was not read, ranking, ``top_k`` / ``min_score``, evidence sentences and
EM/F1 evaluation live here, so the baselines and the neural reader answer
the same options and are scored the same way.
"""

from __future__ import annotations

import abc
import bisect
import time
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from toolkit_plugins.qa.passages import Passage, Token, bm25_scores, content_terms, split_passages, tokenize, uncovered
from toolkit_plugins.qa.squad import is_squad_file, read_squad, to_examples
from toolkit.contracts import TaskContract, quotes
from toolkit.engine import Engine, Option
from toolkit.text.sentences import Sentence, split_sentences

# How the neural reader encodes passage and question, and models the passage after attending to the
# question: convolution + self-attention blocks, or bidirectional GRUs (as BiDAF and DrQA read).
ENCODERS = ("attention", "gru")

TASK = "qa"
DECIMALS = 6


class Span(NamedTuple):
    first: int  # first token of the answer (or its first character, for an engine whose _offsets says so)
    last: int  # its last token, inclusive (or the character after its last)
    score: float


@dataclass
class Job:
    """One question and the part of its context an engine reads."""

    question: str
    context: str
    question_tokens: list[Token]
    tokens: list[Token]
    passages: list[Passage]  # the passages to read, best first
    total_passages: int


def _evidence(context: str, sentences: list[Sentence], starts: list[int], start: int, end: int) -> dict:
    """The sentences of ``context`` from the one holding the answer's first character to the one holding its last.

    An answer may run past a sentence end (a span like "1978. Carolina
    started"), so the evidence is a range of sentences, never only the one
    where the answer starts. Both ends are found: answers begin and end on
    tokens, which are non-space characters, and the sentences cover every
    non-space character of the context.
    """
    first = sentences[bisect.bisect_right(starts, start) - 1]
    last = sentences[bisect.bisect_right(starts, end - 1) - 1]
    return {"text": context[first.start : last.end], "start": first.start, "end": last.end}


def _spans_quote_the_context(item: dict, result: dict) -> str | None:
    context = item["context"]
    for number, answer in enumerate([result, *result["answers"]]):
        what = "the answer" if number == 0 else f"answer {number}"
        if not isinstance(answer, dict):
            return f"{what} is not an object"
        if answer.get("answer") is None:
            continue
        problem = quotes(context, answer.get("start"), answer.get("end"), answer.get("answer"), what)
        evidence = answer.get("evidence")
        if problem is None and evidence is not None:
            problem = (quotes(context, evidence.get("start"), evidence.get("end"), evidence.get("text"),
                              f"the evidence of {what}") if isinstance(evidence, dict)
                       else f"the evidence of {what} is not an object")
        if problem is not None:
            return problem
    return None


CONTRACT = TaskContract(
    task=TASK,
    inputs="question+context",
    description="Extractive question answering: the answer's span of the context (null: no answer), with evidence.",
    results={"answer": "str|null", "score": "number|null", "start": "int|null", "end": "int|null",
             "evidence": "object|null", "answers": "list"},
    options={
        "top_k": Option(int, 1, "Number of answers listed per question, best first.", minimum=1),
        "min_score": Option(float, 0.0, "Answer nothing (\"no answer\") when the best answer scores below this.",
                            minimum=0, maximum=1),
    },
    check=_spans_quote_the_context,
)


class QAEngine(Engine):
    """Base of the question-answering engines: question + context in, answer spans with offsets out."""

    task = TASK
    inputs = "question+context"
    version = "1.0"
    record_fields: ClassVar[tuple[str, ...]] = ("question", "context", "answers")
    contract = CONTRACT
    options: ClassVar[dict[str, Option]] = {
        **CONTRACT.options,
        "passages": Option(int, 4, "Passages of a long context read per question, the best by BM25 (0: all).",
                           minimum=0),
        "max_answer_tokens": Option(int, 30, "Longest answer considered, in tokens.", minimum=1),
    }
    #: Tokens per passage and tokens shared by neighbouring passages.
    window: int = 200
    overlap: int = 50

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)

    @abc.abstractmethod
    def _candidates(self, jobs: list[Job]) -> list[list[Span]]:
        """Scored answer spans for each job, in any order; spans lie within the job's passages."""

    # -- running -------------------------------------------------------------

    def run(self, inputs: list) -> list[dict]:
        jobs = [self._job(item) for item in inputs]
        return [self._result(job, spans) for job, spans in zip(jobs, self._candidates(jobs))] if jobs else []

    def _job(self, item: Any) -> Job:
        question, context = item["question"], item["context"]
        question_tokens, tokens = tokenize(question), tokenize(context)
        if not question_tokens:
            raise ValueError("the question is empty")
        if not tokens:
            raise ValueError("the context is empty (nothing to find an answer in)")
        passages = split_passages(tokens, self.window, self.overlap)
        total = len(passages)
        limit = self.settings["passages"]
        if limit and len(passages) > limit:
            terms = [content_terms(tokens[p.first : p.last]) for p in passages]
            scores = bm25_scores(content_terms(question_tokens), terms)
            best = sorted(range(len(passages)), key=lambda i: (-scores[i], i))[:limit]
            passages = [passages[i] for i in best]
        return Job(question, context, question_tokens, tokens, passages, total)

    def _offsets(self, job: Job, span: Span) -> tuple[int, int]:
        """The characters of the context ``span`` covers, [start, end): from its tokens' (an engine whose spans
        are in characters already, reading subwords of its own, returns them as they are)."""
        return job.tokens[span.first].start, job.tokens[span.last].end

    def _result(self, job: Job, spans: list[Span]) -> dict:
        settings = self.settings
        sentences = split_sentences(job.context)
        starts = [s.start for s in sentences]
        seen: dict[tuple[int, int], float] = {}
        for span in spans:
            key = self._offsets(job, span)
            seen[key] = max(seen.get(key, 0.0), span.score)
        ranked = sorted(seen.items(), key=lambda item: (-item[1], item[0]))
        best = round(ranked[0][1], DECIMALS) if ranked else 0.0
        answers = [
            {
                "answer": job.context[start:end],
                "score": round(score, DECIMALS),
                "start": start,
                "end": end,
                "evidence": _evidence(job.context, sentences, starts, start, end),
            }
            for (start, end), score in ranked[: settings["top_k"]]
            if round(score, DECIMALS) >= settings["min_score"]
        ]
        skipped = uncovered(job.context, [(p.start, p.end) for p in job.passages])
        top = answers[0] if answers else None
        return {
            "answer": top["answer"] if top else None,
            "score": best,
            "start": top["start"] if top else None,
            "end": top["end"] if top else None,
            "evidence": top["evidence"] if top else None,
            "answers": answers,
            "passages": {"total": job.total_passages, "read": len(job.passages)},
            "skipped": [{"start": s, "end": e} for s, e in skipped],
        }

    def format_text(self, result: dict) -> str:
        lines = [f"{a['answer']}\t{a['score']:.4f}\t{a['start']}:{a['end']}" for a in result["answers"]]
        if not lines:
            lines = [f"(no answer)\t{result['score']:.4f}"]
        if result["skipped"]:
            chars = sum(s["end"] - s["start"] for s in result["skipped"])
            passages = result["passages"]
            lines.append(f"(read {passages['read']} of {passages['total']} passages; {chars} characters in"
                         f" {len(result['skipped'])} ranges not read; --passages 0 reads all)")
        return "\n".join(lines)

    # -- data and evaluation -------------------------------------------------

    @classmethod
    def read_data(cls, path: str, encoding: str = "utf-8") -> list[dict] | None:
        """The records of a SQuAD-format JSON file, or None when ``path`` is not one (read it as CSV/TSV/JSONL)."""
        return read_squad(path, encoding) if is_squad_file(path) else None

    def evaluate(self, records: list[dict], batch_size: int = 32) -> dict:
        """SQuAD v1.1 exact match and F1 (percent) on ``records`` ({"question", "context", "answers"}), and speed."""
        from toolkit_plugins.qa.metric import squad_scores

        examples = to_examples(records, "evaluation data")
        predictions: list[str] = []
        start = time.perf_counter()
        for i in range(0, len(examples), batch_size):
            batch = examples[i : i + batch_size]
            results = self.run([{"question": e.question, "context": e.context} for e in batch])
            predictions += [r["answer"] or "" for r in results]
        seconds = time.perf_counter() - start
        scores = squad_scores(predictions, [[a.text for a in e.answers] for e in examples])
        return {
            "engine": f"{TASK}:{self.name}",
            "model": self.model,
            "records": len(examples),
            "exact_match": round(scores["exact_match"], 2),
            "f1": round(scores["f1"], 2),
            "questions_per_second": round(len(examples) / max(seconds, 1e-9), 1),
        }
