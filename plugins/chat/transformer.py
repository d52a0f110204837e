"""The "transformer" dialogue engine: a GPT-2-layout language model trained on dialogues (``toolkit.lm``),
whose reply is its continuation of the conversation.

A conversation is read as one text, each turn after the marker of its
speaker: :data:`SPEAKERS` ``[0]`` for the turns at even places from the start
(the one who opens the conversation, the user in a chat), ``[1]`` for the
others. The reply is what the model writes after the next speaker's marker,
up to a marker (the other speaker's turn) or the end of text. The markers are
tokens of the model's vocabulary, and are removed from the turns it is given,
so that no turn can speak for the other side. The context is the last turns
that fit in the model's positions beside ``max_tokens``; a last turn longer
than that is cut from its left, and the result says so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from toolkit.engine import LoadsModel, Option, train_settings
from toolkit.errors import ModelMismatchError
from toolkit.lm.options import SAMPLING_OPTIONS, sample_rng, sampling, train_options

from toolkit_plugins.chat.contract import DOCS_OPTIONS, DialogueEngine, Reply, dialogues_of, user_turns

MODEL_DIR = Path(__file__).resolve().parent / "models"
SPEAKERS = ("<|speaker1|>", "<|speaker2|>")
EVAL_BATCH = 32  # conversations decoded together when replies are written for an evaluation


def _unmarked(turn: str) -> str:
    for marker in SPEAKERS:
        turn = turn.replace(marker, " ")
    return " ".join(turn.split())


def marked_turns(turns: Sequence[str]) -> list[str]:
    """Each turn after its speaker's marker, by its place in the conversation."""
    return [f"{SPEAKERS[i % 2]} {_unmarked(turn)}" for i, turn in enumerate(turns)]


def dialogue_text(turns: Sequence[str]) -> str:
    """A whole dialogue as the model is trained on it. The turns are joined without a space: the markers are
    pieces of their own, and a space before one would be a token of its own at every turn."""
    return "".join(marked_turns(turns))


def _trimmed(pieces: Iterator[str]) -> Iterator[str]:
    """``pieces`` without the white space at the start and the end of their text: a trailing space is held
    back until text follows it."""
    started, held = False, ""
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            started = bool(piece)
        text = held + piece
        kept = text.rstrip()
        held = text[len(kept):]
        if kept:
            yield kept


