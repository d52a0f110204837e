"""Training a translator: subword vocabularies, length-bucketed batches, label-smoothed loss, Adam with
warm-up, gradient clipping, validation BLEU each epoch, checkpoints that resume, and a time limit.

The checkpoint is one model-format file (arrays + JSON, no pickle) holding
the vocabularies, the current and the best weights and Adam's moments, so a
run stopped by ``max_minutes`` or Ctrl-C continues where it was.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from toolkit_plugins.translation.batches import Batch, epoch_batches, token_batches
from toolkit_plugins.translation.subwords import BOS_ID, EOS_ID, PAD_ID, SubwordVocab
from toolkit_plugins.translation.translator import Translator, score_corpus
from toolkit.errors import DataError, ModelFileError, ModelMismatchError

if TYPE_CHECKING:
    import numpy as np

    from toolkit.nn import Adam, Seq2SeqTransformer

CHECKPOINT_KIND = "translate-checkpoint"


def train_step(model: Seq2SeqTransformer, batch: Batch, label_smoothing: float) -> float:
    """Forward and backward on one batch (gradients accumulate in the model); return the mean token loss.

    Logits are computed only at positions that carry a loss, so padding
    costs nothing in the largest matrix product, the output projection.
    """
    import numpy as np

    from toolkit.nn import softmax_cross_entropy

    h, back_hidden = model.hidden(batch.src, batch.tgt_in, train=True)
    rows = batch.tgt_out != PAD_ID
    logits, back_project = model.project_rows(h[rows])
    loss, dlogits = softmax_cross_entropy(logits, batch.tgt_out[rows], label_smoothing, dtype=np.float32)
    dh = np.zeros_like(h)
    dh[rows] = back_project(dlogits)
    back_hidden(dh)
    return loss


def _new_model(settings: dict, src_vocab: SubwordVocab, tgt_vocab: SubwordVocab, seed: int) -> Seq2SeqTransformer:
    from toolkit.nn import Seq2SeqTransformer

    return Seq2SeqTransformer(
        len(src_vocab), len(tgt_vocab), dim=settings["dim"], heads=settings["heads"],
        encoder_layers=settings["encoder_layers"], decoder_layers=settings["decoder_layers"], ffn=settings["ffn"],
        dropout=settings["dropout"], max_len=settings["max_len"], shared_vocab=src_vocab is tgt_vocab,
        pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, seed=seed,
    )


def _optimizer(model: Seq2SeqTransformer, settings: dict) -> Adam:
    from toolkit.nn import Adam, warmup_inverse_sqrt

    # beta2 0.98 and eps 1e-9: the transformer recipe (Vaswani et al.).
    return Adam(model, warmup_inverse_sqrt(settings["learning_rate"], settings["warmup"]), beta2=0.98, eps=1e-9)


def _save_checkpoint(path: str, translator: Translator, opt: Adam, best: dict[str, np.ndarray] | None,
                     state: dict) -> None:
    from toolkit.nn import save_arrays

    arrays = translator.to_arrays()
    for name, slots in opt.state.items():
        for key, value in slots.items():
            arrays[f"adam_{key}/{name}"] = value
    for name, value in (best or {}).items():
        arrays[f"best/{name}"] = value
    save_arrays(path, arrays, {"kind": CHECKPOINT_KIND, **state, "steps": opt.steps},
                architecture=translator.model.to_config())


def _load_checkpoint(path: str, settings: dict) -> tuple[Translator, Adam, dict[str, np.ndarray] | None, dict]:
    from toolkit.nn import read_model_file

    config, arrays = read_model_file(path)
    state = config.get("metadata", {})
    if state.get("kind") != CHECKPOINT_KIND:
        raise ModelMismatchError(f"{path}: not a translation training checkpoint")
    try:
        translator = Translator.from_arrays(config["architecture"], arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: damaged checkpoint ({error})") from None
    opt = _optimizer(translator.model, settings)
    opt.steps = int(state["steps"])
    for key, value in arrays.items():
        kind, _, name = key.partition("/")
        if kind in ("adam_m", "adam_v"):
            opt.state.setdefault(name, {})[kind[5:]] = value.copy()
    best = {key[5:]: value for key, value in arrays.items() if key.startswith("best/")} or None
    return translator, opt, best, state


def _encode(translator: Translator, sources: list[str], targets: list[str]) -> tuple[list, list, int]:
    """Ids of the pairs that fit the model's positions, and how many were too long."""
    src_ids = translator.src_vocab.encode(sources)
    tgt_ids = translator.tgt_vocab.encode(targets)
    room = translator.model.max_len - 1
    keep = [i for i in range(len(src_ids)) if len(src_ids[i]) <= room and len(tgt_ids[i]) <= room]
    return [src_ids[i] for i in keep], [tgt_ids[i] for i in keep], len(src_ids) - len(keep)


