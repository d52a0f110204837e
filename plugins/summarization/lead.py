"""The lead baseline: the first N sentences of a document are its summary.

Hard to beat on news, where writers put the essentials first, and the
standard baseline every summarization engine is compared against.
"""

from __future__ import annotations

from toolkit.engine import Engine, Option, OptionError
from toolkit.sentences import split_sentences


class LeadSummarizer(Engine):
    task = "summarize"
    name = "lead"
    description = "First N sentences of the text (the lead baseline); rule-based, no model."
    version = "1.0"
    inputs = "text"
    options = {"sentences": Option(int, 3, "Number of sentences in the summary.")}
    default_model = None

    def __init__(self, model: str | None = None, **options) -> None:
        super().__init__(model, **options)
        if model is not None:
            raise OptionError("engine summarize:lead is rule-based and takes no --model")
        if self.settings["sentences"] < 1:
            raise OptionError(f"option 'sentences' must be at least 1, not {self.settings['sentences']}")

    def run(self, inputs: list) -> list[dict]:
        return [self._summarize(text) for text in inputs]

    def _summarize(self, text: str) -> dict:
        if not isinstance(text, str):
            raise TypeError(f"summarize:lead takes str inputs, not {type(text).__name__}")
        found = split_sentences(text)
        chosen = found[: self.settings["sentences"]]
        total = len(found)
        return {
            # The lead is one contiguous span, so the summary keeps the
            # text's own spacing and line breaks between its sentences.
            "summary": text[chosen[0].start : chosen[-1].end] if chosen else "",
            "sentences": [
                {
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "rank": i + 1,
                    # Position score: 1 for the first sentence, falling
                    # linearly towards 0 for the last one of the document.
                    "score": round(1.0 - i / total, 6),
                }
                for i, s in enumerate(chosen)
            ],
        }

    def format_text(self, result: dict) -> str:
        return result["summary"]
