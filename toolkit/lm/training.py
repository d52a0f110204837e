"""Training a language model on the shared trainer (:mod:`toolkit.nn.trainer`), and its perplexities.

Subwords are learnt from the training texts; the texts become one token
stream, cut each epoch into shuffled blocks of ``context`` tokens from a new
offset. AdamW with a linear warm-up and a linear decay to zero over the
planned steps; validation perplexity each epoch picks the best weights. The
trainer does the rest as for every engine (clipping, patience, the time
limit, Ctrl-C, checkpoints that resume exactly); the vocabulary and the
architecture travel in the checkpoint's setup.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from toolkit.errors import ModelFileError, OptionError
from toolkit.lm.corpus import TextCounts, encode_stream, gather, training_batches, windows
from toolkit.lm.generator import PARAM_PREFIX, Generator
from toolkit.records import check_records
from toolkit.text.corpus_style import detect_style
from toolkit.text.subwords import EOS_ID, PAD_ID, SubwordVocab
from toolkit.training import best_scores, checkpoint_path, history_report, make_trainer, model_header, resumed

if TYPE_CHECKING:
    import numpy as np

    from toolkit.engine import Engine
    from toolkit.nn.checkpoint import Checkpoint
    from toolkit.nn.trainer import History

# Sliding-window scoring: a window of the model's context advances by half of it, so every token is predicted
# from at least half a context (the first window's from less).
STRIDE_FRACTION = 2
EVAL_BATCH = 16
CACHE_CHUNK = 4096
# WikiText-2's valid split holds 217,646 words.
CACHE_CHOICE_WORDS = 250_000


def texts_of(records: Sequence[dict], what: str) -> list[str]:
    """The texts of ``records`` (blank ones allowed: a blank line ends a paragraph); DataError for records
    that are not texts, or none with any text."""
    from toolkit.errors import DataError

    texts = [record["text"] for record in check_records(records, ("text",), what, empty=True)]
    if not any(text.strip() for text in texts):
        raise DataError(f"{what}: every text is empty")
    return texts


def _new_generator(texts: list[str], settings: dict[str, Any], seed: int) -> Generator:
    from toolkit.nn.language_model import DecoderLM

    vocab = SubwordVocab.train((t for t in texts if t.strip()), settings["vocab_size"], settings["subword_model"],
                               symbols=settings["symbols"])
    model = DecoderLM(len(vocab), dim=settings["dim"], heads=settings["heads"], layers=settings["layers"],
                      ffn=settings["ffn"], dropout=settings["dropout"], max_len=settings["context_length"],
                      pad_id=PAD_ID, eos_id=EOS_ID, seed=seed)
    return Generator(model, vocab)


def _saved_generator(saved: Checkpoint, where: str) -> Generator:
    arrays = {**saved.groups.get("setup", {}),
              **{PARAM_PREFIX + name: value for name, value in saved.groups.get("model", {}).items()}}
    try:
        return Generator.from_arrays(saved.setup["architecture"], arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{where}: damaged language-model checkpoint ({error})") from None


def fit_generator(texts: list[str], valid: list[str] | None, settings: dict[str, Any], output: str, seed: int,
                  progress: bool | None) -> tuple[Generator, History, dict[str, Any]]:
    """Train a language model (or go on from the checkpoint with ``resume``); the best epoch on ``valid`` (by
    perplexity) is the one kept. Return the generator, the trainer's History and the figures of this training
    (tokens in the training stream, training tokens per second)."""
    import numpy as np

    from toolkit.nn import AdamW
    from toolkit.nn.language_model import train_step
    from toolkit.nn.optim import warmup_linear

    saved = resumed(settings, output, seed)
    generator = (_saved_generator(saved, checkpoint_path(settings, output)) if saved is not None
                 else _new_generator(texts, settings, seed))
    model, context = generator.model, settings["context_length"]
    stream, counts = encode_stream(generator.vocab, texts, EOS_ID)
    per_epoch = len(training_batches(stream, context, settings["batch_blocks"], np.random.default_rng(0)))
    schedule = warmup_linear(settings["learning_rate"], settings["warmup"], per_epoch * settings["epochs"])
    optimizer = AdamW(model, schedule, beta2=0.95, weight_decay=settings["weight_decay"])
    counted = {"tokens": 0, "validating": 0.0}

    def step(starts: np.ndarray) -> float:
        counted["tokens"] += len(starts) * context
        return train_step(model, gather(stream, starts, context))

    def batches(epoch: int, rng: np.random.Generator) -> list[np.ndarray]:
        # Seeded by the epoch: a resumed run cuts the epoch it stopped in as it was cut before.
        return training_batches(stream, context, settings["batch_blocks"], np.random.default_rng([seed, epoch]))

    def validate() -> dict[str, float]:
        started = time.perf_counter()
        scores = perplexities(generator, valid, stride=context)
        counted["validating"] += time.perf_counter() - started
        return {"ppl": scores["token_perplexity"], "word_ppl": scores["word_perplexity"]}

    trainer = make_trainer(
        model, optimizer, step, batches, settings, output, seed, progress, saved=saved,
        validate=validate if valid is not None else None, monitor="ppl", mode="min", clip_norm=settings["clip"],
        setup={"architecture": model.to_config()}, setup_arrays={"vocab": generator.vocab.to_array()},
        throughput=("tokens", lambda starts: len(starts) * context),
    )
    started = time.perf_counter()
    history = trainer.run()
    training = time.perf_counter() - started - counted["validating"]
    figures = {"training_tokens": counts.tokens,
               "tokens_per_second": round(counted["tokens"] / training) if counted["tokens"] else None}
    return generator, history, figures


def train_language_model(engine_class: type[Engine], texts: list[str], valid: list[str] | None,
                         settings: dict[str, Any], output: str, seed: int, progress: bool | None) -> dict:
    """Train the language model of ``engine_class`` (an engine with :func:`toolkit.lm.options.train_options`)
    on ``texts`` with :func:`fit_generator` and write its model file: the weights as float16, the vocabulary,
    and the model header with the best epoch's validation perplexities as its metrics, and the continuous
    cache chosen on ``valid`` when the settings ask for one. Return the report."""
    import numpy as np

    from toolkit.nn import save_arrays

    if settings["dim"] % settings["heads"]:
        raise OptionError(f"dim {settings['dim']} is not divisible by heads {settings['heads']}: each attention"
                          " head takes dim / heads of the width; choose a --dim that is a multiple of --heads")
    start = time.perf_counter()
    generator, history, figures = fit_generator(texts, valid, settings, output, seed, progress)
    seconds = time.perf_counter() - start
    metadata = model_header(engine_class, output, settings, seed, texts=texts, records=len(texts),
                            valid_records=len(valid) if valid else None, seconds=seconds,
                            **history_report(history), **figures)
    metadata["vocab"] = {"pieces": len(generator.vocab), "model": settings["subword_model"]}
    metadata["text_style"] = detect_style(texts) if settings["text_style"] == "auto" else settings["text_style"]
    metrics = best_scores(history)
    if metrics is not None:
        metadata["metrics"] = metrics
    if valid is not None and settings.get("continuous_cache"):
        from toolkit.progress import ElapsedTicker

        # Minutes on a large validation text, after the progress bar of training has ended.
        with ElapsedTicker("choosing a continuous cache on the validation text", enabled=progress):
            chosen = choose_continuous_cache(generator, valid)
        metadata["continuous_cache"] = chosen.pop("continuous_cache")
        metadata["metrics"].update(chosen)
    save_arrays(output, generator.to_arrays(np.float16), metadata, architecture=generator.model.to_config())
    report = {"engine": f"{engine_class.task}:{engine_class.name}", "model": str(output), "name": metadata["name"],
              "records": len(texts), "text_style": metadata["text_style"], "seconds": round(seconds, 2),
              **history_report(history), **figures}
    if "metrics" in metadata:
        report["metrics"] = metadata["metrics"]
    return report


def scored_stream(generator: Generator, texts: Sequence[str], stride: int | None = None
                  ) -> tuple[TextCounts, int, Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """``texts`` (each ending with the end-of-text token, as in training) as one stream scored by the model in
    windows of its context that advance by ``stride`` (default: half the context), so that each token is
    predicted from at least context - stride tokens: the stream's counts, the stride, and the consecutive
    stretches of the stream in order, each as (final states (k, dim), the next ids they predicted (k,), their
    negative log-likelihoods (k,))."""
    import numpy as np

    from toolkit.nn.language_model import scored_states

    model = generator.model
    context = model.max_len
    stride = stride or max(context // STRIDE_FRACTION, 1)
    stream, counts = encode_stream(generator.vocab, texts, generator.vocab.eos_id)
    spans = list(windows(len(stream), context, stride))

    def stretches() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        # Every window holds context + 1 ids, unless the stream is shorter than that and one window holds it all:
        # a batch's windows stack, and batches keep the stream's order.
        for i in range(0, len(spans), EVAL_BATCH):
            batch = spans[i:i + EVAL_BATCH]
            losses, states = scored_states(model, np.stack([stream[start:end] for start, end, _ in batch]))
            for row, (start, end, first) in enumerate(batch):
                yield states[row, first:], stream[start + first + 1:end], losses[row, first:]

    return counts, stride, stretches()


def _rates(nll: float, counts: TextCounts) -> dict[str, float]:
    return {"nll": round(nll, 3), "token_perplexity": round(math.exp(nll / counts.tokens), 3),
            "word_perplexity": round(math.exp(nll / counts.words), 3),
            "bits_per_byte": round(nll / math.log(2) / counts.bytes, 4)}


def perplexities(generator: Generator, texts: Sequence[str], stride: int | None = None) -> dict[str, Any]:
    """The model's negative log-likelihood of ``texts`` (scored as :func:`scored_stream` says) as perplexity
    per token, per word (whitespace words plus one per text for its end) and bits per byte (UTF-8 bytes plus
    one per text for its newline). With a continuous cache, the probabilities are the mixed ones, and
    ``without_cache`` holds the model's own."""
    import numpy as np

    cache = generator.continuous_cache
    counts, stride, stretches = scored_stream(generator, texts, stride)
    total = mixed = 0.0
    # The last cache.size states and the ids that followed them; the stretches the cache has yet to score.
    recent_states, recent_ids = np.zeros((0, generator.model.dim), np.float32), np.zeros(0, np.int64)
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def cache_nll() -> float:
        nonlocal recent_states, recent_ids
        states, next_ids, nll = (np.concatenate(parts) for parts in zip(*pending))
        pending.clear()
        kept = len(recent_ids)
        recent_states, recent_ids = np.concatenate([recent_states, states]), np.concatenate([recent_ids, next_ids])
        p_cache = cache.probabilities(recent_states, recent_ids, start=kept)
        recent_states, recent_ids = recent_states[-cache.size:], recent_ids[-cache.size:]
        return -float(np.log(cache.mix(np.exp(-nll), p_cache)).sum())

    for stretch in stretches:
        total += float(stretch[2].sum())
        if cache is not None:
            # A stretch is a stride long: the cache scores a few thousand positions at a time, so that the
            # remembered states are copied once per chunk, not once per stretch (which doubled the time).
            pending.append(stretch)
            if sum(len(ids) for _, ids, _ in pending) >= CACHE_CHUNK:
                mixed += cache_nll()
    if pending:
        mixed += cache_nll()
    scores = {"tokens": counts.tokens, "words": counts.words, "bytes": counts.bytes}
    if cache is None:
        return {**scores, **_rates(total, counts), "stride": stride}
    return {**scores, **_rates(mixed, counts), "stride": stride, "continuous_cache": cache.to_dict(),
            "without_cache": _rates(total, counts)}


def choose_continuous_cache(generator: Generator, texts: Sequence[str]) -> dict[str, Any]:
    """Choose the generator's continuous cache on validation ``texts`` (:func:`toolkit.nn.continuous_cache.
    choose_cache`; none when no cache lowers their word perplexity) and set it; return what it scored. Only
    the texts within the first :data:`CACHE_CHOICE_WORDS` words are read: the search holds every state they
    give in memory (a KB a token at width 256) and passes over them some hundred times."""
    import numpy as np

    from toolkit.nn.continuous_cache import choose_cache

    words = np.cumsum([len(text.split()) + 1 for text in texts])
    kept = texts[:max(int(np.searchsorted(words, CACHE_CHOICE_WORDS, side="right")), 1)]
    counts, _, stretches = scored_stream(generator, kept)
    states, next_ids, nll = (np.concatenate(parts) for parts in zip(*stretches))
    generator.continuous_cache, perplexity = choose_cache(states, next_ids, nll, counts.words)
    return {"continuous_cache": None if generator.continuous_cache is None else generator.continuous_cache.to_dict(),
            "word_ppl_with_cache": round(perplexity, 3),
            "word_ppl_without_cache": round(math.exp(float(nll.sum()) / counts.words), 3)}
