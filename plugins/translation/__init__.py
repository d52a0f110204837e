"""Built-in translation plugin: the task ``translate`` with the transformer engine.

Registered through the same hook as any third-party plugin. numpy,
sentencepiece and sacrebleu are imported only when a model is used or trained.
"""

from toolkit import hookimpl

from toolkit_plugins.translation.engine import CONTRACT, TransformerTranslator


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    register("translate", TransformerTranslator.name, TransformerTranslator, TransformerTranslator.description)
