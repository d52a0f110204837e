"""A loaded translation model: the network, its subword vocabularies, batched decoding and BLEU/chrF."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from toolkit.text.subwords import SubwordVocab

if TYPE_CHECKING:
    import numpy as np

    from toolkit.nn import Seq2SeqTransformer
    from toolkit.nn.decoding import SearchRule

PARAM_PREFIX = "param/"
# Output length budget: generous for translation, bounded for a model that never says EOS.
LENGTH_RATIO, LENGTH_EXTRA = 2.0, 10
# Runs of non-space characters longer than this (a URL, a hash, a pasted blob) are words of no language the
# model learnt, and each of their subwords costs decoding steps: they are copied through as they are. German
# compounds, the longest real words of the shipped pair, stay well below it.
MAX_WORD_CHARS = 64
LONG_WORD = re.compile(r"\S{%d,}" % (MAX_WORD_CHARS + 1))
# What one decoding batch holds bounds the memory of a stream, whose resident size swings with it as batches
# come and go: its cache grows with hypotheses (rows x beam) x positions, its per-step scores with hypotheses
# x target vocabulary. Hypotheses x longest piece decoded at once (a 10,000-character text took 1 GB in
# batches of 64 pieces of the model's full length) ...
BATCH_TOKENS = 2048
# ... and hypotheses: a batch of 32 sentences x beam 4 held 82 MB and swung `translate -i lines` by 43 % (issue
# 18). 12 sentences hold about 20 MB, which the allocator keeps for the next batch (resident memory stays
# flat), and decode as fast; 16 hold 35 MB, part of it given back between batches (a 9.6 % swing); 8 cost 10-20 %
# more per sentence, in more decoding steps.
BATCH_HYPOTHESES = 48


class Translation(NamedTuple):
    text: str
    score: float
    #: Parts the sentence was translated in: more than one when it was longer than the model's positions
    #: (cut there) or held words copied as they are.
    pieces: int = 1
    #: Words longer than MAX_WORD_CHARS, copied untranslated.
    copied: int = 0


def score_corpus(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF of detokenized, cased text (sacrebleu's defaults), with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return {"bleu": round(b.score, 2), "chrf": round(c.score, 2),
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


class Translator:
    """Translate sentences with ``model``; ``src_vocab`` and ``tgt_vocab`` may be one shared vocabulary.

    ``model`` is a Seq2SeqTransformer trained here, or another tool's model
    with its ``start``/``step`` and ids (a MarianMT checkpoint), searched by
    ``rule`` (:data:`toolkit.nn.decoding.OURS` when None), with vocabularies
    that ``encode`` and ``decode`` as SubwordVocab does.
    """

    def __init__(self, model: Seq2SeqTransformer, src_vocab: SubwordVocab, tgt_vocab: SubwordVocab,
                 rule: SearchRule | None = None) -> None:
        from toolkit.nn.decoding import OURS

        self.model, self.src_vocab, self.tgt_vocab, self.rule = model, src_vocab, tgt_vocab, rule or OURS

    @classmethod
    def from_arrays(cls, architecture: dict, arrays: dict[str, np.ndarray]) -> "Translator":
        """Rebuild from a model file's architecture and arrays (weights may be stored as float16); ValueError,
        TypeError or KeyError for numbers the arrays do not back, before the network is built."""
        from toolkit.nn import Seq2SeqTransformer
        from toolkit.nn.layer_configs import layer_from_arrays

        model = layer_from_arrays(architecture, arrays, PARAM_PREFIX, kind=Seq2SeqTransformer)
        src_vocab = SubwordVocab.from_array(arrays["src_vocab"])
        tgt_vocab = SubwordVocab.from_array(arrays["tgt_vocab"]) if "tgt_vocab" in arrays else src_vocab
        for side, vocab, size in (("source", src_vocab, model.src_vocab), ("target", tgt_vocab, model.tgt_vocab)):
            if len(vocab) != size:
                raise ValueError(f"the {side} vocabulary has {len(vocab)} pieces but the network {size}")
        return cls(model, src_vocab, tgt_vocab)

    def to_arrays(self, dtype: type | None = None) -> dict[str, np.ndarray]:
        """Weights (cast to ``dtype`` if given: float16 halves the file) and the vocabularies' bytes."""
        arrays = {PARAM_PREFIX + name: (param if dtype is None else param.astype(dtype))
                  for name, param, _ in self.model.named_parameters()}
        arrays["src_vocab"] = self.src_vocab.to_array()
        if self.tgt_vocab is not self.src_vocab:
            arrays["tgt_vocab"] = self.tgt_vocab.to_array()
        return arrays

    def _source_pieces(self, sentences: list[str]) -> tuple[list[list[int] | str], list[int]]:
        """The pieces of the sentences, and the sentence each belongs to: source ids + EOS, or a word copied as
        it is (a str).

        A sentence longer than the model's positions is cut into pieces
        translated one after the other, rather than refused or truncated; a
        word longer than MAX_WORD_CHARS is a piece of its own, copied.
        """
        room = self.model.max_len - 1
        parts: list[tuple[int, str, bool]] = []  # (sentence, text, copied)
        for i, sentence in enumerate(sentences):
            own: list[tuple[str, bool]] = []
            start = 0
            for word in LONG_WORD.finditer(sentence):
                own += [(sentence[start : word.start()], False), (word.group(), True)]
                start = word.end()
            own.append((sentence[start:], False))
            if len(own) > 1:
                # Around its copied words a sentence's text is translated only where it holds something.
                own = [(text, copied) for text, copied in own if copied or text.strip()]
            parts += [(i, text, copied) for text, copied in own]
        encoded = iter(self.src_vocab.encode([text for _, text, copied in parts if not copied]))
        pieces: list[list[int] | str] = []
        owner: list[int] = []
        for i, text, copied in parts:
            if copied:
                pieces.append(text)
                owner.append(i)
                continue
            ids = next(encoded)
            for start in range(0, max(len(ids), 1), room):
                pieces.append(ids[start : start + room] + [self.model.eos_id])
                owner.append(i)
        return pieces, owner

    def translate(self, sentences: list[str], beam: int = 4, alpha: float = 0.6, top_k: int = 1,
                  batch_size: int = 64) -> list[list[Translation]]:
        """The ``top_k`` best translations of each sentence, best first; score: log-probability / length penalty."""
        from toolkit_plugins.translation.batches import pad_rows
        from toolkit.batching import length_batches
        from toolkit.nn.decoding import greedy

        pieces, owner = self._source_pieces(sentences)
        found: list[list[tuple[str, float]]] = [[(p, 0.0)] if isinstance(p, str) else [] for p in pieces]
        # Similar lengths together: less padding, and a batch ends when its longest output does. A batch holds
        # at most BATCH_HYPOTHESES hypotheses (rows x beam) and BATCH_TOKENS hypotheses x subwords.
        decoded = [i for i, p in enumerate(pieces) if not isinstance(p, str)]
        batches = length_batches([len(pieces[i]) for i in decoded], BATCH_TOKENS // beam,
                                 max_rows=min(batch_size, BATCH_HYPOTHESES // beam))
        for batch in batches:
            rows = [decoded[j] for j in batch]
            src = pad_rows([pieces[i] for i in rows], self.model.pad_id)
            max_len = [min(self.model.max_len, int(LENGTH_RATIO * len(pieces[i])) + LENGTH_EXTRA) for i in rows]
            if beam == 1:
                # Greedy search is beam 1, faster; its score is normalised the same way.
                hyps = [[(h.ids, h.score / self.rule.length_penalty(len(h.ids) + 1, alpha))]
                        for h in greedy(self.model, src, max_len)]
            else:
                hyps = [[(h.ids, h.score) for h in best]
                        for best in self.rule.beam_search(self.model, src, beam, max_len, alpha, top_k)]
            for i, piece_hyps in zip(rows, hyps):
                texts = self.tgt_vocab.decode([ids for ids, _ in piece_hyps])
                found[i] = [(text, score) for text, (_, score) in zip(texts, piece_hyps)]
        listed, counts, copied = [0] * len(sentences), [0] * len(sentences), [0] * len(sentences)
        for i, piece, hyps in zip(owner, pieces, found):
            listed[i] = max(listed[i], len(hyps))
            counts[i] += 1
            copied[i] += isinstance(piece, str)
        out: list[list[Translation]] = [[] for _ in sentences]
        # Pieces of one sentence: the k-th translation joins the pieces' k-th (or last) hypotheses.
        for k in range(max(listed, default=0)):
            texts: dict[int, list[str]] = {}
            scores: dict[int, float] = {}
            for i, hyps in zip(owner, found):
                text, score = hyps[min(k, len(hyps) - 1)]
                texts.setdefault(i, []).append(text)
                scores[i] = scores.get(i, 0.0) + score
            for i in texts:
                if k < listed[i]:
                    out[i].append(Translation(" ".join(t for t in texts[i] if t), round(scores[i], 4), counts[i],
                                              copied[i]))
        return out
