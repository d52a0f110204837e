"""A loaded language model: the network and its subword vocabulary; prompts in, continuations out.

Text is decoded with the token before it (the prompt's last), so that the
continuation's first word keeps its leading space. A model trained on a
tokenized corpus (WikiText's ``city 's``, DailyDialog's ``Hi , Jim .``) has
its corpus's style (:mod:`toolkit.text.corpus_style`) in its model file:
prompts are put in that style and continuations written back as plain text.
Stop strings are looked for in the plain text after every step; a streamed
text holds back its tail while it could still be the start of a stop string
or change with the next token, so that what is streamed is exactly the text
of the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from toolkit.errors import InputError
from toolkit.text.corpus_style import NEVER_WRITTEN, STYLES, PlainText, to_style
from toolkit.text.subwords import EOS_ID, PAD_ID, SubwordVocab

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from toolkit.nn.continuous_cache import ContinuousCache
    from toolkit.nn.language_model import DecoderLM
    from toolkit.nn.sampling import Sampling
    from toolkit.text.pretrained_tokenizer import PretrainedTokenizer

PARAM_PREFIX = "param/"
# Rows x cache columns of one decoding batch. A batch's cache and transient arrays grow with it, and a stream's
# resident memory swung with them as batches of different shapes came and went (20 % on chat's default model,
# 32 conversations of up to 176 columns: issue 18). 2,048 columns hold a 16 MB cache on the shipped models
# (8 KB a column) and 147 MB on GPT-2 small (72 KB), whose weights are 500 MB.
BATCH_COLUMNS = 2048


@dataclass
class Prompt:
    """A prompt as the model reads it: the end-of-text id, then its last ids that fit; ``cut``: ids dropped
    from its left to fit the context; ``tokens``: its length in ids before the cut; ``text``: the prompt in the
    model's style."""

    ids: list[int]
    tokens: int
    cut: int
    text: str = ""


@dataclass
class Sample:
    """One continuation: its text (cut at a stop string), token ids, their log-probabilities, and why it ended
    (None while it is being generated); ``settled``: how much of the text the next tokens cannot change."""

    text: str
    ids: list[int]
    logprobs: list[float]
    finish: str | None
    settled: int = 0


