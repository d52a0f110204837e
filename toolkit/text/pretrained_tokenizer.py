"""The tokenizer of a pretrained checkpoint folder (``tokenizer.json``), through the ``tokenizers`` library.

It answers as :class:`toolkit.text.subwords.SubwordVocab` does (``encode``,
``decode``, ``pieces``, the end and padding ids, the ids never generated),
so that a model read from another tool's checkpoint runs through the same
code as one trained here. GPT-2's byte-level pieces cover every character:
no prompt is unreadable to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit.errors import CheckpointError


def read_tokenizer(folder: Path) -> Any:
    """``folder``'s tokenizer (a ``tokenizers`` object): its tokenizer.json, or for a BERT-family folder saved
    without one, WordPiece over its vocab.txt, lower-cased as its tokenizer_config.json says."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if path.is_file():
        try:
            return Tokenizer.from_file(str(path))
        except Exception as error:  # the library raises a bare Exception for a damaged file
            raise CheckpointError(f"{path}: not a tokenizers file ({str(error).splitlines()[0][:120]})") from None
    vocab = folder / "vocab.txt"
    if not vocab.is_file():
        raise CheckpointError(f"{folder}: no tokenizer.json (the tokenizer's files are needed beside the weights)")
    from tokenizers.implementations import BertWordPieceTokenizer

    try:
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        settings = {}
    lowercase = settings.get("do_lower_case", True) if isinstance(settings, dict) else True
    try:
        return BertWordPieceTokenizer(str(vocab), lowercase=bool(lowercase))
    except Exception as error:  # as above
        raise CheckpointError(f"{vocab}: not a WordPiece vocabulary ({str(error).splitlines()[0][:120]})") from None


class PretrainedTokenizer:
    """``tokenizer.json`` of ``folder``; ``eos_id`` ends a text and pads batches."""

    def __init__(self, folder: Path, eos_id: int) -> None:
        self.tokenizer = read_tokenizer(folder)
        self.eos_id = self.pad_id = eos_id
        self.never_generated: tuple[int, ...] = ()

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.tokenizer.decode_batch(ids, skip_special_tokens=False)

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.id_to_token(i) or "" for i in ids]

    def unreadable(self, ids: list[int]) -> bool:
        """Whether a prompt's ids carry nothing the model can read: never, for byte-level pieces."""
        return not ids


class EncoderTokenizer:
    """A BERT-family checkpoint's tokenizer for its encoder: texts, or pairs of texts, to token ids with each
    token's segment (token type), cut to the model's ``max_len`` positions (its special tokens included).

    With ``stride``, inputs are pairs (question, context) and only the second is cut: into windows of the
    context, each overlapping the one before by ``stride`` tokens, in the encoding's ``overflowing``.
    """

    def __init__(self, folder: Path, max_len: int, pad_id: int, stride: int | None = None) -> None:
        self.tokenizer = read_tokenizer(folder)
        if stride is None:
            self.tokenizer.enable_truncation(max_len)
        else:
            self.tokenizer.enable_truncation(max_len, stride=stride, strategy="only_second")
        self.tokenizer.no_padding()
        self.max_len, self.pad_id = max_len, pad_id

    @property
    def size(self) -> int:
        """Tokens in the vocabulary, added ones included."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: list[Any]) -> list[Any]:
        """The ``tokenizers`` encodings of ``texts`` (or of (first, second) pairs); ``overflowing`` holds what
        did not fit: the windows after the first, for pairs."""
        return self.tokenizer.encode_batch(texts)

    def arrays(self, encodings: list[Any]) -> tuple[Any, Any, Any]:
        """(ids, types, padding) arrays (B, T) of ``encodings``, padded on the right to the longest; padding is
        True at the added columns."""
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        padding = np.ones((len(encodings), width), dtype=bool)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)], types[row, :len(e.ids)], padding[row, :len(e.ids)] = e.ids, e.type_ids, False
        return ids, types, padding
