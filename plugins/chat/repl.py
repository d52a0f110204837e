"""The two ways ``nlp-tool chat`` talks: a prompt on a terminal, and line in / line out on pipes.

On a terminal, lines are read with prompt_toolkit (line editing, and a
history kept across sessions in the data directory beside the conversations);
each reply is written as the engine makes it. Ctrl-C during a reply stops it
and drops the exchange (it is neither saved nor read by the next turn);
Ctrl-C at the prompt clears the line; Ctrl-D or /exit ends the conversation.

The prompt reads Ctrl-C as a key, not as SIGINT: with readline, the SIGINT
of a Ctrl-C at the prompt may be taken by one of BLAS's threads, and the main
thread, waiting in readline's select(), sees it only at the next key.

Without a terminal, each line of input is one user turn and gets one line of
output: its reply with line breaks written as ``\\n``, so replies and turns
line up. A blank line gets a blank line and is no turn.
"""

from __future__ import annotations

import os
import shlex
from typing import IO, Callable, Iterable

from toolkit.errors import InputError, NlpToolError

from toolkit_plugins.chat.session import Session

HELP = """Commands:
  /reset       start a new conversation (this one stays saved)
  /history     show the conversation so far
  /save FILE   write the conversation to FILE as a JSON line {"id", "turns"}
  /help        show this help
  /exit        end the conversation (as Ctrl-D does)
Ctrl-C stops a reply (the exchange is dropped) or clears the line."""

HISTORY_FILE = "chat_history"


class Terminated(BaseException):
    """SIGTERM during a conversation on the terminal."""


class PromptReader:
    """A ``read`` for :func:`interactive`: one edited line after a prompt, with ``history_path``'s lines as
    its history, each line added as it is read (None: a history for this run only). Ctrl-C raises
    KeyboardInterrupt and Ctrl-D on an empty line EOFError, as ``input()`` does; once :meth:`terminate` is
    SIGTERM's handler, SIGTERM raises :class:`Terminated`, at the prompt or in a reply."""

    def __init__(self, history_path: str | None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        self.session: PromptSession[str] = PromptSession(
            history=FileHistory(history_path) if history_path is not None else InMemoryHistory())
        self.terminated = False

    def __call__(self, prompt: str) -> str:
        # Also checked around the prompt: an exception a signal handler raises inside a weakref callback or a
        # __del__ is printed and dropped by Python, and the conversation would go on.
        self._check()
        line = self.session.prompt(prompt, pre_run=self._check_in_prompt)
        self._check()
        return line

    def terminate(self, signum: int, frame: object) -> None:
        """The SIGTERM handler."""
        self.terminated = True
        loop = self.session.app.loop
        if loop is None:
            raise Terminated
        # At the prompt, the handler runs in the middle of asyncio's loop, often in one of its weakref callbacks
        # (which drop exceptions); the loop ends the prompt instead, as it does for Ctrl-C.
        loop.call_soon_threadsafe(self._check_in_prompt)

    def _check(self) -> None:
        if self.terminated:
            raise Terminated

    def _check_in_prompt(self) -> None:
        app = self.session.app
        if self.terminated and app.future is not None and not app.future.done():
            app.exit(exception=Terminated())


def command(session: Session, line: str, out: IO[str]) -> bool:
    """Do the /command ``line``; False for /exit. An unknown command or a missing argument is said on
    ``out`` and the conversation goes on."""
    try:
        words = shlex.split(line)
    except ValueError as error:
        out.write(f"cannot read the command: {error}\n")
        return True
    name, arguments = words[0], words[1:]
    if name == "/exit":
        return False
    if name == "/help":
        out.write(HELP + "\n")
    elif name == "/reset":
        session.reset()
        out.write(f"New conversation {session.id}.\n")
    elif name == "/history":
        for speaker, turn in session.history():
            out.write(f"{speaker}> {turn}\n")
        if not session.turns:
            out.write("(no turns yet)\n")
    elif name == "/save":
        if len(arguments) != 1:
            out.write("give one file: /save FILE\n")
            return True
        try:
            session.save(arguments[0])
        except NlpToolError as error:
            out.write(f"{error}\n")
        else:
            out.write(f"Saved {len(session.turns)} turns to {arguments[0]}.\n")
    else:
        out.write(f"unknown command {name}; /help lists them\n")
    return True


def interactive(session: Session, out: IO[str], read: Callable[[str], str]) -> None:
    """The conversation on a terminal, until Ctrl-D or /exit; ``read`` reads one line after a prompt (as
    :func:`prompt_reader`'s, which ends the line on Ctrl-C and Ctrl-D)."""
    out.write(f"Chatting with {session.engine_name}, conversation {session.id}"
              f"{'' if session.store is not None else ' (not saved)'}. /help for commands, Ctrl-D to end.\n")
    if session.turns:
        out.write(f"(continuing after {len(session.turns) // 2} exchanges; /history shows them)\n")
    while True:
        try:
            line = read("> ")
        except EOFError:
            return
        except KeyboardInterrupt:
            continue
        if not line.strip():
            continue
        if line.lstrip().startswith("/"):
            if not command(session, line.strip(), out):
                return
            continue
        _reply(session, line, out)


def _reply(session: Session, line: str, out: IO[str]) -> None:
    """Write the reply to ``line`` as it comes and record the exchange; Ctrl-C drops it, a refused turn is
    said and dropped."""
    try:
        reply = session.respond(line)
        pieces = []
        for piece in reply.pieces:
            out.write(piece)
            out.flush()
            pieces.append(piece)
        out.write("\n")
        session.record(line, "".join(pieces), reply.route)
        seen = set(session.unread)
        said = session.language(line)
        if "warning" in said and said["language"] not in seen:  # once per language and conversation
            out.write(f"[{said['warning']}: replies are unreliable; --model takes a chat model for that language]\n")
    except KeyboardInterrupt:
        out.write("\n[reply stopped; not saved]\n")
    except NlpToolError as error:
        # A StoreError included: the reply was shown but could not be saved, and is not part of the conversation.
        out.write(f"nlp-tool: error: {error}\n")


def piped(session: Session, lines: Iterable[str], out: IO[str]) -> None:
    """One reply line per input line; the first turn the engine refuses ends it (its error raised)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            out.write("\n")
        else:
            try:
                text = session.exchange(line)["text"]
            except InputError as error:
                raise InputError(f"line {number}: {error}") from None
            out.write(text.replace("\n", "\\n").replace("\r", "\\r") + "\n")
        out.flush()


def history_path() -> str:
    """Where the prompt's history is kept: beside the conversation database."""
    from toolkit_plugins.chat.store import database_path

    return os.fspath(database_path().with_name(HISTORY_FILE))
