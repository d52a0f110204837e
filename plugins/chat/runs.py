"""What ``nlp-tool chat`` and ``nlp-tool logs`` do once their flags are checked: a one-shot reply, a batch of
conversations, a terminal or piped conversation, the saved conversations listed or shown."""

from __future__ import annotations

import io as textio
import json
import sys
from typing import Any

from toolkit import io
from toolkit.engine import Engine
from toolkit.errors import UsageError
from toolkit.workers import DEFAULT_CHUNK_SIZE

from toolkit_plugins.chat.session import Session
from toolkit_plugins.chat.store import Store


def session(engine: Engine, store: Store | None, resume: bool, cid: str | None, save: bool) -> Session:
    """A new conversation, or the saved one that ``--continue`` (``resume``) or ``--cid`` names."""
    if (resume or cid) and store is not None:
        return Session.resumed(engine, store, cid, save)
    return Session(engine, store if save else None)


def _write(output: str | None, write: Any) -> None:
    """``write(stream)`` to stdout, or to ``output`` atomically (complete or not at all)."""
    try:
        out = io.AtomicOutput(output)
    except OSError as error:
        raise UsageError(f"cannot write {output}: {error.strerror or error}") from None
    try:
        write(out.stream)
        out.commit()
    except BaseException:
        out.discard()
        raise


def one_shot(chat: Session, stamp: dict, message: str, fmt: str, output: str | None) -> None:
    """Reply to ``message`` (after the turns of a continued conversation) and record the exchange."""
    result = chat.exchange(message)

    def write(stream: Any) -> None:
        writer = io.Writer(stream, fmt, {**stamp, "conversation": chat.id}, chat.engine.format_text, False)
        writer.result(chat.id, result)
        writer.close()
    _write(output, write)
    _language_summary(chat, 1)  # after the result, as the task verbs say it


def batch(pipe: Any, sources: tuple[str, ...], run: dict, *, output: str | None, fmt: str, on_error: str,
          workers: int = 1, cluster: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
    """The next turn of each JSONL record's conversation, written as the task verbs write their results: in
    ``fmt``, to stdout, ``output`` or the part files of ``output`` DIR/ (``run``: the command's options, for its
    manifest), run here, in ``workers`` processes or on ``cluster``, ``chunk_size`` records at a time; nothing is
    saved. A failed record is said on stderr (and in JSON output); with ``on_error`` "stop" it ends the run."""
    # The verbs' run writer: a batch of conversations is a verb's run, whose output the verbs' options shape.
    from toolkit.cli.task_verb import write_run

    files = io.expand_sources(sources)
    records = io.read_records(files, (), "jsonl", id_field=run["id_field"], dialogue=True)
    write_run(pipe, records, run, files, output=output, fmt=fmt, lines=False, on_error=on_error, quiet=False,
              debug=False, workers=workers, cluster=cluster, chunk_size=chunk_size)


def interactive_run(chat: Session) -> None:
    """The conversation at the terminal's prompt. SIGTERM ends it as Ctrl-C ends other commands (the command
    group turns SIGTERM into KeyboardInterrupt, which here only stops a reply)."""
    import signal
    import threading

    from toolkit_plugins.chat.repl import PromptReader, Terminated, history_path, interactive

    read = PromptReader(history_path() if chat.store is not None else None)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, read.terminate) if main else None
    try:
        interactive(chat, sys.stdout, read)
    except Terminated:
        raise KeyboardInterrupt from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def piped_run(chat: Session) -> None:
    """One reply line per line of standard input."""
    from toolkit_plugins.chat.repl import piped

    lines = (line.rstrip("\r\n") for line in textio.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig",
                                                                  newline=""))
    before = len(chat.turns)  # a continued conversation's earlier turns are not this run's
    try:
        piped(chat, lines, sys.stdout)
    except UnicodeDecodeError as error:
        raise UsageError(f"standard input is not UTF-8 text ({error.reason} at byte {error.start} of a chunk)"
                         ) from None
    finally:
        _language_summary(chat, (len(chat.turns) - before) // 2)


def _language_summary(chat: Session, total: int) -> None:
    """The task verbs' one line on stderr per run when turns were in languages the model does not read."""
    from toolkit.languages import summary

    said = summary(chat.unread, total, "chat")
    if said is not None:
        sys.stderr.write(f"nlp-tool: warning: {said}\n")


def show_logs(cid: str | None, as_json: bool, count: int) -> None:
    """List the saved conversations (the latest ``count``, 0: all), or show the one ``cid`` names."""
    from toolkit_plugins.chat.store import database_path

    if not database_path().exists():
        # Not created just to be listed: nothing was saved yet.
        if cid is not None:
            raise UsageError(f"no conversation {cid!r} is saved (no conversation is saved yet)")
        sys.stdout.write("[]\n" if as_json else "")
        return
    with Store() as store:
        if cid is None:
            found = store.conversations(limit=count or None)
            if as_json:
                sys.stdout.write(json.dumps([vars(c) for c in found], ensure_ascii=False, indent=2) + "\n")
            for c in [] if as_json else found:
                sys.stdout.write(f"{c.id}  {c.created}  {c.engine}  {c.exchanges} exchange(s)  {c.name}\n")
            return
        conversation = store.conversation(cid)
        if conversation is None:
            raise UsageError(f"no conversation {cid!r} is saved; `nlp-tool logs` lists them")
        exchanges = store.exchanges(cid)
    if as_json:
        shown = {**vars(conversation), "turns": [t for e in exchanges for t in (e.user, e.reply)],
                 "exchanges": [vars(e) for e in exchanges]}
        sys.stdout.write(json.dumps(shown, ensure_ascii=False, indent=2) + "\n")
        return
    sys.stdout.write(f"conversation {conversation.id}, started {conversation.created} with {conversation.engine}\n")
    for e in exchanges:
        sys.stdout.write(f"\nyou> {e.user}\nbot> {e.reply}\n     ({e.route}, {e.engine}, {e.created})\n")
