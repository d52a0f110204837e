"""The tokenizer of a pretrained checkpoint folder (``tokenizer.json``), through the ``tokenizers`` library.

It answers as :class:`toolkit.text.subwords.SubwordVocab` does (``encode``,
``decode``, ``pieces``, the end and padding ids, the ids never generated),
so that a model read from another tool's checkpoint runs through the same
code as one trained here. GPT-2's byte-level pieces cover every character:
no prompt is unreadable to it.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import ModelFileError


class PretrainedTokenizer:
    """``tokenizer.json`` of ``folder``; ``eos_id`` ends a text and pads batches."""

    def __init__(self, folder: Path, eos_id: int) -> None:
        from tokenizers import Tokenizer

        path = folder / "tokenizer.json"
        if not path.is_file():
            raise ModelFileError(f"{folder}: no tokenizer.json (the tokenizer's files are needed beside the weights)")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # the library raises a bare Exception for a damaged file
            raise ModelFileError(f"{path}: not a tokenizers file ({str(error).splitlines()[0][:120]})") from None
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
