"""The "bert" classification engine: BERT and DistilBERT sequence-classification checkpoints made elsewhere.

The model is a Hugging Face folder (config.json, model.safetensors, the
tokenizer's files), or a model id in the local Hugging Face cache; its
classes are config.json's ``id2label``. It runs on our kernels, without
PyTorch; it is not trained here (`nlp-tool evaluate classify` scores it).
A text longer than the model's positions is read up to them, and its
result says ``"truncated": true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit_plugins.classification.common import Classifier
from toolkit.errors import ModelNotFoundError, OptionError

if TYPE_CHECKING:
    import numpy as np


class CheckpointClassifier(Classifier):
    """Text classification with a BERT-family checkpoint on the compiled kernels."""

    name = "bert"
    description = "BERT/DistilBERT sequence-classification checkpoints (a Hugging Face folder), without PyTorch."
    takes_model = True
    checkpoint_types = ("bert", "distilbert")

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if self.model is None:
            raise OptionError(f"engine {self.task}:{self.name} needs --model: a BERT or DistilBERT checkpoint folder"
                              " with a classification head, or its model id in the local Hugging Face cache")
        if self.checkpoint_folder() is None:
            raise ModelNotFoundError(f"{self.model}: not a checkpoint folder (config.json, model.safetensors) nor a"
                                     " model id in the local Hugging Face cache")

    def _load(self) -> tuple[Any, dict]:
        from toolkit.nn.bert import BertClassifier

        folder = self.checkpoint_folder()
        classifier = BertClassifier.from_pretrained(folder)
        args = classifier.encoder.args
        return classifier, {"name": Path(self.model).name, "version": None, "source": str(folder),
                            "architecture": args.kind, "labels": classifier.labels, "context": args.max_len}

    def _predict(self, texts: list[str]) -> tuple[np.ndarray, list[dict]]:
        probs, cut = self._loaded()[0].predict(texts)
        return probs, [{"truncated": True} if was_cut else {} for was_cut in cut]