class Generator:
    """Continue prompts with ``model``, whose tokens are ``vocab``'s pieces (a vocabulary learnt here, or a
    pretrained checkpoint's tokenizer). A ``continuous_cache`` mixes its probabilities into the model's in every
    perplexity, and in generation when asked (``use_cache``). ``style`` is how the model's training corpus
    writes text (:data:`toolkit.text.corpus_style.STYLES`)."""

    def __init__(self, model: DecoderLM, vocab: SubwordVocab | PretrainedTokenizer,
                 continuous_cache: ContinuousCache | None = None, style: str = "plain") -> None:
        if style not in STYLES:
            raise ValueError(f"text style {style!r} is not one of {', '.join(STYLES)}")
        self.model, self.vocab, self.continuous_cache, self.style = model, vocab, continuous_cache, style
        self.forbidden = (*vocab.never_generated, *self._piece_ids(NEVER_WRITTEN.get(style, ())))

    def _piece_ids(self, pieces: Sequence[str]) -> list[int]:
        """The ids of those of ``pieces`` that are a piece of the vocabulary (its encoding of the piece alone
        ends with it, after the word-start piece a subword tokenizer may put first)."""
        ends = [found[-1] for found in self.vocab.encode(list(pieces)) if found]
        return [i for i, piece in zip(ends, self.vocab.pieces(ends)) if piece in pieces]

    @classmethod
    def from_pretrained(cls, folder: Path) -> "Generator":
        """A GPT-2 checkpoint folder (config.json, model.safetensors, tokenizer.json)."""
        from toolkit.nn.gpt2 import gpt2_model
        from toolkit.nn.pretrained import open_checkpoint
        from toolkit.text.pretrained_tokenizer import PretrainedTokenizer

        model = gpt2_model(open_checkpoint(folder))
        return cls(model, PretrainedTokenizer(folder, model.eos_id))

    @classmethod
    def from_arrays(cls, architecture: dict, arrays: dict[str, np.ndarray], style: str = "plain") -> "Generator":
        """Rebuild from a model file's architecture and arrays; ValueError, TypeError or KeyError for numbers
        the arrays do not back, before the network is built."""
        from toolkit.nn.language_model import DecoderLM
        from toolkit.nn.layer_configs import layer_from_arrays

        model = layer_from_arrays(architecture, arrays, PARAM_PREFIX, kind=DecoderLM)
        vocab = SubwordVocab.from_array(arrays["vocab"])
        if len(vocab) != model.vocab_size:
            raise ValueError(f"the vocabulary has {len(vocab)} pieces but the network {model.vocab_size}")
        if model.eos_id != EOS_ID or model.pad_id != PAD_ID:
            raise ValueError(f"the network's end and padding ids ({model.eos_id}, {model.pad_id}) are not the"
                             f" vocabulary's ({EOS_ID}, {PAD_ID})")
        return cls(model, vocab, style=style)

    @classmethod
    def from_model_file(cls, path: str) -> tuple["Generator", dict]:
        """The generator of a model file (as :func:`toolkit.lm.training.train_language_model` writes), and the
        file's metadata; ModelFileError for a file that holds no usable language model."""
        from toolkit.nn import ModelFileError, read_model_file
        from toolkit.nn.continuous_cache import ContinuousCache

        config, arrays = read_model_file(path)
        metadata = config.get("metadata", {})
        try:
            generator = cls.from_arrays(config["architecture"], arrays, metadata.get("text_style", "plain"))
            if metadata.get("continuous_cache") is not None:
                generator.continuous_cache = ContinuousCache.from_dict(metadata["continuous_cache"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: not a usable language model ({error})") from None
        return generator, metadata

    def to_arrays(self, dtype: type | None = None) -> dict[str, np.ndarray]:
        arrays = {PARAM_PREFIX + name: (param if dtype is None else param.astype(dtype))
                  for name, param, _ in self.model.named_parameters()}
        arrays["vocab"] = self.vocab.to_array()
        return arrays

    # -- prompts ----------------------------------------------------------------

    def model_text(self, text: str) -> str:
        """Plain ``text`` in the style of the model's corpus (as it is, for a model of plain text)."""
        return to_style(text, self.style)

    def prompts(self, texts: Sequence[str], max_tokens: int) -> list[Prompt]:
        """The prompts of plain ``texts`` (put in the model's style), each cut from the left to leave room for
        ``max_tokens`` (or half the context, when that is less) before the context fills; InputError for an
        empty prompt or one the vocabulary cannot read."""
        room = self.model.max_len - 1 - min(max_tokens, self.model.max_len // 2)
        styled = [self.model_text(text) for text in texts]
        prompts = []
        for text, model_text, ids in zip(texts, styled, self.vocab.encode(styled)):
            if not text.strip():
                raise InputError("the prompt is empty")
            if self.vocab.unreadable(ids):
                raise InputError("the prompt holds only characters this model never saw in training"
                                 f" ({text.strip()[:40]!r}): it cannot continue it")
            kept = ids[-room:] if room > 0 else ids[-1:]
            prompts.append(Prompt([self.vocab.eos_id, *kept], len(ids), len(ids) - len(kept), model_text))
        return prompts

    # -- decoding -------------------------------------------------------------

    def _text(self, prompt: Prompt, ids: list[int]) -> str:
        """The text of ``ids`` as it follows the prompt (its first word's space kept)."""
        last = prompt.ids[-1]
        before = self.vocab.decode([[last]])[0]
        both = self.vocab.decode([[last, *ids]])[0]
        return both[len(before):] if both.startswith(before) else self.vocab.decode([ids])[0]

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling, max_tokens: int,
                 rngs: Sequence[np.random.Generator], stops: Sequence[str] = (), use_cache: bool = False
                 ) -> list[Sample]:
        """One sample per prompt (batched; ``rngs[i]`` draws prompt i's tokens)."""
        samples: list[Sample | None] = [None] * len(prompts)
        for rows in self._batches(prompts, max_tokens):
            batch = list(self._run([prompts[i] for i in rows], sampling, max_tokens, [rngs[i] for i in rows], stops,
                                   stream=False, use_cache=use_cache))[-1]
            for i, sample in zip(rows, batch):
                samples[i] = sample
        return samples

    def _batches(self, prompts: Sequence[Prompt], max_tokens: int) -> list[list[int]]:
        """The prompts' indices in decoding batches of similar lengths, each holding at most
        :data:`BATCH_COLUMNS` cache columns over its rows."""
        from toolkit.batching import length_batches

        return length_batches([len(p.ids) + min(max_tokens, self.model.max_len) for p in prompts], BATCH_COLUMNS)

    def stream(self, prompt: Prompt, sampling: Sampling, max_tokens: int, rng: np.random.Generator,
               stops: Sequence[str] = (), use_cache: bool = False) -> Iterator[str]:
        """The text of one sample, in pieces as it is generated; joined, they are its full text."""
        sent = 0
        for samples in self._run([prompt], sampling, max_tokens, [rng], stops, stream=True, use_cache=use_cache):
            sample = samples[0]
            safe = len(sample.text) if sample.finish else min(_safe_length(sample.text, stops), sample.settled)
            if safe > sent:
                yield sample.text[sent:safe]
                sent = safe

    def _run(self, prompts: Sequence[Prompt], sampling: Sampling, max_tokens: int,
             rngs: Sequence[np.random.Generator], stops: Sequence[str], stream: bool, use_cache: bool
             ) -> Iterator[list[Sample]]:
        from toolkit.nn.sampling import Decoding

        decoding = Decoding(self.model, [p.ids for p in prompts], sampling, max_tokens, rngs,
                            forbidden=self.forbidden,
                            continuous_cache=self.continuous_cache if use_cache else None)
        plain = [PlainText(self.style, p.text) for p in prompts]
        texts = [""] * len(prompts)
        for produced in decoding:
            for row, _ in produced:
                result = decoding.results[row]
                model_text = self._text(prompts[row], result.ids)
                texts[row] = plain[row](model_text)
                cut = _first_stop(texts[row], stops)
                # A stop string glued to a token in the model's style (chat's speaker marker after "I am .")
                # is a token of its own in the plain text's spacing: it is looked for in the model's text too.
                in_model = _first_stop(model_text, stops) if self.style != "plain" else None
                if in_model is not None:
                    before_stop = PlainText(self.style, prompts[row].text)(model_text[:in_model])
                    if cut is None or len(before_stop) < cut:
                        cut = len(before_stop)
                        texts[row] = before_stop
                if cut is not None:
                    texts[row] = texts[row][:cut]
                    decoding.stop(row)
            if stream:
                yield [_sample(texts[row], decoding.results[row], plain[row].settled) for row in range(len(prompts))]
        yield [_sample(texts[row], decoding.results[row], len(texts[row])) for row in range(len(prompts))]


def _sample(text: str, result: Any, settled: int) -> Sample:
    return Sample(text, list(result.ids), list(result.logprobs), result.finish, settled)


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the first stop string found in ``text`` starts, or None."""
    found = [at for at in (text.find(stop) for stop in stops if stop) if at >= 0]
    return min(found) if found else None


def _safe_length(text: str, stops: Sequence[str]) -> int:
    """How much of ``text`` can be streamed: all of it but a tail that could begin a stop string, or a
    character whose bytes are not all generated yet (byte-level pieces decode it as U+FFFD meanwhile)."""
    hold = 1 if text.endswith("\ufffd") else 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), hold, -1):
            if text.endswith(stop[:n]):
                hold = n
                break
    return len(text) - hold
