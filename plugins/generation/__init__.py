"""Built-in generation plugin: the task ``generate`` with the transformer language-model engine.

Registered through the same hook as any third-party plugin. numpy and
sentencepiece are imported only when a model is used or trained.
"""

from toolkit import hookimpl

from toolkit_plugins.generation.engine import CONTRACT, TransformerGenerator


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    register("generate", TransformerGenerator.name, TransformerGenerator, TransformerGenerator.description)
