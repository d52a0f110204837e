"""Translation: quality and decoding speed of a model on Multi30k test2016, and training throughput
of our transformer against the same architecture in PyTorch.

    python benchmarks/translate.py [--model FILE] [--threads 2] [--steps 10] [--decode 200]
                                   [--skip-quality] [--skip-training] [--no-torch] [--format json]

1. Quality (needs a model: --model, default the installed en->de model):
   sacreBLEU and chrF (cased, detokenized, sacrebleu's defaults) of beam-4
   translations of all 1,000 test2016 sentences.
2. Decoding speed: sentences/s for the first --decode test sentences, greedy
   and beam 4, batches of 64, model loaded beforehand.
3. Training throughput, side by side in one run: our Seq2SeqTransformer and
   a PyTorch model of the same architecture (pre-norm nn.Transformer, d_model
   256, 4 heads, 3+3 layers, FFN 1024, dropout 0.1, tied and scaled
   embeddings with sinusoidal positions, label-smoothed cross-entropy on the
   non-padding positions, Adam(0.9, 0.98, eps 1e-9), clipping at 1.0) train
   on the same batches of Multi30k train (--batch-tokens padded tokens, same
   length bucketing) for --steps steps after 2 warm-up steps, taking turns
   batch by batch (so that load from other jobs falls on both); both at
   --threads threads. Reported: target tokens/s and ours / PyTorch.
   The subword vocabulary is the model's when there is one, else a fresh
   8,000-piece unigram model of the first 10,000 training pairs.

Data: ../shared/data/multi30k (train, test2016), read in place.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "multi30k"


def read_lines(name: str) -> list[str]:
    with gzip.open(DATA / f"{name}.gz", "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def torch_model(vocab: int, cfg: dict):
    import math
    import warnings

    import torch

    # nn.Transformer warns that pre-norm layers cannot use nested tensors; that is expected here.
    warnings.filterwarnings("ignore", message="enable_nested_tensor")

    class TorchSeq2Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg["dim"]
            self.embed = torch.nn.Embedding(vocab, d)
            torch.nn.init.normal_(self.embed.weight, 0.0, d**-0.5)
            self.core = torch.nn.Transformer(
                d, cfg["heads"], cfg["encoder_layers"], cfg["decoder_layers"], cfg["ffn"], cfg["dropout"],
                batch_first=True, norm_first=True)
            self.drop = torch.nn.Dropout(cfg["dropout"])
            pos = torch.arange(cfg["max_len"])[:, None]
            rates = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2) / d)
            table = torch.zeros(cfg["max_len"], d)
            table[:, 0::2], table[:, 1::2] = torch.sin(pos * rates), torch.cos(pos * rates)
            self.register_buffer("positions", table)
            self.scale = math.sqrt(d)

        def embed_tokens(self, ids):
            return self.drop(self.embed(ids) * self.scale + self.positions[: ids.shape[1]])

        def forward(self, src, tgt_in, rows):
            causal = torch.nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1])
            h = self.core(self.embed_tokens(src), self.embed_tokens(tgt_in), tgt_mask=causal, tgt_is_causal=True,
                          src_key_padding_mask=src == 0, memory_key_padding_mask=src == 0)
            return h[rows] @ self.embed.weight.T

    return TorchSeq2Seq()


def ours_step(vocab: int, cfg: dict) -> Callable:
    """One training step of our transformer (forward, backward, clipping, Adam) on a batch."""
    import toolkit.nn as nn
    from toolkit_plugins.translation.trainer import train_step

    model = nn.Seq2SeqTransformer(vocab, vocab, shared_vocab=True, seed=0, **cfg)
    opt = nn.Adam(model, nn.warmup_inverse_sqrt(1e-3, 800), beta2=0.98, eps=1e-9)
    return lambda b: (train_step(model, b, 0.1), nn.clip_grad_norm(model, 1.0), opt.step())


def torch_step(vocab: int, cfg: dict) -> Callable:
    """The same step for the PyTorch model of the same architecture."""
    import torch

    torch.manual_seed(0)
    model = torch_model(vocab, cfg)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    def step(b):
        src, tgt_in, tgt_out = (torch.from_numpy(a) for a in (b.src, b.tgt_in, b.tgt_out))
        rows = tgt_out != 0
        loss = loss_fn(model(src, tgt_in, rows), tgt_out[rows])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def timed_side_by_side(batches: list, steps: dict[str, Callable]) -> dict[str, float]:
    """Target tokens per second of each step function, after two untimed warm-up steps each.

    The contenders take turns batch by batch, so that a burst of load from
    other jobs on a shared machine falls on both rather than on one.
    """
    for step in steps.values():
        for b in batches[:2]:
            step(b)
    seconds = dict.fromkeys(steps, 0.0)
    timed = batches[2:]
    for b in timed:
        for name, step in steps.items():
            start = time.perf_counter()
            step(b)
            seconds[name] += time.perf_counter() - start
    tokens = sum(b.tokens for b in timed)
    return {name: tokens / s for name, s in seconds.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="Model file (default: the installed en->de model).")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10, help="Timed training steps per framework.")
    p.add_argument("--batch-tokens", type=int, default=3000)
    p.add_argument("--decode", type=int, default=200, help="Test sentences for the decoding speed.")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--format", choices=("text", "json"), default="text")
    args = p.parse_args()
    from toolkit.threads import use_threads
    use_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    if not DATA.is_dir():
        sys.exit(f"needs {DATA}")

    import numpy as np

    from toolkit_plugins.translation.batches import epoch_batches, token_batches
    from toolkit_plugins.translation.engine import DEFAULT_PAIR, TransformerTranslator, installed_pairs
    from toolkit.text.subwords import SubwordVocab
    from toolkit_plugins.translation.translator import score_corpus

    model_file = args.model or installed_pairs().get(DEFAULT_PAIR)
    results: dict = {"threads": args.threads, "model": str(model_file) if model_file else None}
    test_en, test_de = read_lines("test2016.en"), read_lines("test2016.de")
    engine = TransformerTranslator(model=str(model_file)) if model_file else None

    if engine is not None and not args.skip_quality:
        start = time.perf_counter()
        hyps = [r["translation"] for r in engine.run(test_en)]
        results["test2016"] = {"sentences": len(test_en), "beam": 4, "seconds": round(time.perf_counter() - start, 1),
                               **score_corpus(hyps, test_de)}
    if engine is not None:
        translator = engine.translator
        sample = test_en[: args.decode]
        for label, beam in (("greedy", 1), ("beam4", 4)):
            start = time.perf_counter()
            translator.translate(sample, beam=beam)
            results[f"decode_{label}_sentences_per_second"] = round(len(sample) / (time.perf_counter() - start), 1)

    if not args.skip_training:
        train_en, train_de = read_lines("train.en"), read_lines("train.de")
        if engine is not None:
            vocab = engine.translator.src_vocab
        else:
            vocab = SubwordVocab.train(train_en[:10000] + train_de[:10000], 8000)
        src_ids, tgt_ids = vocab.encode(train_en), vocab.encode(train_de)
        groups = token_batches(src_ids, tgt_ids, args.batch_tokens)
        batches = list(epoch_batches(src_ids, tgt_ids, groups, np.random.default_rng(0)))[: args.steps + 2]
        cfg = {"dim": 256, "heads": 4, "encoder_layers": 3, "decoder_layers": 3, "ffn": 1024, "dropout": 0.1,
               "max_len": 128}
        steps = {"ours": ours_step(len(vocab), cfg)}
        if not args.no_torch:
            import torch

            torch.set_num_threads(args.threads)
            steps["torch"] = torch_step(len(vocab), cfg)
        speed = timed_side_by_side(batches, steps)
        train = {"vocab": len(vocab), "batch_tokens": args.batch_tokens, "steps": args.steps,
                 **{f"{name}_tokens_per_second": round(value) for name, value in speed.items()}}
        if "torch" in speed:
            train["ratio_ours_over_torch"] = round(speed["ours"] / speed["torch"], 3)
        results["training"] = train

    if args.format == "json":
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
