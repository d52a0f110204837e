"""`nlp-tool chat` on a terminal, driven through a pseudo-terminal: the prompt, commands, replies, Ctrl-C at the
prompt and in the middle of a reply (the conversation goes on), Ctrl-D (it ends, saved)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")

# The prompt at the start of a line (history lines read "you> ...").
PROMPT = "\n> "
LONG_REPLY = " ".join(f"word{n}" for n in range(60_000))  # far more than a terminal's buffer holds


class Terminal:
    """``nlp-tool ARGS`` with a pseudo-terminal as its controlling terminal (so Ctrl-C is SIGINT)."""

    def __init__(self, args: list[str], env: dict) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes nlp-tool
            os.execve(sys.executable, [sys.executable, "-c", "from toolkit.cli import cli; cli()", *args], env)
        self.pid, self.fd, self.seen = pid, fd, ""

    def read_until(self, text: str, timeout: float = 60) -> str:
        """What the terminal shows up to ``text`` (which must appear within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not shown; the terminal shows {self.seen[-500:]!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child ended: nothing more to read
                    chunk = b""
                assert chunk or text in self.seen, f"{text!r} not shown before the end: {self.seen[-500:]!r}"
                self.seen += chunk.decode("utf-8", "replace")
        shown, self.seen = self.seen.partition(text)[::2]
        return shown

    def type(self, keys: str, at_prompt: bool = True) -> None:
        """Type ``keys``; ``at_prompt``, once the prompt reads keys. The prompt is shown before the line
        editor takes the terminal out of line mode, and keys typed in between are read by the terminal's
        line discipline (Ctrl-C as SIGINT, Ctrl-D as end of input), as no one types that fast."""
        deadline = time.monotonic() + 60
        while at_prompt and termios.tcgetattr(self.fd)[3] & termios.ICANON:
            assert time.monotonic() < deadline, "the prompt never read keys"
            time.sleep(0.01)
        os.write(self.fd, keys.encode())

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.05)[0]:
                    os.read(self.fd, 65536)  # drain, so the child is never blocked writing
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("nlp-tool chat did not end")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


@pytest.fixture
def terminal(tmp_path):
    corpus = tmp_path / "dialogues.jsonl"
    corpus.write_text(json.dumps({"turns": ["Where is the railway station?", "Go straight on, then left."]}) + "\n"
                      + json.dumps({"turns": ["Tell me a long story", LONG_REPLY]}) + "\n", encoding="utf-8")
    env = {**os.environ, "NLP_TOOL_HOME": str(tmp_path / "home"), "TERM": "dumb"}
    opened = []

    def start(*args: str) -> Terminal:
        opened.append(Terminal(["chat", "-e", "retrieval", "--scorer", "bm25", "--corpus", str(corpus), *args], env))
        return opened[-1]
    yield start
    for t in opened:
        t.close()


def saved(env_home) -> list[dict]:
    from click.testing import CliRunner

    from toolkit.cli import cli

    return json.loads(CliRunner().invoke(cli, ["logs", "--json"], env={"NLP_TOOL_HOME": str(env_home)}).stdout)


def test_a_conversation_on_the_terminal(terminal, tmp_path):
    t = terminal()
    t.read_until("Ctrl-D to end.")
    t.read_until(PROMPT)
    t.type("/help\r")
    assert "/save FILE" in t.read_until(PROMPT)
    # Ctrl-C at the prompt drops the half-typed line at once (with readline it waited for the next key when
    # one of BLAS's threads took the SIGINT): what follows is a fresh line, and nothing was sent.
    t.type("half a line")
    t.read_until("half a line")
    t.type("\x03")
    t.read_until(PROMPT, timeout=10)
    t.type("/history\r")
    t.read_until("(no turns yet)")
    t.read_until(PROMPT)
    t.type("Excuse me, where is the station?\r")
    assert "Go straight on, then left." in t.read_until(PROMPT)
    t.type("/history\r")
    history = t.read_until(PROMPT)
    assert "you> Excuse me, where is the station?" in history and "bot> Go straight on, then left." in history
    # Ctrl-C in the middle of a reply stops it (once its start is shown, the terminal is not read, so the rest
    # of the reply waits to be written), and the exchange is dropped.
    t.type("tell me a long story\r")
    t.read_until("word0 ")
    t.type("\x03", at_prompt=False)
    t.read_until("[reply stopped; not saved]")
    t.read_until(PROMPT)
    t.type(f"/save {tmp_path / 'saved.jsonl'}\r")
    assert "Saved 2 turns" in t.read_until(PROMPT)
    t.type("\x04")  # Ctrl-D ends it
    assert t.exit_code() == 0
    assert json.loads((tmp_path / "saved.jsonl").read_text())["turns"] == [
        "Excuse me, where is the station?", "Go straight on, then left."]
    [conversation] = saved(tmp_path / "home")
    assert conversation["exchanges"] == 1


def test_continue_on_the_terminal_then_exit(terminal, tmp_path):
    t = terminal()
    t.read_until(PROMPT)
    t.type("where is the station\r")
    t.read_until(PROMPT)
    t.type("/exit\r")
    assert t.exit_code() == 0
    again = terminal("--continue")
    assert "continuing after 1 exchanges" in again.read_until(PROMPT)
    again.type("/reset\r")
    assert "New conversation" in again.read_until(PROMPT)
    again.type("railway station?\r")
    again.read_until(PROMPT)
    # SIGTERM (kill) ends it, as Ctrl-C ends other commands, although Ctrl-C here only clears the line.
    os.kill(again.pid, signal.SIGTERM)
    again.read_until("nlp-tool: interrupted")
    assert again.exit_code() == 130
    assert [c["exchanges"] for c in saved(tmp_path / "home")] == [1, 1]


def test_the_default_engine_streams_the_shipped_models_reply(tmp_path):
    from toolkit_plugins.chat.transformer import TransformerChat

    if not os.path.isfile(TransformerChat.default_model):
        pytest.skip("the default chat model is not installed")
    env = {**os.environ, "NLP_TOOL_HOME": str(tmp_path / "home"), "TERM": "dumb"}
    t = Terminal(["chat", "--no-log", "--temperature", "0"], env)
    try:
        assert "Chatting with chat:transformer" in t.read_until("Ctrl-D to end.")
        t.read_until(PROMPT)
        t.type("Hi, how are you?\r")
        reply = t.read_until(PROMPT).split("Hi, how are you?", 1)[-1]
        assert reply.strip() and "<|speaker" not in reply
        t.type("\x04")
        assert t.exit_code() == 0
    finally:
        t.close()


@pytest.fixture
def reader():
    """A PromptReader whose prompt reads from a pipe and draws nowhere, SIGTERM its handler. Ctrl-D comes after
    20 s, so that a prompt that was not ended fails its test rather than hangs."""
    import threading

    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from toolkit_plugins.chat.repl import PromptReader

    with create_pipe_input() as keys:
        read = PromptReader(None)
        read.session = PromptSession(input=keys, output=DummyOutput())
        previous = signal.signal(signal.SIGTERM, read.terminate)
        ctrl_d = threading.Timer(20, keys.send_text, ["\x04"])
        ctrl_d.start()
        try:
            yield read
        finally:
            ctrl_d.cancel()
            signal.signal(signal.SIGTERM, previous)


def test_sigterm_at_the_prompt_ends_it(reader):
    from toolkit_plugins.chat.repl import Terminated

    signal.setitimer(signal.ITIMER_REAL, 0.3)
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    try:
        started = time.monotonic()
        with pytest.raises(Terminated):
            reader("> ")
        assert time.monotonic() - started < 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_sigterm_whose_exception_python_dropped_still_ends_it(reader):
    """The CI failure: SIGTERM's exception raised inside a weakref callback, which Python prints and drops."""
    import weakref

    from toolkit_plugins.chat.repl import Terminated

    class Anything:
        pass

    dropped = []
    hook, sys.unraisablehook = sys.unraisablehook, dropped.append
    try:
        thing = Anything()
        ref = weakref.ref(thing, lambda _: reader.terminate(signal.SIGTERM, None))
        del thing
    finally:
        sys.unraisablehook = hook
    assert ref() is None and dropped[0].exc_type is Terminated
    with pytest.raises(Terminated):
        reader("> ")
