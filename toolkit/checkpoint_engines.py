"""The mixin of engines that run other tools' checkpoints only (BERT-family classifiers and readers, say)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from toolkit.engine import LoadsModel
from toolkit.errors import ModelNotFoundError, OptionError


class LoadsCheckpoint(LoadsModel):
    """Mixin for engines that run other tools' checkpoints only (:attr:`Engine.checkpoint_types`), no model file
    of their own: ``model`` must name a checkpoint folder, or a model id in the local Hugging Face cache, which
    ``_load`` reads with :meth:`checkpoint_metadata`. Put it before the engine's other bases."""

    takes_model = True
    #: What the checkpoint must hold besides the encoder, for the message when no model is given.
    checkpoint_head: ClassVar[str] = ""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if self.model is None:
            kinds = " or ".join(self.checkpoint_types)
            raise OptionError(f"engine {self.task}:{self.name} needs --model: a {kinds} checkpoint folder with"
                              f" {self.checkpoint_head}, or its model id in the local Hugging Face cache")
        if self.checkpoint_folder() is None:
            raise ModelNotFoundError(f"{self.model}: not a checkpoint folder (config.json, model.safetensors) nor a"
                                     " model id in the local Hugging Face cache")

    def checkpoint_metadata(self, folder: Path, architecture: str, **more: Any) -> dict:
        """What the stamp and ``--explain`` tell of the checkpoint that runs (see :meth:`Engine.stamp`)."""
        return {"name": Path(self.model).name, "version": None, "checkpoint": str(folder),
                "architecture": architecture, **more}

    def loaded_metadata(self) -> dict:
        return self._loaded()[1]
