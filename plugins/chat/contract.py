"""The chat task: a conversation in, its next turn out; and the base class its engines share.

An input is a conversation, ``{"turns": [...]}``: the turns so far, oldest
first, turns alternating between the user and the assistant, the last one
the user's. A result is the reply (``text``) and the ``route`` that produced
it ("corpus": a response taken from a corpus of dialogues; "fallback": the
engine's fixed answer when nothing in the corpus matched). Engines that
write their reply as they go stream it in pieces.

The task's verb, ``nlp-tool chat``, is this plugin's own command (saved
conversations, a prompt), which the registry lets the plugin that declares
a task give it in place of the verb built from its engines. The input kind
is "dialogue".
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

from toolkit.contracts import TaskContract
from toolkit.engine import Engine
from toolkit.errors import InputError

TASK = "chat"
INPUTS = "dialogue"

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


class DialogueEngine(Engine):
    """Base of the dialogue engines: :meth:`respond` makes one reply; :meth:`run` and :meth:`stream` are
    written with it, so an engine implements only that (and may override ``run`` to batch)."""

    task = TASK
    inputs = INPUTS
    contract: ClassVar[TaskContract] = CONTRACT

    @abc.abstractmethod
    def respond(self, turns: list[str]) -> Reply:
        """The reply to the conversation ``turns`` (checked by :func:`user_turns`)."""

    def run(self, inputs: list) -> list[dict]:
        results = []
        for item in inputs:
            reply = self.respond(user_turns(item))
            results.append({"text": "".join(reply.pieces), "route": reply.route, **reply.details})
        return results

    def stream(self, item: Any) -> Iterator[str]:
        yield from self.respond(user_turns(item)).pieces

    def format_text(self, result: dict) -> str:
        return result["text"]
