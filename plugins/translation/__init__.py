"""Built-in translation plugin: the task ``translate`` with the engines transformer and marian.

Registered through the same hook as any third-party plugin. numpy,
sentencepiece and sacrebleu are imported only when a model is used or trained.
"""

from toolkit import hookimpl

from toolkit_plugins.translation.checkpoint import CheckpointTranslator
from toolkit_plugins.translation.engine import CONTRACT, TransformerTranslator


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    # The first engine registered is the task's default: the one the shipped model needs.
    for engine in (TransformerTranslator, CheckpointTranslator):
        register("translate", engine.name, engine, engine.description)
