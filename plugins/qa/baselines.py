"""Two rule-based engines, the baselines the neural reader is measured against.

``sentence`` is the retriever alone: the sentence that shares the most
(BM25-weighted) question terms is the answer. It usually contains the answer
but is much longer, hence a low F1. ``window`` picks a short span inside the
best sentences: runs of content words that are not question words, scored by
their closeness to the question words of the sentence (the sliding-window
idea of Richardson et al.'s MCTest baseline) and by whether they fit the
question word (a number for "how many", a capitalised name for "who").
"""

from __future__ import annotations

import bisect
import math

from toolkit_plugins.qa.common import Job, QAEngine, Span
from toolkit_plugins.qa.passages import STOPWORDS, Token, bm25_scores, content_terms
from toolkit.text.sentences import split_sentences

# How far (in tokens) a question word still lends weight to a candidate span.
REACH = 10
# Candidate spans from this many of the best sentences.
SENTENCES = 3


def _sentence_spans(job: Job) -> list[tuple[int, int]]:
    """(first token, one past last token) of each sentence inside the job's passages."""
    spans = []
    starts = [t.start for t in job.tokens]
    ends = [t.end for t in job.tokens]
    for passage in job.passages:
        for sentence in split_sentences(job.context[passage.start : passage.end]):
            first = bisect.bisect_left(starts, passage.start + sentence.start)
            last = bisect.bisect_right(ends, passage.start + sentence.end)
            if first < last:
                spans.append((first, last))
    return sorted(set(spans))


def _ranked_sentences(job: Job) -> tuple[list[tuple[int, int]], list[float]]:
    """The job's sentences and a probability for each (softmax of BM25 scores)."""
    spans = _sentence_spans(job)
    scores = bm25_scores(content_terms(job.question_tokens), [content_terms(job.tokens[a:b]) for a, b in spans])
    top = max(scores, default=0.0)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights) or 1.0
    return spans, [w / total for w in weights]


class SentenceRetriever(QAEngine):
    name = "sentence"
    languages = ("any",)  # word overlap, a character a word in Chinese and Japanese
    description = "The best BM25 sentence as the answer (the retriever alone); rule-based baseline, no model."

    def _candidates(self, jobs: list[Job]) -> list[list[Span]]:
        results = []
        for job in jobs:
            spans, probs = _ranked_sentences(job)
            results.append([Span(a, b - 1, p) for (a, b), p in zip(spans, probs)])
        return results


def _is_word(token: Token) -> bool:
    return token.text[0].isalnum() or token.text[0] == "_"


def _fits(question: str, tokens: list[Token]) -> bool:
    """Whether a span has the type the question word asks for."""
    words = question.lower().split()
    has_number = any(t.text[0].isdigit() for t in tokens)
    if {"many", "much", "year", "when"} & set(words) or "what year" in question.lower():
        return has_number
    if words and words[0] in ("who", "whom", "whose", "where"):
        return any(t.text[0].isupper() for t in tokens)
    return True


class WindowBaseline(QAEngine):
    name = "window"
    languages = ("any",)  # word overlap, a character a word in Chinese and Japanese
    description = "Short spans near the question's words in the best sentences; rule-based span baseline, no model."

    def _candidates(self, jobs: list[Job]) -> list[list[Span]]:
        return [self._spans(job) for job in jobs]

    def _spans(self, job: Job) -> list[Span]:
        question_terms = set(content_terms(job.question_tokens))
        sentences, probs = _ranked_sentences(job)
        order = sorted(range(len(sentences)), key=lambda i: -probs[i])[:SENTENCES]
        limit = min(self.settings["max_answer_tokens"], 6)
        found: list[tuple[int, int, float]] = []
        for i in order:
            a, b = sentences[i]
            words = [t.text.lower() for t in job.tokens[a:b]]
            matches = [a + k for k, w in enumerate(words) if w in question_terms]
            run: list[int] = []
            for k in range(a, b + 1):
                token = job.tokens[k] if k < b else None
                lower = token.text.lower() if token else ""
                if token and _is_word(token) and lower not in question_terms and lower not in STOPWORDS:
                    run.append(k)
                    continue
                if run:
                    first, last = run[0], run[-1] if len(run) <= limit else run[0] + limit - 1
                    near = sum(1.0 / (1 + min(abs(m - first), abs(m - last))) for m in matches
                               if min(abs(m - first), abs(m - last)) <= REACH)
                    bonus = 2.0 if _fits(job.question, job.tokens[first : last + 1]) else 1.0
                    found.append((first, last, probs[i] * (near + 0.01) * bonus))
                run = []
        total = sum(score for _, _, score in found) or 1.0
        return [Span(first, last, score / total) for first, last, score in found]
