"""Built-in chat plugin: the task ``chat`` (a conversation in, its next turn out) with the transformer
engine (the default, registered first) and the retrieval engine, and the commands ``nlp-tool chat`` (a
conversation on the terminal, saved) and ``nlp-tool logs``.

Registered through the same hooks as any third-party plugin. numpy and scipy
are imported only when a corpus is indexed, sqlite3 only when conversations
are read or saved.
"""

from toolkit import hookimpl

from toolkit_plugins.chat.contract import CONTRACT, TASK
from toolkit_plugins.chat.retrieval import RetrievalEngine
from toolkit_plugins.chat.transformer import TransformerChat


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    register(TASK, TransformerChat.name, TransformerChat, TransformerChat.description)
    register(TASK, RetrievalEngine.name, RetrievalEngine, RetrievalEngine.description)


@hookimpl
def register_commands(cli):
    from toolkit_plugins.chat.commands import chat, logs

    cli.add_command(chat)
    cli.add_command(logs)
