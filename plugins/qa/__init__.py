"""Built-in question-answering plugin: the task ``qa`` with the engines reader, window, sentence and bert.

Registered through the same hook as any third-party plugin. The first engine
registered is the task's default: the neural reader; the two rule-based
baselines need no model; bert runs checkpoints made elsewhere.
"""

from toolkit import hookimpl

from toolkit_plugins.qa.baselines import SentenceRetriever, WindowBaseline
from toolkit_plugins.qa.checkpoint import CheckpointReader
from toolkit_plugins.qa.common import CONTRACT
from toolkit_plugins.qa.neural import ReaderEngine


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    for engine in (ReaderEngine, WindowBaseline, SentenceRetriever, CheckpointReader):
        register("qa", engine.name, engine, engine.description)
