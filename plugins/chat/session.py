"""One conversation as ``nlp-tool chat`` holds it: its turns, the engine that replies, and where it is saved.

A turn joins the conversation only once its reply is complete and saved:
the exchange (the user's turn and the reply) goes to the store in one
transaction, then into the turns the engine reads. A reply stopped with
Ctrl-C, or one that failed, leaves the conversation as it was before.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Iterator

from toolkit.engine import Engine
from toolkit.errors import InputError, UsageError
from toolkit.languages import annotate

from toolkit_plugins.chat.contract import DialogueEngine, Reply, user_turns

if TYPE_CHECKING:
    from toolkit_plugins.chat.store import Store


class Session:
    """The conversation ``conversation_id`` with ``engine`` (any engine of the dialogue task; one of
    :class:`DialogueEngine` streams its replies); ``store`` None: nothing is saved (--no-log)."""

    def __init__(self, engine: Engine, store: Store | None, conversation_id: str | None = None,
                 turns: list[str] | None = None) -> None:
        from toolkit_plugins.chat.store import new_id

        self.engine = engine
        self.store = store
        self.id = conversation_id or new_id()
        self.turns: list[str] = list(turns or [])
        # Languages whose turns the model does not read, how many turns each (toolkit.languages.unread's form).
        self.unread: Counter = Counter()

    @classmethod
    def resumed(cls, engine: Engine, store: Store, conversation_id: str | None, save: bool) -> "Session":
        """The saved conversation ``conversation_id`` (None: the latest), to go on with; UsageError when there
        is none. ``save`` False: go on without saving (--no-log)."""
        found = store.conversation(conversation_id) if conversation_id else store.latest()
        if found is None:
            raise UsageError(f"no conversation {conversation_id!r} is saved; `nlp-tool logs` lists them"
                             if conversation_id else "no conversation is saved yet to continue")
        turns = [turn for exchange in store.exchanges(found.id) for turn in (exchange.user, exchange.reply)]
        return cls(engine, store if save else None, found.id, turns)

    @property
    def engine_name(self) -> str:
        return f"{self.engine.task}:{self.engine.name}"

    def respond(self, user: str) -> Reply:
        """The engine's reply to ``user`` after the turns so far (not yet part of the conversation: see
        :meth:`record`); InputError for a turn the engine cannot take."""
        turns = user_turns({"turns": [*self.turns, user]})
        if isinstance(self.engine, DialogueEngine):
            return self.engine.respond(turns)
        # Another plugin's engine of the task, with only the Engine contract: its whole result, as one piece.
        result = dict(self.engine.run([{"turns": turns}])[0])
        text, route = result.pop("text"), result.pop("route")
        return Reply(route, iter([text]), result)

    def record(self, user: str, reply: str, route: str) -> None:
        """Add the exchange to the conversation, saving it first (StoreError if it cannot be saved)."""
        if self.store is not None:
            self.store.add_exchange(self.id, user, reply, route, self.engine_name)
        self.turns += [user, reply]

    def exchange(self, user: str) -> dict:
        """Reply to ``user`` whole and record the exchange; the result (``text``, ``route``, details)."""
        reply = self.respond(user)
        result = {"text": "".join(reply.pieces), "route": reply.route, **reply.details, **self.language(user)}
        self.record(user, result["text"], result["route"])
        return result

    def language(self, user: str) -> dict:
        """The turn's ``language``, and a ``warning`` where the model does not read it (counted in
        :attr:`unread`), as the task verbs' results say them (toolkit.languages); empty for a model that reads
        any language or does not say which."""
        said: dict = {}
        annotate(self.engine, [{"turns": [user]}], [said])
        if "warning" in said:
            self.unread[said["language"]] += 1
        return said

    def reset(self) -> None:
        """Start a new conversation (the one before stays saved)."""
        from toolkit_plugins.chat.store import new_id

        self.id, self.turns = new_id(), []

    def history(self) -> Iterator[tuple[str, str]]:
        """(speaker, turn) pairs, speakers "you" and "bot", oldest first."""
        for number, turn in enumerate(self.turns):
            yield ("you" if number % 2 == 0 else "bot"), turn

    def save(self, path: str) -> None:
        """Write the conversation to ``path`` as one JSON line ``{"id", "turns"}``, the record ``nlp-tool chat
        -i jsonl`` reads and a corpus file of dialogues holds; atomically. InputError when it cannot."""
        from toolkit.files import AtomicFile, write_target

        line = json.dumps({"id": self.id, "turns": self.turns}, ensure_ascii=False) + "\n"
        try:
            target, replaceable = write_target(path)
            if not replaceable:
                with open(target, "w", encoding="utf-8") as f:
                    f.write(line)
                return
            with AtomicFile(target) as f:
                f.write(line.encode("utf-8"))
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror or error}") from None
