"""Training the span reader: vocabulary, answer positions, batches, checkpoints that survive interruption.

Each question becomes one (question, passage, first, last) instance: the
passage is the first window of the context that holds the whole answer
(answers an offset cannot place are left out, and counted). Batches group
passages of similar length. The checkpoint file (model, Adam moments, step,
epoch and position in it) is rewritten atomically every few minutes, at the
end of each epoch and on Ctrl-C; ``resume`` continues from it exactly where
it stopped (an epoch cut while being scored is scored first). A run that
completes all its epochs removes it. After each epoch the model is scored on
the validation questions through the full engine (passages, decoding), from a
temporary ``OUTPUT.candidate`` file that is removed however scoring ends, and
the best one is the output model.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

from toolkit_plugins.qa.passages import Token, split_passages, tokenize
from toolkit_plugins.qa.squad import Example
from toolkit.errors import DataError, ModelMismatchError, ModelNotFoundError, OptionError
from toolkit.progress import ProgressBar

CHAR_BUCKETS = 1 << 15
WARMUP_STEPS = 1000
CLIP_NORM = 5.0
CHECKPOINT_KIND = "qa-reader-checkpoint"


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


def train_reader(engine_class: type, examples: list[Example], valid: list[Example] | None, output: str,
                 settings: dict[str, Any], seed: int, progress: bool | None) -> dict:
    """Train, keep the best model at ``output``, return the training report."""
    from toolkit_plugins.qa.reader import Featurizer, SpanReader
    from toolkit.nn import (
        Adam,
        clip_grad_norm,
        read_model_file,
        save_arrays,
        save_model,
        softmax_cross_entropy,
    )

    window, overlap = engine_class.window, engine_class.overlap
    checkpoint = settings["checkpoint"] or f"{output}.ckpt"
    state: dict[str, Any] = {"epoch": 0, "batch": 0, "steps": 0, "best": None, "seconds": 0.0}
    resumed = None
    if settings["resume"]:
        if not Path(checkpoint).is_file():
            raise ModelNotFoundError(f"no checkpoint {checkpoint} to resume from (train without resume first)")
        config, arrays = read_model_file(checkpoint)
        resumed = config["metadata"]
        if resumed.get("kind") != CHECKPOINT_KIND:
            raise ModelMismatchError(f"{checkpoint} is not a reader training checkpoint")
        vocab = resumed["vocab"]
        state.update(resumed["state"])
    else:
        vocab = build_vocab(examples, settings["vocab_size"])
    if settings["encoder"] == "gru" and settings["dim"] % 2:
        raise OptionError(f"the gru encoder needs an even dim (two directions of dim / 2), not {settings['dim']}")
    model = SpanReader(len(vocab), CHAR_BUCKETS, dim=settings["dim"], max_len=window, dropout=settings["dropout"],
                       encoder=settings["encoder"], seed=seed)
    if resumed is not None and resumed["model_config"] != model.get_config():
        raise ModelMismatchError(f"{checkpoint} was made with other settings ({resumed['model_config']}); use the same options")
    if resumed is not None and settings["word_vectors"] != resumed["settings"].get("word_vectors", False):
        # The vectors only set the starting point: switching them when resuming would change nothing
        # but the options stamped into the model, which would then misstate how it was made.
        raise ModelMismatchError(f"{checkpoint} was started with{'' if resumed['settings'].get('word_vectors') else 'out'}"
                        " word_vectors; resume with the same setting")
    if settings["word_vectors"] and resumed is None:
        # Only a fresh start: a resumed run's word vectors are in its checkpoint, already fine-tuned.
        state["word_vectors"] = init_word_vectors(model, vocab, examples, settings["vector_texts"], seed)
    elif settings["vector_texts"] and not settings["word_vectors"]:
        raise OptionError("vector_texts is only read for word_vectors: switch word_vectors on, or leave vector_texts out")
    peak = settings["learning_rate"]
    total = settings["epochs"] * math.ceil(len(examples) / settings["batch"])

    def schedule(step: int) -> float:
        # Linear warm-up, then a linear decay to a tenth of the peak at the last planned step.
        return peak * min((step + 1) / WARMUP_STEPS, 1.0 - 0.9 * min(step / total, 1.0))

    optimizer = Adam(model, schedule)
    if resumed is not None:
        for name, param, _ in model.named_parameters():
            param[...] = arrays[f"model/{name}"]
            optimizer.state[name] = {"m": arrays[f"m/{name}"].copy(), "v": arrays[f"v/{name}"].copy()}
        optimizer.steps = state["steps"]
    # The moving average starts from the weights at hand: the initial ones, or a checkpoint's (its own
    # average when it kept one), so that it can also be switched on when a run is resumed.
    decay = settings["ema"]
    average = {name: (arrays[f"ema/{name}"] if resumed is not None and f"ema/{name}" in arrays else param).copy()
               for name, param, _ in model.named_parameters()} if decay else None

    featurizer = Featurizer(vocab, CHAR_BUCKETS)
    instances, dropped = make_instances(examples, window, overlap, model.config["max_question"])
    if not instances:
        raise DataError("training data: no answer could be placed in its context")
    valid = valid[: settings["valid_limit"]] if valid and settings["valid_limit"] else valid

    def save_checkpoint() -> None:
        arrays = {}
        for name, param, _ in model.named_parameters():
            slots = optimizer.state.get(name, {})
            arrays[f"model/{name}"] = param
            arrays[f"m/{name}"] = slots.get("m", np.zeros_like(param))
            arrays[f"v/{name}"] = slots.get("v", np.zeros_like(param))
            if average is not None:
                arrays[f"ema/{name}"] = average[name]
        state["steps"] = optimizer.steps
        save_arrays(checkpoint, arrays, {"kind": CHECKPOINT_KIND, "vocab": vocab, "model_config": model.get_config(),
                                         "state": state, "settings": settings})

    def metadata() -> dict:
        return {"task": "qa", "engine": engine_class.name, "engine_version": engine_class.version,
                "name": settings["name"] or Path(output).stem, "version": datetime.date.today().isoformat(),
                "vocab": vocab, "window": window, "overlap": overlap,
                "training": {"records": len(examples), "instances": len(instances), "left_out": dropped,
                             "seed": seed, "options": settings, "epochs_done": state["epoch"],
                             "steps": optimizer.steps, "seconds": round(state["seconds"], 1),
                             "word_vectors": state.get("word_vectors"),
                             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}}

    def score_epoch(loss: float | None) -> None:
        # Marked until the epoch's score is settled: an interrupt while scoring saves a checkpoint that says so,
        # and a resumed run scores that epoch first instead of never considering it for the output.
        state["unscored"], state["loss"] = True, loss
        metrics = None
        if valid:
            # The engine scores a model file: the epoch's weights go to a temporary one beside the output,
            # removed however scoring ends (Ctrl-C and SIGTERM included).
            candidate = f"{output}.candidate"
            try:
                with averaged_weights(model, average):
                    save_model(candidate, model, metadata())
                metrics = engine_class(model=candidate).evaluate([_record(e) for e in valid])
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(candidate)
            metrics["model"] = str(output)
        if progress is not False:
            # One line per epoch, also in logs where the progress bar stays silent.
            scores = f", valid EM {metrics['exact_match']}, F1 {metrics['f1']}" if metrics else ""
            print(f"epoch {state['epoch']} (+{state['batch']} batches): step {optimizer.steps},"
                  f" {state['seconds'] / 60:.1f} min, loss {loss if loss is None else round(loss, 3)}{scores}",
                  file=sys.stderr, flush=True)
        if valid is None or state["best"] is None or metrics["f1"] > state["best"]["f1"]:
            state["best"] = metrics
            with averaged_weights(model, average):
                save_model(output, model, {**metadata(), "metrics": metrics})
        state["unscored"] = False

    session = time.perf_counter()
    started = session - state["seconds"]
    last_checkpoint = session
    limit = settings["max_minutes"] * 60.0
    stopped = "epochs"
    try:
        if state.get("unscored"):
            # The interrupted run stopped while scoring its last epoch.
            score_epoch(state["loss"])
            save_checkpoint()
            last_checkpoint = time.perf_counter()
        while state["epoch"] < settings["epochs"]:
            batches = epoch_batches(instances, settings["batch"], seed, state["epoch"])
            bar = ProgressBar(len(batches), desc=f"epoch {state['epoch'] + 1}", unit="batch", enabled=progress)
            bar.update(state["batch"])
            running = None
            while state["batch"] < len(batches):
                chosen = [instances[k] for k in batches[state["batch"]]]
                batch = featurizer.batch([(x.question, x.passage) for x in chosen])
                (s, e), backprop = model.forward(batch, train=True)
                loss_s, ds = softmax_cross_entropy(s, np.array([x.first for x in chosen]))
                loss_e, de = softmax_cross_entropy(e, np.array([x.last for x in chosen]))
                backprop((ds, de))
                clip_grad_norm(model, CLIP_NORM)
                optimizer.step()
                if average is not None:
                    for name, param, _ in model.named_parameters():
                        average[name] *= decay
                        average[name] += (1.0 - decay) * param
                loss = loss_s + loss_e
                running = loss if running is None else 0.98 * running + 0.02 * loss
                state["batch"] += 1
                state["seconds"] = time.perf_counter() - started
                bar.update(1, loss=running)
                if not math.isfinite(loss):
                    raise RuntimeError(f"the training loss is {loss} at step {optimizer.steps}; lower the learning rate")
                if time.perf_counter() - last_checkpoint > settings["checkpoint_minutes"] * 60.0:
                    save_checkpoint()
                    last_checkpoint = time.perf_counter()
                if limit and time.perf_counter() - session > limit:
                    break
            bar.close()
            if state["batch"] >= len(batches):
                state["epoch"] += 1
                state["batch"] = 0
            score_epoch(running)
            save_checkpoint()
            last_checkpoint = time.perf_counter()
            if limit and time.perf_counter() - session > limit:
                stopped = "max_minutes"
                break
    except KeyboardInterrupt:
        save_checkpoint()
        raise
    if stopped == "epochs" and os.path.exists(checkpoint):
        # Training is complete: the output is the result, the checkpoint only served to resume.
        os.unlink(checkpoint)
        checkpoint = None
    return {"engine": f"qa:{engine_class.name}", "model": str(output), "records": len(examples),
            "instances": len(instances), "left_out": dropped, "epochs_done": state["epoch"],
            "steps": optimizer.steps, "seconds": round(state["seconds"], 1), "stopped": stopped,
            "checkpoint": checkpoint, "metrics": state["best"]}


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


@contextlib.contextmanager
def averaged_weights(model: Any, average: dict[str, np.ndarray] | None) -> Iterator[None]:
    """Within the block the model holds the moving average of its weights (when there is one)."""
    if average is None:
        yield
        return
    current = {name: param.copy() for name, param, _ in model.named_parameters()}
    try:
        for name, param, _ in model.named_parameters():
            param[...] = average[name]
        yield
    finally:
        for name, param, _ in model.named_parameters():
            param[...] = current[name]


def _record(e: Example) -> dict:
    return {"question": e.question, "context": e.context, "answers": [{"text": a.text, "answer_start": a.start}
                                                                      for a in e.answers]}
