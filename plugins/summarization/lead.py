"""The lead baseline: the first N sentences of a document are its summary.

Hard to beat on news, where writers put the essentials first, and the
standard baseline every summarization engine is compared against.
"""

from __future__ import annotations

from toolkit_plugins.summarization.common import SummarizerEngine
from toolkit.text.sentences import Sentence


class LeadSummarizer(SummarizerEngine):
    name = "lead"
    languages = ("any",)  # sentences as toolkit.text cuts them, in any script
    description = "First N sentences of the text (the lead baseline); rule-based, no model."

    def _rank(self, text: str, sentences: list[Sentence], k: int | None) -> list[tuple[int, float]]:
        # Position score: 1 for the first sentence, falling linearly towards
        # 0 for the last one of the document.
        total = len(sentences)
        return [(i, 1.0 - i / total) for i in range(total)]
