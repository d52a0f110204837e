"""Training the span reader: vocabulary, answer positions, batches, and its step and validation for the shared trainer.

Each question becomes one (question, passage, first, last) instance: the
passage is the first window of the context that holds the whole answer
(answers an offset cannot place are left out, and counted). Batches group
passages of similar length. :class:`toolkit.nn.Trainer` runs the loop
(clipping, EMA, checkpoints, resume, time limit, Ctrl-C); after each epoch
the model is scored on the validation questions through the full engine
(passages, decoding), from a temporary ``OUTPUT.candidate`` file that is
removed however scoring ends, and the best epoch's weights are the output
model, written once when training ends.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from toolkit_plugins.qa.passages import Token, split_passages, tokenize
from toolkit_plugins.qa.squad import Example
from toolkit.errors import DataError, OptionError

if TYPE_CHECKING:
    from toolkit_plugins.qa.neural import ReaderEngine

CHAR_BUCKETS = 1 << 15
WARMUP_STEPS = 1000
CLIP_NORM = 5.0


class Instance(NamedTuple):
    question: list[Token]
    passage: list[Token]
    first: int
    last: int


def answer_tokens(tokens: list[Token], start: int, end: int) -> tuple[int, int] | None:
    """The first and last token that overlap the characters [start, end), or None."""
    inside = [i for i, t in enumerate(tokens) if t.end > start and t.start < end]
    return (inside[0], inside[-1]) if inside else None


def build_vocab(examples: list[Example], size: int) -> list[str]:
    """Padding, unknown, then the ``size - 2`` most frequent lower-cased words seen at least twice."""
    counts: Counter[str] = Counter()
    for context in dict.fromkeys(e.context for e in examples):
        counts.update(t.text.lower() for t in tokenize(context))
    for e in examples:
        counts.update(t.text.lower() for t in tokenize(e.question))
    common = [w for w, c in counts.most_common(max(size - 2, 0)) if c >= 2]
    return ["<pad>", "<unk>", *common]


def make_instances(examples: list[Example], window: int, overlap: int, max_question: int) -> tuple[list[Instance], int]:
    """Training instances and the number of questions left out (answer not placeable in one window)."""
    instances, dropped, cache = [], 0, {}
    for e in examples:
        if e.context not in cache:
            tokens = tokenize(e.context)
            cache = {e.context: (tokens, split_passages(tokens, window, overlap))}
        tokens, passages = cache[e.context]
        answer = e.answers[0]
        span = answer_tokens(tokens, answer.start, answer.start + len(answer.text)) if answer.start >= 0 else None
        question = tokenize(e.question)[:max_question]
        fitting = [p for p in passages if span and p.first <= span[0] and span[1] < p.last]
        if not fitting or not question:
            dropped += 1
            continue
        p = fitting[0]
        instances.append(Instance(question, tokens[p.first : p.last], span[0] - p.first, span[1] - p.first))
    return instances, dropped


def epoch_batches(instances: list[Instance], batch: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch: a seeded shuffle, then similar lengths together to waste little padding."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(instances))
    pool = batch * 50
    batches = []
    for i in range(0, len(order), pool):
        part = sorted(order[i : i + pool], key=lambda k: len(instances[k].passage))
        batches += [np.array(part[j : j + batch]) for j in range(0, len(part), batch)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train_reader(engine_class: type[ReaderEngine], examples: list[Example], valid: list[Example] | None, output: str,
                 settings: dict[str, Any], seed: int, progress: bool | None) -> dict[str, Any]:
    """Train through the shared Trainer, write the model (the best validated weights) to ``output``; the report."""
    from toolkit_plugins.qa.reader import Featurizer, SpanReader
    from toolkit.nn import Adam, save_model, softmax_cross_entropy
    from toolkit.training import best_scores, history_report, make_trainer, model_header, resumed

    if settings["encoder"] == "gru" and settings["dim"] % 2:
        raise OptionError(f"the gru encoder needs an even dim (two directions of dim / 2), not {settings['dim']}")
    if settings["vector_texts"] and not settings["word_vectors"]:
        raise OptionError("vector_texts is only read for word_vectors: switch word_vectors on, or leave vector_texts out")
    # How many validation questions are scored changes nothing that is learnt: a resumed run may score others.
    saved = resumed(settings, output, seed, may_change=("valid_limit",))
    window, overlap = engine_class.window, engine_class.overlap
    vocab = saved.setup["vocab"] if saved else build_vocab(examples, settings["vocab_size"])
    model = SpanReader(len(vocab), CHAR_BUCKETS, dim=settings["dim"], max_len=window, dropout=settings["dropout"],
                       encoder=settings["encoder"], seed=seed)
    if saved:
        # The vectors only set the starting point: a resumed run's are in its checkpoint, already fine-tuned.
        word_vectors = saved.setup["word_vectors"]
    else:
        word_vectors = init_word_vectors(model, vocab, examples, settings["vector_texts"], seed) \
            if settings["word_vectors"] else None
    featurizer = Featurizer(vocab, CHAR_BUCKETS)
    instances, dropped = make_instances(examples, window, overlap, model.config["max_question"])
    if not instances:
        raise DataError("training data: no answer could be placed in its context")
    valid = valid[: settings["valid_limit"]] if valid and settings["valid_limit"] else valid
    peak = settings["learning_rate"]
    total = settings["epochs"] * math.ceil(len(examples) / settings["batch"])

    def schedule(step: int) -> float:
        # Linear warm-up, then a linear decay to a tenth of the peak at the last planned step.
        return peak * min((step + 1) / WARMUP_STEPS, 1.0 - 0.9 * min(step / total, 1.0))

    optimizer = Adam(model, schedule)

    def step(rows: np.ndarray) -> float:
        chosen = [instances[k] for k in rows]
        (s, e), backprop = model.forward(featurizer.batch([(x.question, x.passage) for x in chosen]), train=True)
        loss_s, ds = softmax_cross_entropy(s, np.array([x.first for x in chosen]))
        loss_e, de = softmax_cross_entropy(e, np.array([x.last for x in chosen]))
        backprop((ds, de))
        return loss_s + loss_e

    def batches(epoch: int, rng: np.random.Generator) -> list[np.ndarray]:
        # Seeded by the epoch (from 0, as before the shared trainer) rather than drawn from ``rng``:
        # the shipped model's recipe keeps training on the same batches.
        return epoch_batches(instances, settings["batch"], seed, epoch - 1)

    def metadata(**training: Any) -> dict[str, Any]:
        header = model_header(engine_class, output, settings, seed, texts=[e.context for e in examples],
                              records=len(examples),
                              valid_records=len(valid) if valid else None, instances=len(instances),
                              left_out=dropped, word_vectors=word_vectors, **training)
        return {**header, "vocab": vocab, "window": window, "overlap": overlap}

    def validate() -> dict[str, float]:
        # The engine scores a model file (passages, decoding): the weights go to a temporary one beside the
        # output, removed however scoring ends (Ctrl-C and SIGTERM included).
        candidate = f"{output}.candidate"
        try:
            save_model(candidate, model, metadata(seconds=trainer.state["seconds"]))
            scores = engine_class(model=candidate).evaluate([_record(e) for e in valid])
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(candidate)
        return {"f1": scores["f1"], "exact_match": scores["exact_match"]}

    trainer = make_trainer(model, optimizer, step, batches, settings, output, seed, progress, saved=saved,
                           validate=validate if valid else None, monitor="f1", clip_norm=CLIP_NORM,
                           setup={"vocab": vocab, "word_vectors": word_vectors})
    history = trainer.run()
    report = history_report(history)
    metrics = best_scores(history)
    save_model(output, model, {**metadata(seconds=history.seconds, **report), "metrics": metrics})
    return {"engine": f"qa:{engine_class.name}", "model": str(output), "records": len(examples),
            "instances": len(instances), "left_out": dropped, **report, "metrics": metrics}


def vector_text_paths(spec: str) -> list[str]:
    """The comma-separated file names of the ``vector_texts`` option (empty names, as in "a,,b", are an error)."""
    if not spec.strip():
        return []
    paths = [part.strip() for part in spec.split(",")]
    if not all(paths):
        raise OptionError(f"vector_texts {spec!r}: an empty file name between commas")
    return paths


def init_word_vectors(model: Any, vocab: list[str], examples: list[Example], vector_texts: str, seed: int) -> dict:
    """Set the reader's word Embedding to PPMI + SVD vectors of the training text (toolkit_plugins.qa.wordvectors).

    The text is the training contexts (each once) and questions, plus the
    documents of the ``vector_texts`` files. Known words get their vector,
    rescaled to the length of an average row of the random initialisation;
    padding, unknown and words seen with no other vocabulary word keep their
    random rows. The vectors are fine-tuned like any weight afterwards.
    Returns the report stamped into the model's training metadata.
    """
    from toolkit_plugins.qa.reader import UNKNOWN
    from toolkit_plugins.qa.wordvectors import read_texts, train_vectors
    from toolkit.text.vectors import scale_like

    texts = [*dict.fromkeys(e.context for e in examples), *(e.question for e in examples)]
    sources = {"training contexts and questions": len(texts)}
    for path in vector_text_paths(vector_texts):
        more = read_texts(path)
        sources[path] = len(more)
        texts += more
    table = model.words.params["table"]
    # Ids up to UNKNOWN are the padding and unknown markers, not words of any text.
    vectors, known, report = train_vectors(texts, vocab, table.shape[1], skip=UNKNOWN + 1, seed=seed)
    table[...] = scale_like(vectors, known, table)
    return {**report, "documents": sources}


def _record(e: Example) -> dict:
    return {"question": e.question, "context": e.context, "answers": [{"text": a.text, "answer_start": a.start}
                                                                      for a in e.answers]}
