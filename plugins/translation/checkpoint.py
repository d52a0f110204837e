"""The "marian" translation engine: MarianMT (OPUS-MT) checkpoints made elsewhere.

The model is a Hugging Face folder (config.json, model.safetensors,
source.spm, target.spm, vocab.json), or a model id in the local Hugging
Face cache. Its language pair is tokenizer_config.json's ``source_lang``
and ``target_lang``, or else the folder's name (``opus-mt-en-de``). A
model with several target languages names them as tokens (``>>fra<<``):
``--target`` picks one. It runs on our kernels, without PyTorch, and
searches as transformers' ``generate`` does (length penalty 1.0: score /
length), so that it gives transformers' translations. It is not trained
here (`nlp-tool evaluate translate` scores it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from toolkit_plugins.translation.engine import LANGUAGE, TranslationEngine
from toolkit.checkpoint_engines import LoadsCheckpoint
from toolkit.engine import Option
from toolkit.errors import CheckpointError, OptionError

OPUS_NAME = re.compile(r"opus-mt-(?:tc-big-)?([a-z]{2,3})-([a-z]{2,3})$")


class CheckpointTranslator(LoadsCheckpoint, TranslationEngine):
    """Translation with a MarianMT checkpoint on the compiled kernels."""

    name = "marian"
    description = "MarianMT/OPUS-MT checkpoints (a Hugging Face folder), without PyTorch; transformers' beam search."
    checkpoint_types = ("marian",)
    checkpoint_head = "its tokenizer files (source.spm, target.spm, vocab.json)"
    options = {
        **TranslationEngine.options,
        "length_penalty": Option(float, 1.0, "Beam search length penalty: a score is log-probability / length ** this"
                                 " (transformers' length_penalty; 0: none).", minimum=0),
    }

    def __init__(self, model: str | None = None, **options: Any) -> None:
        from toolkit.text.pretrained_tokenizer import read_target_tokens

        super().__init__(model, **options)
        folder = self.checkpoint_folder()
        self.target_tokens = read_target_tokens(folder)
        source, target = self._pair(folder)
        if self.target_tokens:
            wanted = self.settings["target"]
            if f">>{wanted}<<" not in self.target_tokens:
                said = f"--target {wanted} is not one" if wanted else "give --target"
                raise OptionError(f"{self.model} translates into several languages; {said} of"
                                  f" {', '.join(token[2:-2] for token in self.target_tokens)}")
            self._check_pair((source, None))  # the token decides, not the folder's name
            target = wanted
        else:
            self._check_pair((source, target))
        #: The pair the run translates, as the stamp and the results' languages say it.
        self.pair = (source, target)

    def _pair(self, folder: Path) -> tuple[str | None, str | None]:
        """The checkpoint's (source, target) languages, None where its files do not say."""
        try:
            settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            settings = {}
        settings = settings if isinstance(settings, dict) else {}
        pair = (settings.get("source_lang"), settings.get("target_lang"))
        if not all(isinstance(lang, str) and LANGUAGE.fullmatch(lang) for lang in pair):
            found = OPUS_NAME.search(folder.resolve().name.lower()) or OPUS_NAME.search(str(self.model).lower())
            pair = found.groups() if found else (None, None)
        return pair

    def _load(self) -> tuple[Any, dict]:
        from toolkit_plugins.translation.translator import Translator
        from toolkit.nn.decoding import TRANSFORMERS
        from toolkit.nn.marian import MarianMT
        from toolkit.text.pretrained_tokenizer import MarianTokenizer

        folder = self.checkpoint_folder()
        model = MarianMT.from_pretrained(folder)
        tokenizer = MarianTokenizer(folder)
        tokens = min(model.args.vocab_size, model.args.target_vocab)
        if len(tokenizer) > tokens:
            raise CheckpointError(f"{folder}: the tokenizer has {len(tokenizer)} tokens, the model {tokens}: they do"
                                  " not belong together")
        metadata = self.checkpoint_metadata(folder, "marian", source=self.pair[0], target=self.pair[1],
                                            context=model.max_len)
        return Translator(model, tokenizer, tokenizer, TRANSFORMERS), metadata

    def translate_sentences(self, sentences: list[str]) -> list[list[Any]]:
        if self.target_tokens:
            sentences = [f">>{self.settings['target']}<< {sentence}" for sentence in sentences]
        return super().translate_sentences(sentences)
