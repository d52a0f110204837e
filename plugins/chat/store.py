"""Saved conversations: one SQLite file in the user's data directory, as ``llm`` keeps its logs.

Schema (``PRAGMA user_version`` 1):

- ``conversations(id, name, engine, created)``: ``id`` sorts by creation
  time (milliseconds in hex, then random hex); ``name`` is the first user
  turn, cut to 60 characters;
- ``exchanges(conversation_id, position, user, reply, route, engine,
  created)``: one row per exchange, the user's turn and the reply together,
  so that a conversation is always whole turns: each row is written in one
  transaction (with its conversation, for the first), and a process killed
  mid-write leaves SQLite's journal, which rolls the row back at the next
  open.

A file that is not such a database is never written to or replaced: opening
it raises StoreError, which says where it is and what to do.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from toolkit.errors import NlpToolError

SCHEMA_VERSION = 1
DATABASE_NAME = "logs.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    engine TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exchanges (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    position INTEGER NOT NULL,
    user TEXT NOT NULL,
    reply TEXT NOT NULL,
    route TEXT NOT NULL,
    engine TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
"""


class StoreError(NlpToolError):
    """The conversation database cannot be used (damaged, foreign, from a newer version, unwritable)."""


def database_path() -> Path:
    """Where conversations are kept: ``$NLP_TOOL_HOME/logs.db``, else ``logs.db`` in the platform's user data
    directory for nlp-tool."""
    from toolkit.plugins import ENV_HOME

    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home) / DATABASE_NAME
    import platformdirs

    return Path(platformdirs.user_data_dir("nlp-tool", appauthor=False)) / DATABASE_NAME


@dataclass(frozen=True)
class Exchange:
    user: str
    reply: str
    route: str
    engine: str
    created: str


@dataclass(frozen=True)
class Conversation:
    id: str
    name: str
    engine: str
    created: str
    exchanges: int


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_id() -> str:
    """A conversation id that sorts by creation time, like llm's ULIDs."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"


class Store:
    """The conversation database at ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else database_path()
        self._fix = (f"move {self.path} away (it is left as it is) to start a new one, or chat with --no-log")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are the explicit BEGIN ... COMMIT below, nothing implicit.
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self._check_schema()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot use the conversation database {self.path}: {error}; {self._fix}") from None
        except OSError as error:
            raise StoreError(f"cannot open the conversation database {self.path}: {error.strerror or error}"
                             ) from None

    def _check_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 and not tables:
            # One transaction; IF NOT EXISTS: another process may have created them meanwhile.
            self.db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            return
        if version != SCHEMA_VERSION or not {"conversations", "exchanges"} <= tables:
            raise StoreError(f"{self.path} is not a conversation database of this version of nlp-tool"
                             f" (schema {version}, tables {', '.join(sorted(tables)) or 'none'}); {self._fix}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_exchange(self, conversation_id: str, user: str, reply: str, route: str, engine: str) -> None:
        """Save one exchange at the end of the conversation, creating the conversation with its first one: in
        one transaction, all of it or nothing."""
        now = _now()
        try:
            # IMMEDIATE: the write lock is taken before the position is read, so two processes adding to one
            # conversation take turns rather than both claiming the same position.
            self.db.execute("BEGIN IMMEDIATE")
            try:
                position = self.db.execute("SELECT COUNT(*) FROM exchanges WHERE conversation_id = ?",
                                           (conversation_id,)).fetchone()[0]
                self.db.execute("INSERT OR IGNORE INTO conversations (id, name, engine, created) VALUES (?, ?, ?, ?)",
                                (conversation_id, " ".join(user.split())[:60], engine, now))
                self.db.execute("INSERT INTO exchanges (conversation_id, position, user, reply, route, engine,"
                                " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (conversation_id, position, user, reply, route, engine, now))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise StoreError(f"cannot save to the conversation database {self.path}: {error}") from None

    def conversation(self, conversation_id: str) -> Conversation | None:
        row = self.db.execute(
            "SELECT c.id, c.name, c.engine, c.created, COUNT(e.position) FROM conversations c"
            " LEFT JOIN exchanges e ON e.conversation_id = c.id WHERE c.id = ? GROUP BY c.id",
            (conversation_id,)).fetchone()
        return Conversation(*row) if row else None

    def conversations(self, limit: int | None = None) -> list[Conversation]:
        """The conversations, the latest first."""
        rows = self.db.execute(
            "SELECT c.id, c.name, c.engine, c.created, COUNT(e.position) FROM conversations c"
            " LEFT JOIN exchanges e ON e.conversation_id = c.id GROUP BY c.id ORDER BY c.id DESC LIMIT ?",
            (-1 if limit is None else limit,)).fetchall()
        return [Conversation(*row) for row in rows]

    def latest(self) -> Conversation | None:
        found = self.conversations(limit=1)
        return found[0] if found else None

    def exchanges(self, conversation_id: str) -> list[Exchange]:
        rows = self.db.execute("SELECT user, reply, route, engine, created FROM exchanges"
                               " WHERE conversation_id = ? ORDER BY position", (conversation_id,)).fetchall()
        return [Exchange(*row) for row in rows]
