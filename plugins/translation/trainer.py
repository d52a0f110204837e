"""Training a translator on the shared trainer (:mod:`toolkit.nn.trainer`): subword vocabularies,
length-bucketed batches, a label-smoothed loss, Adam with warm-up, and greedy validation BLEU each epoch.

The trainer does the rest as for every engine: clipping, the best weights,
patience, the time limit, Ctrl-C, and checkpoints that resume exactly. The
vocabularies and the network's architecture travel in the checkpoint's setup,
so a resumed run rebuilds the same translator without learning subwords again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from toolkit_plugins.translation.batches import Batch, EpochBatches, epoch_batches, token_batches
from toolkit.text.subwords import BOS_ID, EOS_ID, PAD_ID, SubwordVocab
from toolkit_plugins.translation.translator import PARAM_PREFIX, Translator, score_corpus
from toolkit.errors import DataError, ModelFileError
from toolkit.training import checkpoint_path, make_trainer, resumed

if TYPE_CHECKING:
    from toolkit.nn import Adam, Seq2SeqTransformer
    from toolkit.nn.checkpoint import Checkpoint
    from toolkit.nn.trainer import History


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


def _new_translator(sources: list[str], targets: list[str], settings: dict[str, Any], seed: int) -> Translator:
    from toolkit.nn import Seq2SeqTransformer

    if settings["shared_vocab"]:
        src_vocab = tgt_vocab = SubwordVocab.train(sources + targets, settings["vocab_size"], settings["subword_model"])
    else:
        src_vocab = SubwordVocab.train(sources, settings["vocab_size"], settings["subword_model"])
        tgt_vocab = SubwordVocab.train(targets, settings["vocab_size"], settings["subword_model"])
    model = Seq2SeqTransformer(
        len(src_vocab), len(tgt_vocab), dim=settings["dim"], heads=settings["heads"],
        encoder_layers=settings["encoder_layers"], decoder_layers=settings["decoder_layers"], ffn=settings["ffn"],
        dropout=settings["dropout"], max_len=settings["max_len"], shared_vocab=src_vocab is tgt_vocab,
        pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, seed=seed,
    )
    return Translator(model, src_vocab, tgt_vocab)


def _saved_translator(saved: Checkpoint, where: str) -> Translator:
    """The translator of a checkpoint: its architecture and vocabularies from the setup, the saved weights."""
    arrays = {**saved.groups.get("setup", {}),
              **{PARAM_PREFIX + name: value for name, value in saved.groups.get("model", {}).items()}}
    try:
        return Translator.from_arrays(saved.setup["architecture"], arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{where}: damaged translation checkpoint ({error})") from None


def _optimizer(model: Seq2SeqTransformer, settings: dict[str, Any]) -> Adam:
    from toolkit.nn import Adam, warmup_inverse_sqrt

    # beta2 0.98 and eps 1e-9: the transformer recipe (Vaswani et al.).
    return Adam(model, warmup_inverse_sqrt(settings["learning_rate"], settings["warmup"]), beta2=0.98, eps=1e-9)


def _encode(translator: Translator, sources: list[str], targets: list[str]) -> tuple[list, list, int]:
    """Ids of the pairs that fit the model's positions, and how many were too long."""
    src_ids = translator.src_vocab.encode(sources)
    tgt_ids = translator.tgt_vocab.encode(targets)
    room = translator.model.max_len - 1
    keep = [i for i in range(len(src_ids)) if len(src_ids[i]) <= room and len(tgt_ids[i]) <= room]
    return [src_ids[i] for i in keep], [tgt_ids[i] for i in keep], len(src_ids) - len(keep)


def fit_translator(sources: list[str], targets: list[str], valid: tuple[list[str], list[str]] | None,
                   settings: dict[str, Any], output: str, seed: int,
                   progress: bool | None) -> tuple[Translator, History, dict[str, Any]]:
    """Train a translator (or go on from the checkpoint with ``resume``) on the pairs; validation on ``valid``
    picks the best epoch, whose weights the translator holds. Return it, the trainer's History and the
    figures of this training: pairs skipped as too long, and target tokens per second of training."""
    import numpy as np

    saved = resumed(settings, output, seed)
    if saved is not None:
        translator = _saved_translator(saved, checkpoint_path(settings, output))
    else:
        translator = _new_translator(sources, targets, settings, seed)
    model = translator.model
    src_ids, tgt_ids, skipped = _encode(translator, sources, targets)
    if not src_ids:
        raise DataError(f"training data: every pair is longer than {model.max_len - 1} subwords")
    groups = token_batches(src_ids, tgt_ids, settings["batch_tokens"])
    counted = {"tokens": 0, "validating": 0.0}

    def step(batch: Batch) -> float:
        counted["tokens"] += batch.tokens
        return train_step(model, batch, settings["label_smoothing"])

    def batches(epoch: int, rng: np.random.Generator) -> EpochBatches:
        # Seeded by the epoch, not by the trainer's generator: a given seed draws the batches it always did,
        # so the shipped model's recipe still reproduces.
        return epoch_batches(src_ids, tgt_ids, groups, np.random.default_rng([seed, epoch]))

    def validate() -> dict[str, float]:
        started = time.perf_counter()
        hypotheses = [t[0].text for t in translator.translate(valid[0], beam=1)]
        scores = score_corpus(hypotheses, valid[1])
        counted["validating"] += time.perf_counter() - started
        return {"bleu": scores["bleu"], "chrf": scores["chrf"]}

    vocabularies = {"src_vocab": translator.src_vocab.to_array()}
    if translator.tgt_vocab is not translator.src_vocab:
        vocabularies["tgt_vocab"] = translator.tgt_vocab.to_array()
    trainer = make_trainer(
        model, _optimizer(model, settings), step, batches, settings, output, seed, progress, saved=saved,
        validate=validate if valid is not None else None, monitor="bleu", clip_norm=settings["clip"],
        setup={"architecture": model.to_config()}, setup_arrays=vocabularies,
        throughput=("tokens", lambda batch: batch.tokens),
    )
    started = time.perf_counter()
    history = trainer.run()
    training = time.perf_counter() - started - counted["validating"]
    figures = {"skipped_too_long": skipped,
               "tokens_per_second": round(counted["tokens"] / training) if counted["tokens"] else None}
    return translator, history, figures

