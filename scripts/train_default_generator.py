"""Train the default language model shipped with the generate task.

    python scripts/train_default_generator.py [--data DIR] [--output FILE] [--threads 2] [--seed 0]
        [--set NAME=VALUE ...]

Trains the "transformer" engine by ``toolkit.train`` with ``RECIPE`` on
../shared/data/wikitext2 train (WikiText-2, tokenized, 36,718 lines), keeps
the epoch with the best validation perplexity (valid, 3,760 lines), then
scores the kept model once on test (4,358 lines, 245,569 words counting one
``<eos>`` per line) with sliding windows: perplexity per token, per word and
bits per byte. It stamps the test scores and the command into the model
file's metadata (``toolkit.nn.rewrite_metadata``) and writes MODEL_CARD.md
beside it. ``--set NAME=VALUE`` (repeatable) changes an option of the
recipe (any train option of generate:transformer). The model is trained
into OUTPUT.new and moved to OUTPUT only when it is within the size limit
(30 MB). A test word perplexity above the target (100) is reported on
stderr and in the card, not hidden: the test split is read once, after
every choice was made on valid.

The run checkpoints after every epoch, every 10 minutes and on Ctrl-C or
SIGTERM (exit 130) to OUTPUT.new.ckpt (ignored by git); ``--set
max_minutes=M`` stops after M minutes (exit 3). Both print the command to
continue, the same with ``--set resume=true``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
DATA = ROOT.parent / "shared" / "data" / "wikitext2"
TARGET_WORD_PERPLEXITY = 100.0
MAX_BYTES = 30 * 2**20
# The train options of the shipped model. 7 epochs of the 2.96M training tokens are about 98 minutes at the
# 3,530 tokens/s this shape trains at on 2 idle cores (Zen 5), which leaves the 2 hours room for validation.
RECIPE = {"epochs": 7, "patience": 3, "batch_blocks": 16, "context_length": 128, "learning_rate": 2e-3,
          "warmup": 400, "weight_decay": 0.1, "clip": 1.0, "vocab_size": 8000, "subword_model": "unigram",
          "symbols": ("<unk>",), "dim": 256, "heads": 4, "layers": 4, "ffn": 1024, "dropout": 0.1}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from recipe import script_parser
    from toolkit_plugins.generation.engine import MODEL_DIR

    return script_parser(__doc__, MODEL_DIR / "wikitext2.nlpt", "a train option of generate:transformer over"
                         " RECIPE, e.g. resume=true", (DATA, "{train,valid,test}.txt.gz")).parse_args(argv)


def read_split(folder: Path, split: str) -> list[dict]:
    from toolkit.datasets import read_line_files

    path = folder / f"{split}.txt.gz"
    if not path.exists():
        sys.exit(f"error: {path} not found (pass --data DIR)")
    return read_line_files([str(path)], ("text",))


def model_card(args: argparse.Namespace, meta: dict, size: int) -> str:
    """The card of the model whose metadata is ``meta``."""
    from recipe import epoch_rows

    training, test = meta["training"], meta["test_metrics"]
    options = training["options"]
    history = epoch_rows(training["epochs"], ("val_ppl", "val_word_ppl"))
    return f"""# Model card: wikitext2 (default model of `nlp-tool generate`)

An English language model for `nlp-tool generate "Once upon a time"` and
`toolkit.pipeline("generate")`; engine `generate:transformer`.

## How it was made

    {training['command']}

- Data: WikiText-2 v1 (Merity et al., 2016), the tokenized version with `<unk>`:
  `{os.path.relpath(args.data, ROOT)}/train.txt.gz`, {training['records']:,} lines,
  {training['training_tokens']:,} subword tokens. Licence: Creative Commons Attribution-ShareAlike (CC BY-SA 3.0),
  as the Wikipedia articles it is drawn from. Model selection on `valid` ({training['validation_records']:,} lines,
  perplexity after each epoch); `test` was used only for the numbers below, after training.
- Training: {training['epochs'][-1]['epoch']} epochs ({training['steps']:,} steps, stopped: {training['stopped']}),
  {training['train_seconds'] / 60:.0f} min of training on {args.threads} threads
  ({platform.machine()}, {os.cpu_count()} CPUs visible), {training['tokens_per_second']} tokens/s;
  best epoch {training['best_epoch']}.
- Model file: `{args.output.name}`, {size / 2**20:.1f} MB (weights stored as float16).

## Choices

- Sentencepiece {options['subword_model']} vocabulary of {options['vocab_size']:,} pieces learnt on train, with
  `<unk>` kept as one piece, stored inside the model file. Every line ends with the end-of-text token.
- GPT-2's layout: {options['layers']} pre-norm blocks of width {options['dim']}, {options['heads']} heads, GELU
  feed-forward {options['ffn']}, learned positions ({options['context_length']}), output tied to the token
  embedding, dropout {options['dropout']}.
- AdamW (0.9, 0.95), weight decay {options['weight_decay']}, peak learning rate {options['learning_rate']} after
  {options['warmup']} warm-up steps then a linear decay to zero, gradient clipping at {options['clip']}, batches of
  {options['batch_blocks']} blocks of {options['context_length']} tokens cut from a new offset each epoch.

## Test scores (WikiText-2 test, sliding windows of {options['context_length']} tokens, stride {test['stride']})

- Word-level perplexity: **{test['word_perplexity']:.2f}** (total negative log-likelihood / {test['words']:,}
  words, one `<eos>` per line included; target {TARGET_WORD_PERPLEXITY:g})
- Token perplexity {test['token_perplexity']:.2f} over {test['tokens']:,} subword tokens; {test['bits_per_byte']:.4f}
  bits per byte

| epoch | train loss | val token perplexity | val word perplexity |
|---|---|---|---|
{history}

## Limits

A small model trained on 2 million words of Wikipedia articles, in
WikiText's tokenized form (`@-@`, ` , `, `<unk>` for rare words): it writes
encyclopedic English in that style, often without sense, and knows nothing
of other languages (characters it never saw are refused in prompts).
"""


def main() -> int:
    args = parse_args()
    from toolkit.threads import short_blas_spin, use_threads
    use_threads(args.threads)
    short_blas_spin()  # as `nlp-tool train` does
    from recipe import ship, stamp_test, train_staged
    from toolkit_plugins.generation.engine import TransformerGenerator

    staged, _, command = train_staged(args, TransformerGenerator, read_split(args.data, "train"),
                                      read_split(args.data, "valid"), {"name": "wikitext2", **RECIPE})
    metrics = TransformerGenerator(model=str(staged)).evaluate(read_split(args.data, "test"))
    meta = stamp_test(staged, command, "WikiText-2 v1 train (tokenized), 36,718 lines", "WikiText-2 v1 test"
                      " (tokenized), 4,358 lines", metrics, ("tokens", "words", "bytes", "nll", "token_perplexity",
                                                             "word_perplexity", "bits_per_byte", "stride"))
    print(f"test word perplexity {metrics['word_perplexity']:.2f}, token perplexity {metrics['token_perplexity']:.2f},"
          f" {metrics['bits_per_byte']:.4f} bits/byte; {staged.stat().st_size / 2**20:.1f} MB")
    if ship(staged, args.output, MAX_BYTES, lambda size: model_card(args, meta, size)):
        return 1
    if metrics["word_perplexity"] > TARGET_WORD_PERPLEXITY:
        print(f"warning: test word perplexity above the target of {TARGET_WORD_PERPLEXITY:g} (reported in the card)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
