"""Train the default model of the chat task's transformer engine.

    python scripts/train_default_chat.py [--data DIR] [--output FILE] [--threads 2] [--seed 0]
        [--set NAME=VALUE ...]

Trains the "transformer" engine of chat by ``toolkit.train`` with ``RECIPE``
on ../shared/data/dailydialog train (DailyDialog, 11,118 dialogues), keeps
the epoch with the best validation perplexity (validation, 1,000
dialogues), then scores the kept model once on test (1,000 dialogues, 6,740
responses) with the engine's evaluation (``nlp-tool evaluate chat``): the
perplexity of every response given the turns before it, and BLEU-1/2 and
distinct-1/2 of the replies it writes with its default sampling options. It
stamps the test scores and the command into the model file's metadata and
writes MODEL_CARD.md beside it. ``--set NAME=VALUE`` (repeatable) changes an
option of the recipe (any train option of chat:transformer). The model is
trained into OUTPUT.new and moved to OUTPUT only when it is within the size
limit (30 MB). The test split is read once, after every choice was made on
validation.

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
DATA = ROOT.parent / "shared" / "data" / "dailydialog"
MAX_BYTES = 30 * 2**20
# The train options of the shipped model, from priors (the generate task's default shape): only the epoch is
# chosen on validation.
RECIPE = {"epochs": 10, "patience": 3, "batch_blocks": 16, "context_length": 128, "learning_rate": 2e-3,
          "warmup": 400, "weight_decay": 0.1, "clip": 1.0, "vocab_size": 8000, "subword_model": "unigram",
          "dim": 256, "heads": 4, "layers": 4, "ffn": 1024, "dropout": 0.1}
TEST_KEYS = ("responses", "tokens", "words", "token_perplexity", "word_perplexity", "bleu1", "bleu2", "distinct1",
             "distinct2")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from recipe import script_parser
    from toolkit_plugins.chat.transformer import MODEL_DIR

    return script_parser(__doc__, MODEL_DIR / "dailydialog.nlpt", "a train option of chat:transformer over"
                         " RECIPE, e.g. resume=true", (DATA, "{train,validation,test}.jsonl.gz")).parse_args(argv)


def model_card(args: argparse.Namespace, meta: dict, size: int) -> str:
    """The card of the model whose metadata is ``meta``."""
    from recipe import epoch_rows

    training, test = meta["training"], meta["test_metrics"]
    options = training["options"]
    history = epoch_rows(training["epochs"], ("val_ppl", "val_word_ppl"))
    return f"""# Model card: dailydialog (default model of `nlp-tool chat -e transformer`)

An English dialogue model for `nlp-tool chat -e transformer` and
`toolkit.pipeline("chat", "transformer")`.

## Licence: non-commercial

The model is trained on DailyDialog, which its authors release under
**CC BY-NC-SA 4.0**. The model is a derivative of that data: use it for
non-commercial purposes only, and share what you derive from it under the
same terms. For commercial use, train your own model on your own dialogues
(`nlp-tool train chat dialogues.jsonl`).

## How it was made

    {training['command']}

- Data: DailyDialog (Li et al., IJCNLP 2017), the official split:
  `{os.path.relpath(args.data, ROOT)}/train.jsonl.gz`, {training['records']:,} dialogues,
  {training['training_tokens']:,} subword tokens. Model selection on `validation` ({training['validation_records']:,}
  dialogues, perplexity after each epoch); `test` was used only for the numbers below, after training.
- Training: {training['epochs'][-1]['epoch']} epochs ({training['steps']:,} steps, stopped: {training['stopped']}),
  {training['train_seconds'] / 60:.0f} min of training on {args.threads} threads
  ({platform.machine()}, {os.cpu_count()} CPUs visible), {training['tokens_per_second']} tokens/s;
  best epoch {training['best_epoch']}.
- Model file: `{args.output.name}`, {size / 2**20:.1f} MB (weights stored as float16).

## Choices

- A dialogue is one text, each turn after its speaker's marker (`<|speaker1|>` for the one who opens it,
  `<|speaker2|>` for the other); the reply is what the model writes after the next marker.
- Sentencepiece {options['subword_model']} vocabulary of {options['vocab_size']:,} pieces learnt on train, the two
  markers among them, stored inside the model file.
- GPT-2's layout: {options['layers']} pre-norm blocks of width {options['dim']}, {options['heads']} heads, GELU
  feed-forward {options['ffn']}, learned positions ({options['context_length']}), output tied to the token
  embedding, dropout {options['dropout']}.
- AdamW (0.9, 0.95), weight decay {options['weight_decay']}, peak learning rate {options['learning_rate']} after
  {options['warmup']} warm-up steps then a linear decay to zero, gradient clipping at {options['clip']}, batches of
  {options['batch_blocks']} blocks of {options['context_length']} tokens cut from a new offset each epoch.

## Test scores (DailyDialog test, {test['responses']:,} responses, each given the turns before it)

- Perplexity of the true responses: **{test['token_perplexity']:.2f}** per token ({test['tokens']:,} tokens, each
  response's closing marker included), **{test['word_perplexity']:.2f}** per word ({test['words']:,} whitespace
  words, one close per response included)
- Replies written with the engine's default sampling (temperature {test['sampling']['temperature']}, top-p
  {test['sampling']['top_p']}, seed {test['sampling']['seed']}, at least {test['sampling']['min_tokens']} token):
  BLEU-1 {test['bleu1']:.2f}, BLEU-2 {test['bleu2']:.2f} (sacreBLEU, corpus level, replies and true responses
  as plain text); distinct-1 {test['distinct1']:.4f}, distinct-2 {test['distinct2']:.4f}

| epoch | train loss | val token perplexity | val word perplexity (whole dialogues) |
|---|---|---|---|
{history}

## Limits

A small model trained on 11,000 short dialogues written for learners of
English about daily life: it replies in that register, often generically,
and knows nothing of facts, of other languages or of your documents. Its
text style is `spaced`, DailyDialog's punctuation set apart (`Hi , Jim .`;
metadata `text_style`, found from the training text): the turns are put in
that form before it reads them, and its replies are given back as plain text
(docs/generation.md, "Text style").
"""


def main() -> int:
    args = parse_args()
    from recipe import read_dialogues, set_up_process, ship, stamp_test, train_staged
    set_up_process(args.threads)
    from toolkit_plugins.chat.transformer import TransformerChat

    dialogues = read_dialogues(args.data, "train")
    staged, _, command = train_staged(args, TransformerChat, dialogues, read_dialogues(args.data, "validation"),
                                      {"name": "dailydialog", **RECIPE})
    engine = TransformerChat(model=str(staged))
    test = read_dialogues(args.data, "test")
    metrics = engine.evaluate(test)
    meta = stamp_test(staged, command, f"DailyDialog train (official split), {len(dialogues):,} dialogues",
                      f"DailyDialog test (official split), {len(test):,} dialogues", metrics, TEST_KEYS,
                      sampling={k: engine.settings[k] for k in ("temperature", "top_p", "top_k", "seed", "max_tokens",
                                                                "min_tokens")})
    print(f"test perplexity {metrics['token_perplexity']:.2f} per token, {metrics['word_perplexity']:.2f} per word;"
          f" BLEU-1 {metrics['bleu1']:.2f}, distinct-2 {metrics['distinct2']:.4f};"
          f" {staged.stat().st_size / 2**20:.1f} MB")
    return ship(staged, args.output, MAX_BYTES, lambda size: model_card(args, meta, size))


if __name__ == "__main__":
    sys.exit(main())
