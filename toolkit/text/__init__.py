"""Text to model input: word tokenizer, padding and batching of id sequences.

Rules and examples are in docs/text.md.
"""

from toolkit.text.sequences import Batch, batch_sequences, pad_sequences
from toolkit.text.tokenizer import FIRST_WORD_ID, OOV_ID, PAD_ID, WordTokenizer, tokenize

__all__ = ["FIRST_WORD_ID", "Batch", "OOV_ID", "PAD_ID", "WordTokenizer", "batch_sequences", "pad_sequences",
           "tokenize"]
