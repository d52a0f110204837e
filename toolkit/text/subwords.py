"""Subword vocabularies (translation, generation): sentencepiece models trained on the corpus and kept as bytes inside our model file.

sentencepiece serialises a trained model to a protobuf; the model file
stores those bytes as a uint8 array, and loading hands them back to
``SentencePieceProcessor(model_proto=...)``: no side file, nothing unpickled.
Ids 0-3 are fixed for every vocabulary (pad, unk, bos, eos), so that the
network's special ids do not depend on the tokenizer. A character never seen
in training becomes the unk id on input and a visible "⁇" on output.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Iterable, Sequence

from toolkit.errors import DataError, OptionError

if TYPE_CHECKING:
    import numpy as np

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("unigram", "bpe")
# sentencepiece's default spellings of the special pieces.
SPECIAL_PIECES = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"}
# sentencepiece's failed check when vocab_size is below the corpus's distinct characters plus the special pieces.
TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


class SubwordVocab:
    """A loaded sentencepiece model: ``encode(texts)`` to ids, ``decode(ids)`` to text.

    ``eos_id``, ``pad_id``, ``never_generated``, ``pieces`` and ``unreadable``
    are what a language model's decoding asks of any tokenizer (also of
    :class:`toolkit.text.pretrained_tokenizer.PretrainedTokenizer`).
    """

    eos_id, pad_id = EOS_ID, PAD_ID
    #: Ids a model must never write: padding, the unknown piece and BOS.
    never_generated = (PAD_ID, UNK_ID, BOS_ID)

    def __init__(self, proto: bytes) -> None:
        import sentencepiece as spm

        self.proto = proto
        try:
            self.processor = spm.SentencePieceProcessor(model_proto=proto)
        except RuntimeError as error:
            raise ValueError(f"not a sentencepiece model ({str(error).splitlines()[0][:80]})") from None
        if (self.processor.pad_id(), self.processor.unk_id(), self.processor.bos_id(), self.processor.eos_id()) \
                != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError("the sentencepiece model does not use ids 0-3 for pad, unk, bos and eos")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, model_type: str = "unigram",
              symbols: Sequence[str] = ()) -> "SubwordVocab":
        """Learn a vocabulary of at most ``vocab_size`` pieces from ``texts`` (fewer when the corpus is small).

        ``symbols`` are kept whole, one piece each, wherever they occur (e.g.
        WikiText's ``<unk>`` word, which would otherwise cost five pieces).
        """
        import sentencepiece as spm

        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {', '.join(MODEL_TYPES)}, not {model_type!r}")
        buffer = io.BytesIO()
        # A kept symbol may be spelled as one of the special pieces (WikiText's "<unk>" word): the special
        # piece is then renamed, since in such a corpus the spelling is text, not a marker.
        renamed = {f"{kind}_piece": f"<{kind}:special>" for kind, piece in SPECIAL_PIECES.items() if piece in symbols}
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=buffer, vocab_size=vocab_size, model_type=model_type,
                pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, character_coverage=1.0,
                # A small corpus may not hold vocab_size pieces: take what there is.
                hard_vocab_limit=False, minloglevel=2, num_threads=1,
                **({"user_defined_symbols": list(symbols)} if symbols else {}), **renamed,
            )
        except RuntimeError as error:
            message = str(error).splitlines()[0]
            too_small = TOO_SMALL.search(message)
            if too_small:
                raise OptionError(f"vocab_size {vocab_size} is too small for this data: sentencepiece needs at least"
                                  f" {too_small[2]} (one piece per character seen, plus 4 special ones);"
                                  " raise --vocab-size") from None
            raise DataError(f"cannot learn a subword vocabulary: {message}") from None
        return cls(buffer.getvalue())

    @classmethod
    def from_array(cls, array: np.ndarray) -> "SubwordVocab":
        """The vocabulary stored by :meth:`to_array`; ValueError for an array that is not one."""
        if array.dtype.str != "|u1" or array.ndim != 1:
            raise ValueError(f"a vocabulary is stored as bytes (uint8, one axis), not {array.dtype} {array.shape}")
        return cls(array.tobytes())

    def to_array(self) -> np.ndarray:
        import numpy as np

        return np.frombuffer(self.proto, dtype=np.uint8).copy()

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.processor.decode(ids)

    def pieces(self, ids: list[int]) -> list[str]:
        return self.processor.id_to_piece(ids)

    def unreadable(self, ids: list[int]) -> bool:
        """Whether a text's ids carry nothing but unknown pieces and spaces (a script never seen in training)."""
        blank = self.processor.piece_to_id("▁")
        return all(i in (UNK_ID, blank) for i in ids)