class TransformerChat(LoadsModel, DialogueEngine):
    """Replies written by a decoder-only transformer trained on dialogues."""

    name = "transformer"
    description = "Replies written by a GPT-style language model trained on dialogues (sampling, streaming)."
    version = "1.0"
    options: ClassVar[dict[str, Option]] = {
        **SAMPLING_OPTIONS,
        "max_tokens": Option(int, 48, "Tokens of the reply at most.", minimum=1, maximum=1024),
        **DOCS_OPTIONS,
    }
    record_fields: ClassVar[tuple[str, ...]] = ("turns",)
    train_options: ClassVar[dict[str, Option]] = train_options(epochs=10, patience=2)
    default_model = str(MODEL_DIR / "dailydialog.nlpt")
    default_model_hint = ("train it with `python scripts/train_default_chat.py`, or train one on your dialogues with"
                          " `nlp-tool train chat dialogues.jsonl` and pass --model FILE")
    takes_model = True

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if self.model is not None and Path(self.model).is_file():
            self.model_metadata()  # refuses a model of another task now, not at the first turn

    def _load(self) -> tuple[Any, dict]:
        from toolkit.lm.generator import Generator

        self.model_metadata()
        generator, metadata = Generator.from_model_file(self.model)
        for marker, ids in zip(SPEAKERS, generator.vocab.encode(list(SPEAKERS))):
            if marker not in generator.vocab.pieces(ids):
                raise ModelMismatchError(f"{self.model}: its vocabulary has no token for the speaker marker"
                                         f" {marker}: not a model trained on dialogues")
        return generator, metadata

    def loaded_metadata(self) -> dict:
        return self._loaded()[1]

    def _prompt(self, turns: list[str], max_tokens: int | None = None) -> tuple[Any, int]:
        """The prompt of the reply to ``turns`` (of ``max_tokens`` at most: default, the option's), from the
        last turns that fit, and how many turns it holds."""
        generator = self._loaded()[0]
        max_tokens = max_tokens or self.settings["max_tokens"]
        context = generator.model.max_len
        # Each turn in the style of the model's dialogues, before the markers are put between them.
        marked = marked_turns([generator.model_text(turn) for turn in turns])
        room = context - 2 - min(max_tokens, context // 2)  # the end-of-text id and the reply's marker
        lengths = [len(ids) for ids in generator.vocab.encode(marked)]
        kept, used = 1, lengths[-1]
        while kept < len(turns) and used + lengths[-kept - 1] <= room:
            used += lengths[-kept - 1]
            kept += 1
        text = "".join([*marked[-kept:], SPEAKERS[len(turns) % 2]])
        return generator.prompts([text], max_tokens)[0], kept

    def reply(self, turns: list[str]) -> Reply:
        generator = self._loaded()[0]
        prompt, kept = self._prompt(turns)
        s = self.settings
        pieces = generator.stream(prompt, sampling(s), s["max_tokens"], sample_rng(s, 0), SPEAKERS)
        return Reply("model", _trimmed(pieces), self._details(prompt, kept))

    def run(self, inputs: list) -> list[dict]:
        """The replies of a batch of conversations: the documents' answers, and the others decoded together."""
        generator = self._loaded()[0]
        s = self.settings
        conversations = [user_turns(item) for item in inputs]
        results: list[dict] = [{} for _ in conversations]
        written = []
        for i, turns in enumerate(conversations):
            quoted, results[i] = self.from_docs(turns)
            if quoted is None:
                written.append(i)
            else:
                results[i] = {"text": "".join(quoted.pieces), "route": quoted.route, **quoted.details}
        prompts = [self._prompt(conversations[i]) for i in written]
        samples = generator.generate([prompt for prompt, _ in prompts], sampling(s), s["max_tokens"],
                                     [sample_rng(s, 0) for _ in prompts], SPEAKERS) if written else []
        for i, sample, (prompt, kept) in zip(written, samples, prompts):
            results[i] = {"text": sample.text.strip(), "route": "model", "finish": sample.finish,
                          "tokens": len(sample.ids), **self._details(prompt, kept), **results[i]}
        return results

    @staticmethod
    def _details(prompt: Any, kept: int) -> dict:
        details = {"context_turns": kept}
        if prompt.cut:
            details["context_cut"] = prompt.cut  # tokens dropped from the left of the last turn
        return details

    # -- training -----------------------------------------------------------------

    @classmethod
    def train(cls, records: list[dict], output: str, *, valid: list[dict] | None = None, seed: int = 0,
              progress: bool | None = None, **options: Any) -> dict:
        """Learn subwords (the speaker markers among them) and a language model from the dialogues of
        ``records`` (``{"turns": [...]}``), or go on from the checkpoint with ``resume=True``; write one model
        file. ``valid`` picks the best epoch by its perplexity."""
        from toolkit.lm.training import train_language_model

        settings = train_settings(cls, options)
        settings["symbols"] = tuple(dict.fromkeys([*SPEAKERS, *settings["symbols"]]))
        texts = [dialogue_text(turns) for turns in dialogues_of(records, "training data")]
        held = [dialogue_text(turns) for turns in dialogues_of(valid, "validation data")] if valid else None
        return train_language_model(cls, texts, held, settings, output, seed, progress)

    # -- evaluation ---------------------------------------------------------------

    def _response_loss(self, history: list[str], response: str, last: bool) -> tuple[float, int]:
        """The model's negative log-likelihood (nats) of ``response`` after ``history``, with the token that
        closes it in training (the other speaker's marker, or the end of text after a dialogue's ``last``
        turn), and the number of tokens scored."""
        import numpy as np

        from toolkit.nn.language_model import token_losses

        generator = self._loaded()[0]
        vocab, context = generator.vocab, generator.model.max_len
        [ids] = vocab.encode([_unmarked(response)])
        close = vocab.eos_id if last else vocab.encode([SPEAKERS[(len(history) + 1) % 2]])[0][-1]
        scored = [*ids[:context // 2], close]
        prompt, _ = self._prompt(history, len(scored))
        row = np.array([[*prompt.ids, *scored][-(context + 1):]])
        return float(token_losses(generator.model, row)[0, -len(scored):].sum()), len(scored)

    def evaluate(self, records: list[dict]) -> dict:
        """Every response turn of the dialogues of ``records`` (each turn after the first), given the turns
        before it: the model's perplexity on it (its tokens and the marker or end of text that closes it), per
        token and per word (whitespace words plus one for the close); and the replies the engine writes in its
        place, with its sampling options: BLEU-1 and BLEU-2 against the true turns (sacreBLEU, corpus level)
        and distinct-1/2 (distinct word n-grams over all n-grams of the replies)."""
        import math

        from sacrebleu.metrics import BLEU
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

        from toolkit.text.corpus_style import from_style

        dialogues = dialogues_of(records, "evaluation data")
        pairs = [(turns[:i], turns[i], i + 1 == len(turns)) for turns in dialogues for i in range(1, len(turns))]
        start = time.perf_counter()
        nll, tokens, words = 0.0, 0, 0
        for history, response, last in pairs:
            loss, count = self._response_loss(history, response, last)
            nll, tokens, words = nll + loss, tokens + count, words + len(response.split()) + 1
        replies = [result["text"] for i in range(0, len(pairs), EVAL_BATCH)
                   for result in self.run([{"turns": history} for history, _, _ in pairs[i:i + EVAL_BATCH]])]
        seconds = time.perf_counter() - start
        # Replies and references are compared as plain text, the references written back from the style of the
        # model's dialogues (DailyDialog's "I ’ m fine , Jim ." is "I’m fine, Jim."), as sacreBLEU expects
        # them; its 13a tokenization splits both alike, and gives distinct-n its words.
        style = self._loaded()[0].style
        references = [[from_style(response, style) for _, response, _ in pairs]]
        bleu = {n: BLEU(max_ngram_order=n, effective_order=True).corpus_score(replies, references).score
                for n in (1, 2)}
        reply_words = [Tokenizer13a()(reply).split() for reply in replies]
        return {"engine": f"{self.task}:{self.name}", "model": self.model, "records": len(dialogues),
                "responses": len(pairs), "tokens": tokens, "words": words,
                "token_perplexity": round(math.exp(nll / tokens), 3),
                "word_perplexity": round(math.exp(nll / words), 3),
                "bleu1": round(bleu[1], 2), "bleu2": round(bleu[2], 2),
                "distinct1": distinct(reply_words, 1), "distinct2": distinct(reply_words, 2), "seconds": round(seconds, 1)}


def distinct(texts: Sequence[Sequence[str]], n: int) -> float:
    """Distinct-n: the distinct word n-grams of ``texts`` (each a list of words) over all their n-grams (0 when
    there are none)."""
    grams = [tuple(words[i:i + n]) for words in texts for i in range(len(words) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0
