"""The "bert" classification engine: BERT and DistilBERT sequence-classification checkpoints made elsewhere.

The model is a Hugging Face folder (config.json, model.safetensors, the
tokenizer's files), or a model id in the local Hugging Face cache; its
classes are config.json's ``id2label``. It runs on our kernels, without
PyTorch; it is not trained here (`nlp-tool evaluate classify` scores it).
A text longer than the model's positions is read up to them, and its
result says ``"truncated": true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit_plugins.classification.common import Classifier
from toolkit.checkpoint_engines import LoadsCheckpoint

if TYPE_CHECKING:
    import numpy as np


class CheckpointClassifier(LoadsCheckpoint, Classifier):
    """Text classification with a BERT-family checkpoint on the compiled kernels."""

    name = "bert"
    description = "BERT/DistilBERT sequence-classification checkpoints (a Hugging Face folder), without PyTorch."
    checkpoint_types = ("bert", "distilbert")
    checkpoint_head = "a sequence-classification head"

    def _load(self) -> tuple[Any, dict]:
        from toolkit.nn.bert import BertClassifier

        folder = self.checkpoint_folder()
        classifier = BertClassifier.from_pretrained(folder)
        args = classifier.encoder.args
        return classifier, self.checkpoint_metadata(folder, args.kind, labels=classifier.labels, context=args.max_len)

    def _predict(self, texts: list[str]) -> tuple[np.ndarray, list[dict]]:
        probs, cut = self._loaded()[0].predict(texts)
        return probs, [{"truncated": True} if was_cut else {} for was_cut in cut]
