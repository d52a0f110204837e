"""Built-in question-answering plugin: the task ``qa`` with the engines reader, window and sentence.

Registered through the same hook as any third-party plugin. The first engine
registered is the task's default: the neural reader; the two rule-based
baselines need no model.
"""

from toolkit import hookimpl

from toolkit_plugins.qa.baselines import SentenceRetriever, WindowBaseline
from toolkit_plugins.qa.common import CONTRACT
from toolkit_plugins.qa.neural import ReaderEngine


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    for engine in (ReaderEngine, WindowBaseline, SentenceRetriever):
        register("qa", engine.name, engine, engine.description)
