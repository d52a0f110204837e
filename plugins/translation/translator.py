"""A loaded translation model: the network, its subword vocabularies, batched decoding and BLEU/chrF."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from toolkit_plugins.translation.subwords import EOS_ID, SubwordVocab

if TYPE_CHECKING:
    import numpy as np

    from toolkit.nn import Seq2SeqTransformer

PARAM_PREFIX = "param/"
# Output length budget: generous for translation, bounded for a model that never says EOS.
LENGTH_RATIO, LENGTH_EXTRA = 2.0, 10


class Translation(NamedTuple):
    text: str
    score: float


def score_corpus(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF of detokenized, cased text (sacrebleu's defaults), with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return {"bleu": round(b.score, 2), "chrf": round(c.score, 2),
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


class Translator:
    """Translate sentences with ``model``; ``src_vocab`` and ``tgt_vocab`` may be one shared vocabulary."""

    def __init__(self, model: Seq2SeqTransformer, src_vocab: SubwordVocab, tgt_vocab: SubwordVocab) -> None:
        self.model, self.src_vocab, self.tgt_vocab = model, src_vocab, tgt_vocab

    @classmethod
    def from_arrays(cls, architecture: dict, arrays: dict[str, np.ndarray]) -> "Translator":
        """Rebuild from a model file's architecture and arrays (weights may be stored as float16)."""
        import numpy as np

        from toolkit.nn import Seq2SeqTransformer, layer_from_config

        model = layer_from_config(architecture)
        if not isinstance(model, Seq2SeqTransformer):
            raise ValueError(f"the architecture is a {type(model).__name__}, not a Seq2SeqTransformer")
        for name, param, _ in model.named_parameters():
            value = arrays.get(PARAM_PREFIX + name)
            if value is None or value.shape != param.shape:
                raise ValueError(f"array {name!r} is missing or has the wrong shape")
            param[...] = value.astype(np.float32)
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

    def _source_pieces(self, sentences: list[str]) -> tuple[list[list[int]], list[int]]:
        """Source ids + EOS per piece, and the sentence each piece belongs to.

        A sentence longer than the model's positions is cut into pieces
        translated one after the other, rather than refused or truncated.
        """
        room = self.model.max_len - 1
        pieces, owner = [], []
        for i, ids in enumerate(self.src_vocab.encode(sentences)):
            for start in range(0, max(len(ids), 1), room):
                pieces.append(ids[start : start + room] + [EOS_ID])
                owner.append(i)
        return pieces, owner

    def translate(self, sentences: list[str], beam: int = 4, alpha: float = 0.6, top_k: int = 1,
                  batch_size: int = 64) -> list[list[Translation]]:
        """The ``top_k`` best translations of each sentence, best first; score: log-probability / length penalty."""
        from toolkit_plugins.translation.batches import pad_rows
        from toolkit.nn.decoding import beam_search, greedy, length_penalty

        pieces, owner = self._source_pieces(sentences)
        # Similar lengths together: less padding, and a batch ends when its longest output does.
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        found: list[list[tuple[list[int], float]]] = [[] for _ in pieces]
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            src = pad_rows([pieces[i] for i in rows])
            max_len = [min(self.model.max_len, int(LENGTH_RATIO * len(pieces[i])) + LENGTH_EXTRA) for i in rows]
            if beam == 1:
                # Greedy search is beam 1, faster; its score is normalised the same way.
                for i, h in zip(rows, greedy(self.model, src, max_len)):
                    found[i] = [(h.ids, h.score / length_penalty(len(h.ids) + 1, alpha))]
            else:
                for i, hyps in zip(rows, beam_search(self.model, src, beam, max_len, alpha, top_k)):
                    found[i] = [(h.ids, h.score) for h in hyps]
        listed = [0] * len(sentences)
        for i, hyps in zip(owner, found):
            listed[i] = max(listed[i], len(hyps))
        out: list[list[Translation]] = [[] for _ in sentences]
        # Pieces of one sentence: the k-th translation joins the pieces' k-th (or last) hypotheses.
        for k in range(max(listed, default=0)):
            ids: dict[int, list[list[int]]] = {}
            scores: dict[int, float] = {}
            for i, hyps in zip(owner, found):
                piece, score = hyps[min(k, len(hyps) - 1)]
                ids.setdefault(i, []).append(piece)
                scores[i] = scores.get(i, 0.0) + score
            for i in ids:
                if k < listed[i]:
                    text = " ".join(self.tgt_vocab.decode(ids[i]))
                    out[i].append(Translation(text, round(scores[i], 4)))
        return out
