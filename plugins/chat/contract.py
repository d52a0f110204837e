"""The chat task: a conversation in, its next turn out; and the base class its engines share.

An input is a conversation, ``{"turns": [...]}``: the turns so far, oldest
first, turns alternating between the user and the assistant, the last one
the user's. A result is the reply (``text``) and the ``route`` that produced
it ("corpus": a response taken from a corpus of dialogues; "fallback": the
engine's fixed answer when nothing in the corpus matched; "model": written
by a language model; "docs": an answer quoted from the user's documents).
Engines that write their reply as they go stream it in pieces.

Every engine of this plugin takes ``docs``: documents that a question is
answered from, by the qa task's default engine through the public API (as
any plugin would use another task). When the user's turn reads as a
question and the best answer in the documents scores at least
``docs_min_score``, the reply quotes the answer, its evidence and the file;
otherwise the engine replies as usual, and the result gives the best
answer's score (``docs_score``).

The task's verb, ``nlp-tool chat``, is this plugin's own command (saved
conversations, a prompt), which the registry lets the plugin that declares
a task give it in place of the verb built from its engines. The input kind
is "dialogue".
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

from toolkit.contracts import TaskContract
from toolkit.engine import Engine, Option
from toolkit.errors import DataError, InputError, RecordError

TASK = "chat"
INPUTS = "dialogue"

#: A turn is asked of the documents when it holds a question mark or starts with one of these words.
QUESTION_WORDS = frozenset("who whom whose what which when where why how is are was were do does did can could will"
                           " would should may has have".split())
DOCS_OPTIONS: dict[str, Option] = {
    "docs": Option(str, (), "A plain-text document that questions are answered from, quoted with its evidence"
                   " (repeatable; the qa task's reader finds the answer).", multiple=True),
    "docs_min_score": Option(float, 0.3, "Quote the documents only when the answer scores at least this (the qa"
                             " reader's probability).", minimum=0, maximum=1),
}

#: The longest turn an engine reads, in characters: a longer one is almost certainly a pasted file, and a
#: conversation saved with it would be replayed on every later turn.
MAX_TURN_CHARS = 20_000


def _check_result(item: Any, result: dict) -> str | None:
    if not result["route"]:
        return "route is empty: it names what produced the reply (corpus, fallback, ...)"
    return None


CONTRACT = TaskContract(
    task=TASK,
    inputs=INPUTS,
    description="The next turn of a conversation: a reply to the user's last turn.",
    results={"text": "str", "route": "str"},
    check=_check_result,
)


def user_turns(item: dict) -> list[str]:
    """The turns of the conversation ``item``, checked: InputError (one line) for no turns, an empty last
    turn or a turn over :data:`MAX_TURN_CHARS` characters."""
    turns = item["turns"]
    if not turns:
        raise InputError("the conversation is empty: give at least the user's turn")
    if not turns[-1].strip():
        raise InputError("the user's turn is empty")
    for number, turn in enumerate(turns, 1):
        if len(turn) > MAX_TURN_CHARS:
            raise InputError(f"turn {number} has {len(turn)} characters, more than the {MAX_TURN_CHARS} a turn may"
                             " have; shorten it")
    return turns


@dataclass
class Reply:
    """A reply as it is made: the ``route`` that makes it, its text in ``pieces`` (an iterator: a generative
    engine yields tokens as it decodes them) and ``details`` for the result (a score, a source)."""

    route: str
    pieces: Iterator[str]
    details: dict = field(default_factory=dict)


def dialogues_of(records: Sequence[dict], what: str) -> list[list[str]]:
    """The turns of each record of ``records`` (``{"turns": [...]}``, two turns or more, strings); DataError
    (a RecordError naming the record) otherwise."""
    from toolkit.records import check_records

    dialogues = []
    for number, record in enumerate(check_records(records, (), what), 1):
        turns = record.get("turns")
        if not isinstance(turns, list) or not all(isinstance(turn, str) for turn in turns):
            raise RecordError(what, number, ": 'turns' must be a list of strings")
        if sum(1 for turn in turns if turn.strip()) < 2:
            raise RecordError(what, number, " has fewer than two turns: a dialogue needs a turn and its reply")
        dialogues.append(turns)
    return dialogues


def is_question(turn: str) -> bool:
    """Whether ``turn`` reads as a question: a question mark, or a question word first."""
    words = turn.split()
    return "?" in turn or bool(words) and words[0].lower().strip(",.!:;") in QUESTION_WORDS


class DialogueEngine(Engine):
    """Base of the dialogue engines: :meth:`reply` makes one reply; :meth:`respond` (the documents' answer
    first, when ``docs`` are given), :meth:`run` and :meth:`stream` are written with it, so an engine
    implements only that (and may override ``run`` to batch, with :meth:`from_docs`)."""

    task = TASK
    inputs = INPUTS
    contract: ClassVar[TaskContract] = CONTRACT

    @abc.abstractmethod
    def reply(self, turns: list[str]) -> Reply:
        """The engine's own reply to the conversation ``turns`` (checked by :func:`user_turns`)."""

    def respond(self, turns: list[str]) -> Reply:
        """The reply to ``turns``: the documents' answer when they have one, else :meth:`reply`'s."""
        quoted, details = self.from_docs(turns)
        if quoted is not None:
            return quoted
        own = self.reply(turns)
        own.details.update(details)
        return own

    def run(self, inputs: list) -> list[dict]:
        results = []
        for item in inputs:
            reply = self.respond(user_turns(item))
            results.append({"text": "".join(reply.pieces), "route": reply.route, **reply.details})
        return results

    def _documents(self) -> list[tuple[str, str]]:
        """The ``docs`` files and their texts, read once; DataError for one that cannot be read."""
        if getattr(self, "_docs_read", None) is None:
            from toolkit.datasets import read_text

            documents = [(path, read_text(path, kind="document")) for path in self.settings.get("docs", ())]
            for path, text in documents:
                if not text.strip():
                    raise DataError(f"{path}: the document is empty")
            self._docs_read = documents
        return self._docs_read

    def _reader(self) -> Any:
        if getattr(self, "_docs_reader", None) is None:
            from toolkit.api import Pipeline

            self._docs_reader = Pipeline("qa")
        return self._docs_reader

    def from_docs(self, turns: list[str]) -> tuple[Reply | None, dict]:
        """The reply quoting the documents' answer to the user's turn, if they hold one that scores at least
        ``docs_min_score``, else None; and the details every reply to the turn carries (the best score)."""
        documents = self._documents()
        question = turns[-1].strip()
        if not documents or not is_question(question):
            return None, {}
        results = self._reader()([{"question": question, "context": text} for _, text in documents])
        scored = [(result["score"] or 0.0, result, path) for result, (path, _) in zip(results, documents)
                  if result["answer"] is not None]
        if not scored:
            return None, {"docs_score": 0.0}
        score, best, path = max(scored, key=lambda found: found[0])
        if score < self.settings["docs_min_score"]:
            return None, {"docs_score": round(score, 4)}
        # The reply is one line (piped chat writes one per turn); the result keeps the evidence verbatim.
        evidence = " ".join(best["evidence"]["text"].split())
        text = f'{best["answer"]} — "{evidence}" ({path})'
        return Reply("docs", iter([text]), {"answer": best["answer"], "evidence": best["evidence"], "source": path,
                                            "docs_score": round(score, 4)}), {}

    def stamp(self) -> dict:
        """The base stamp, with the documents read now (one that cannot be read ends a command before its
        first turn, DataError) and the qa engine that answers from them."""
        stamp = super().stamp()
        if self._documents():
            stamp["docs"] = {"files": [path for path, _ in self._documents()],
                             "reader": self._reader().stamp()["engine"]}
        return stamp

    def stream(self, item: Any) -> Iterator[str]:
        yield from self.respond(user_turns(item)).pieces

    def format_text(self, result: dict) -> str:
        return result["text"]
