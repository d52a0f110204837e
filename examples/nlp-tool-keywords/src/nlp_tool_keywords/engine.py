"""The ``keywords`` task's ``rake`` engine: RAKE behind nlp-tool's engine contract."""

from __future__ import annotations

from toolkit.contracts import TaskContract, quotes
from toolkit.engine import Engine, Option

from nlp_tool_keywords import __version__
from nlp_tool_keywords.rake import extract_keywords


def _keywords_quote_the_text(text: str, result: dict) -> str | None:
    for number, keyword in enumerate(result["keywords"], 1):
        if not isinstance(keyword, dict) or not isinstance(keyword.get("score"), (int, float)):
            return f"keyword {number} is not a {{'text', 'score', 'start', 'end'}} object"
        problem = quotes(text, keyword.get("start"), keyword.get("end"), keyword.get("text"), f"keyword {number}")
        if problem is not None:
            return problem
    return None


# The task this plugin creates, declared once (the plugin module registers it): what every engine of
# `keywords` answers, whoever writes it, and the option they all share. toolkit.pipeline checks each
# result against it, and toolkit.testing.check_engine checks an engine against it.
CONTRACT = TaskContract(
    task="keywords",
    inputs="text",
    description="Key phrases of a text, best first, each with its score and offsets.",
    results={"keywords": "list"},
    options={"top_k": Option(int, 5, "Number of keywords to return, best first.", minimum=1)},
    check=_keywords_quote_the_text,
)


class RakeEngine(Engine):
    """Rapid Automatic Keyword Extraction: stopword-delimited phrases scored
    by word degree / frequency. Needs no model and no training."""

    task = "keywords"
    name = "rake"
    description = "RAKE keyword extraction: stopword-split phrases scored by word degree/frequency"
    version = __version__
    inputs = "text"
    contract = CONTRACT
    # Each declared option becomes a flag of the verb (--top-k, --max-words)
    # and a keyword argument of toolkit.pipeline("keywords", ...). The base
    # class checks names, types and bounds (a value below `minimum` is an
    # OptionError: a usage error, exit code 2, naming the flag on the command
    # line) and stores the values in self.settings. The task's shared options
    # come first; another plugin's keywords engine gets them without declaring them.
    options = {
        **CONTRACT.options,
        "max_words": Option(int, 3, "Drop candidate phrases longer than this many words.", minimum=1),
    }
    # Rule-based: no default model and nothing to train, so the base class
    # refuses --model (an engine reading model files made elsewhere would set
    # takes_model = True).
    default_model = None

    def run(self, inputs: list[str]) -> list[dict]:
        """One result per input text: {"keywords": [{"text", "score", "start", "end"}, ...]}.

        ``text[start:end] == keyword["text"]`` in the input it came from, best
        first; scores are RAKE scores (sums of degree/frequency, higher is
        better), not probabilities. Inputs are independent, so a batch gives
        the same results as one-by-one calls. The pipeline has checked that
        every input is a str (the kind ``inputs`` declares).
        """
        return [
            {
                "keywords": [
                    {"text": k.text, "score": k.score, "start": k.start, "end": k.end}
                    for k in extract_keywords(text, **self.settings)
                ]
            }
            for text in inputs
        ]

    def format_text(self, result: dict) -> str:
        """One keyword per line, score first, for ``--format text``."""
        return "\n".join(f"{k['score']:6.2f}  {k['text']}" for k in result["keywords"])
