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


def _json_table(path: Path) -> dict:
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(table, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return table


def target_tokens(vocab: dict) -> list[str]:
    """The target-language tokens (``>>fra<<``) of a MarianMT vocabulary: a model of several target languages reads
    the one wanted as the source's first token."""
    return sorted(piece for piece in vocab if piece.startswith(">>") and piece.endswith("<<"))


def read_target_tokens(folder: Path) -> list[str]:
    """:func:`target_tokens` of the MarianMT folder ``folder`` (none when its vocab.json cannot be read: loading
    the tokenizer says why)."""
    try:
        return target_tokens(_json_table(folder / "vocab.json"))
    except CheckpointError:
        return []


class MarianTokenizer:
    """A MarianMT folder's tokenizer, as transformers' ``MarianTokenizer`` reads text: ``source.spm``
    (sentencepiece) cuts a source text into pieces, ``vocab.json`` maps pieces to the model's ids (unknown
    pieces to ``<unk>``); output ids map back to pieces through the same table (``target_vocab.json`` when the
    folder keeps the two apart), joined as sentencepiece joins them. A leading language token such as
    ``>>fra<<`` (multilingual targets) is one piece. It answers as :class:`toolkit.text.subwords.SubwordVocab`
    does, so that the translation engine runs it as its own vocabularies."""

    SPECIAL = ("</s>", "<unk>", "<pad>")

    def __init__(self, folder: Path) -> None:
        import sentencepiece

        config = folder / "tokenizer_config.json"
        settings = _json_table(config) if config.is_file() else {}
        separate = bool(settings.get("separate_vocabs", False))
        files = ("source.spm", "target.spm", "vocab.json", *(("target_vocab.json",) if separate else ()))
        for name in files:
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder}: no {name} (MarianMT's tokenizer files are needed beside the weights)")
        self.vocab = _json_table(folder / "vocab.json")
        target = _json_table(folder / "target_vocab.json") if separate else self.vocab
        for path, table in (("vocab.json", self.vocab), ("target_vocab.json", target)):
            if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in table.values()):
                raise CheckpointError(f"{folder / path}: not a table of pieces to ids")
        if "<unk>" not in self.vocab:
            raise CheckpointError(f"{folder / 'vocab.json'}: no <unk> piece")
        self.unk_id = self.vocab["<unk>"]
        self.piece = {i: piece for piece, i in target.items()}
        self.special = {target[piece] for piece in self.SPECIAL if piece in target}
        self.codes = target_tokens(self.vocab)
        self.source_lang, self.target_lang = settings.get("source_lang"), settings.get("target_lang")
        spm = {}
        for side in ("source", "target"):
            try:
                spm[side] = sentencepiece.SentencePieceProcessor(model_file=str(folder / f"{side}.spm"))
            except (OSError, RuntimeError) as error:
                raise CheckpointError(f"{folder / (side + '.spm')}: not a sentencepiece model ({error})") from None
        # transformers joins output pieces with the source model when the vocabulary is shared.
        self.source, self.joiner = spm["source"], spm["target" if separate else "source"]
        self.size = max(max(self.vocab.values()), max(target.values())) + 1

    def __len__(self) -> int:
        return self.size

    def encode(self, texts: list[str]) -> list[list[int]]:
        codes, rest = [], []
        for text in texts:
            end = text.find("<<") if text.startswith(">>") else -1
            codes.append([text[:end + 2]] if end != -1 else [])
            rest.append(text[end + 2:] if end != -1 else text)
        pieces = self.source.encode(rest, out_type=str)
        return [[self.vocab.get(piece, self.unk_id) for piece in code + own] for code, own in zip(codes, pieces)]

    def decode(self, ids: list[list[int]]) -> list[str]:
        # An id the table lacks is the sentencepiece model's own, as transformers reads it (none past its size).
        size = self.joiner.get_piece_size()
        return [self.joiner.decode_pieces([self.piece.get(i) or (self.joiner.id_to_piece(i) if i < size else "")
                                           for i in row if i not in self.special]).replace("\u2581", " ").strip()
                for row in ids]