def fit_translator(sources: list[str], targets: list[str], valid: tuple[list[str], list[str]] | None,
                   settings: dict[str, Any], seed: int, progress: bool | None) -> tuple[Translator, dict]:
    """Train (or resume from ``settings["checkpoint"]``); return the best translator and a report."""
    import numpy as np

    from toolkit.nn import clip_grad_norm
    from toolkit.progress import ProgressBar

    checkpoint = settings["checkpoint"]
    if checkpoint and os.path.exists(checkpoint):
        translator, opt, best, state = _load_checkpoint(checkpoint, settings)
    else:
        if settings["shared_vocab"]:
            src_vocab = tgt_vocab = SubwordVocab.train(sources + targets, settings["vocab_size"],
                                                       settings["subword_model"])
        else:
            src_vocab = SubwordVocab.train(sources, settings["vocab_size"], settings["subword_model"])
            tgt_vocab = SubwordVocab.train(targets, settings["vocab_size"], settings["subword_model"])
        translator = Translator(_new_model(settings, src_vocab, tgt_vocab, seed), src_vocab, tgt_vocab)
        opt, best = _optimizer(translator.model, settings), None
        state = {"epoch": 0, "best_epoch": None, "best_bleu": None, "history": [], "seconds": 0.0}
    model = translator.model
    src_ids, tgt_ids, skipped = _encode(translator, sources, targets)
    if not src_ids:
        raise DataError(f"training data: every pair is longer than {model.max_len - 1} subwords")
    groups = token_batches(src_ids, tgt_ids, settings["batch_tokens"])
    deadline = time.monotonic() + 60.0 * settings["max_minutes"] if settings["max_minutes"] > 0 else None
    stopped, started = "completed", time.perf_counter()
    trained_tokens, train_seconds = 0, 0.0
    while state["epoch"] < settings["epochs"]:
        epoch = state["epoch"] + 1
        rng = np.random.default_rng([seed, epoch])
        losses = []
        with ProgressBar(len(groups), desc=f"epoch {epoch}/{settings['epochs']}", unit="batch",
                         enabled=progress) as bar:
            for batch in epoch_batches(src_ids, tgt_ids, groups, rng):
                t0 = time.perf_counter()
                losses.append(train_step(model, batch, settings["label_smoothing"]))
                clip_grad_norm(model, settings["clip"])
                opt.step()
                train_seconds += time.perf_counter() - t0
                trained_tokens += batch.tokens
                bar.update(1, loss=float(np.mean(losses[-50:])), tok_s=int(trained_tokens / train_seconds))
                if deadline is not None and time.monotonic() > deadline:
                    stopped = "max_minutes"
                    break
        record: dict[str, Any] = {"epoch": epoch, "loss": round(float(np.mean(losses)), 4), "steps": opt.steps}
        if valid is not None:
            hypotheses = [t[0].text for t in translator.translate(valid[0], beam=1)]
            record.update({k: v for k, v in score_corpus(hypotheses, valid[1]).items() if k in ("bleu", "chrf")})
            if state["best_bleu"] is None or record["bleu"] > state["best_bleu"]:
                state["best_bleu"], state["best_epoch"] = record["bleu"], epoch
                best = {name: param.copy() for name, param, _ in model.named_parameters()}
        state["history"].append(record)
        if progress is not False:
            print(f"epoch {epoch}: " + " ".join(f"{k}={v}" for k, v in record.items() if k != "epoch"),
                  file=sys.stderr)
        # A partial epoch (time limit) counts as done: resuming starts the next one.
        state["epoch"] = epoch
        state["seconds"] = round(state["seconds"] + time.perf_counter() - started, 1)
        started = time.perf_counter()
        if checkpoint:
            _save_checkpoint(checkpoint, translator, opt, best, state)
        patience = settings["patience"]
        if valid is not None and patience and epoch - state["best_epoch"] >= patience:
            stopped = "patience"
        if stopped != "completed":
            break
    if best is not None:
        for name, param, _ in model.named_parameters():
            param[...] = best[name]
    report = {
        "pairs": len(src_ids), "skipped_too_long": skipped, "epochs": state["epoch"], "steps": opt.steps,
        "stopped": stopped, "best_epoch": state["best_epoch"], "history": state["history"],
        "train_seconds": state["seconds"],
        "tokens_per_second": round(trained_tokens / train_seconds) if train_seconds else None,
    }
    return translator, report
