"""Text to model input: sentence splitter, word and subword tokenizers, padding and batching of id sequences.

Rules and examples are in docs/text.md. Plugins import the sentence splitter
when they load, so this package must stay cheap to import: the names below
are loaded on first use (``sequences`` and ``vectors`` need numpy).
"""

from typing import Any

# How ``tokenize`` splits runs of Chinese and Japanese characters (docs/text.md). Defined here, not in the
# tokenizer module, so that engines can declare an option of these choices without importing the tokenizer.
CJK_MODES = ("char", "bigram", "jieba")

_LAZY = {
    "Batch": "toolkit.text.sequences",
    "batch_sequences": "toolkit.text.sequences",
    "pad_sequences": "toolkit.text.sequences",
    "FIRST_WORD_ID": "toolkit.text.tokenizer",
    "OOV_ID": "toolkit.text.tokenizer",
    "PAD_ID": "toolkit.text.tokenizer",
    "WordTokenizer": "toolkit.text.tokenizer",
    "tokenize": "toolkit.text.tokenizer",
    "Sentence": "toolkit.text.sentences",
    "split_sentences": "toolkit.text.sentences",
    "SubwordVocab": "toolkit.text.subwords",
}

__all__ = sorted([*_LAZY, "CJK_MODES"])


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'toolkit.text' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
