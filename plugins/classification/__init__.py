"""Built-in classification plugin: the task ``classify`` with the engines ensemble, ngram, cnn and bert.

Registered through the same hook as any third-party plugin. The engine
modules import numpy and scikit-learn only when a model is trained or used.
"""

from toolkit import hookimpl

from toolkit_plugins.classification.checkpoint import CheckpointClassifier
from toolkit_plugins.classification.cnn import CnnClassifier
from toolkit_plugins.classification.common import CONTRACT
from toolkit_plugins.classification.ensemble import EnsembleClassifier
from toolkit_plugins.classification.ngram import NgramClassifier


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    # The first engine registered is the task's default: the one the shipped model needs.
    for engine in (EnsembleClassifier, NgramClassifier, CnnClassifier, CheckpointClassifier):
        register("classify", engine.name, engine, engine.description)
