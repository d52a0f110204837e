"""ROUGE F1 as the ``rouge-score`` package computes it, and references made ready for ROUGE-Lsum.

rouge-score (Google's reimplementation of ROUGE-1.5.5) is the reference most
papers report; using it rather than our own copy keeps our numbers
comparable. Porter stemming is on, as in those papers. ROUGE-Lsum treats
each line as a sentence, so predictions and references must put one
sentence per line.
"""

from __future__ import annotations

import re

from toolkit.text.sentences import split_sentences

METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# A sentence end glued to the next sentence ("$10.9bn.For the year"), as in
# the BBC News Summary references: a lower-case letter, digit or % then the
# end mark, then a capital. "U.S.Army" (capital before the dot) is left alone.
GLUED_END = re.compile(r"(?<=[a-z0-9%][.!?])(?=[A-Z])|(?<=[a-z0-9%][.!?][\"'”’])(?=[A-Z])")


def reference_lines(summary: str) -> str:
    """``summary`` with one sentence per line, glued sentence ends separated first."""
    return "\n".join(s.text for s in split_sentences(GLUED_END.sub(" ", summary)))


def rouge_f1(references: list[str], predictions: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F1 of ``predictions`` against ``references`` (one each), stemming on."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    totals = dict.fromkeys(METRICS, 0.0)
    for reference, prediction in zip(references, predictions, strict=True):
        scores = scorer.score(reference, prediction)
        for name in METRICS:
            totals[name] += scores[name].fmeasure
    return {name: total / max(len(references), 1) for name, total in totals.items()}
