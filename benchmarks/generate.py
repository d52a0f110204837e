"""Text generation: our DecoderLM against PyTorch (training) and transformers (greedy generation), taking turns.

    python benchmarks/generate.py [--threads 2] [--steps 10] [--repeats 3] [--new-tokens 128]
                                  [--skip-training] [--skip-generation] [--skip-gpt2-small] [--skip-perplexity]

(a) Training tokens/s: our DecoderLM and the same model written in PyTorch
    (GPT-2's layout: pre-norm, causal F.scaled_dot_product_attention, GELU
    tanh, tied head) start from the same weights (copied from ours) and
    train on the same batches of random ids with Adam at the same lr,
    dropout 0, taking turns so that load from other jobs falls on both: a
    turn is TRAIN_BLOCK consecutive steps, as a training run makes them, and
    its first step, which starts on cores the other side or the idle machine
    left, is not timed. Reported: the two losses at step 0 (same weights,
    same batch: they must agree) and after the last step, and the median
    timed step's tokens/s (batch x context target tokens per step). Ours trains in a
    process set up as `nlp-tool train` sets up its own (OpenBLAS's threads
    sleep after a product, the allocator keeps what a step frees:
    toolkit.training_process).
(b) Generation tokens/s, greedy, --prompt-tokens random prompts and exactly
    --new-tokens new tokens at batch 1 and 8: ours (Decoding with
    Sampling(temperature=0)) against transformers' GPT2LMHeadModel.generate
    with our weights copied in, at the default model's shape (positions
    widened to --gen-context, as the default's 128 cannot hold prompt +
    continuation) and at GPT-2 small's shape with random weights. Both
    forbid the end-of-text id (ours with ``forbidden``, transformers with
    min_new_tokens), so both make every token and stay comparable. Reported:
    the median of --repeats runs, whether the greedy tokens are identical.
(c) The default model's WikiText-2 test word-level perplexity, through the
    public API (toolkit.api.evaluate on the generate task), when the
    model file exists and the task is registered; otherwise a line says why.

Each contender runs in a process of its own, started with "spawn" (its own
libraries, OpenMP runtime and thread pools, nothing of the other's), and
the main process, which computes nothing, has them take turns call by call;
each times its own calls. In one process the two OpenMP runtimes slowed
whichever ran second (docs/benchmarks.md, runs 4 and 5). Threads: OpenMP/BLAS
and torch all at --threads in each. The machine may be shared: timings are
medians, and ratios (ours / peer, above 1: we are faster) are what to
compare across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "plugins" / "generation" / "models" / "wikitext2.nlpt"
WIKITEXT_TEST = ROOT.parent / "shared" / "data" / "wikitext2" / "test.txt.gz"
GPT2_SMALL = {"vocab": 50257, "dim": 768, "heads": 12, "layers": 12, "ffn": 3072, "context": 1024}
EOS_ID = 3  # DecoderLM's default end-of-text id; forbidden in generation so that every run makes --new-tokens
PAD_ID = 0  # DecoderLM's default padding id
# Training steps per turn. A turn's first step runs while the other side's threads may still spin and the cores
# wake from its pause: step by step turns, even 0.3 s apart, timed both sides below their speed in a run of
# steps (ours 2,500 tokens/s against 3,300 in a loop of its own).
TRAIN_BLOCK = 5


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="threads for every contender (default 2)")
    shape = p.add_argument_group("the default model's shape")
    for name, value in (("vocab", 8000), ("dim", 256), ("heads", 4), ("layers", 4), ("ffn", 1024), ("context", 128)):
        shape.add_argument(f"--{name}", type=int, default=value)
    train = p.add_argument_group("(a) training")
    train.add_argument("--batch", type=int, default=16, help="sequences per training step (default 16)")
    train.add_argument("--steps", type=int, default=10, help="timed training steps per framework, at least (whole"
                       " turns of TRAIN_BLOCK steps, the first of each untimed; default 10)")
    train.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    train.add_argument("--lr", type=float, default=3e-4)
    gen = p.add_argument_group("(b) generation")
    gen.add_argument("--prompt-tokens", type=int, default=32)
    gen.add_argument("--new-tokens", type=int, default=128)
    gen.add_argument("--gen-batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    gen.add_argument("--gen-context", type=int, default=256,
                     help="positions of the default-shape generation model (default 256)")
    gen.add_argument("--repeats", type=int, default=3, help="timed runs per contender, median (default 3)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model file for (c)")
    for part in ("training", "generation", "gpt2-small", "perplexity"):
        p.add_argument(f"--skip-{part}", action="store_true")
    return p.parse_args()


# Run as a script, this folder is first on sys.path, and its kernels.py would stand in for the optional
# "kernels" package that transformers tries to import: take the folder off, and put on what the benchmarks share
# (the contenders' processes, which start with this sys.path and import this file).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent / "shared"))
from contenders import Contender  # noqa: E402


# -- the contenders, each in a process of its own ----------------------------------------------------------------


def gpt2_state(model: Any) -> dict[str, np.ndarray]:
    """Our weights under GPT-2's names and layout (GPT2Model's state dict, without "transformer.").

    GPT-2's Conv1D keeps weights as (in, out), as our Dense and attention
    do, so only the query/key/value projections change: GPT-2 holds them as
    one c_attn, their concatenation along the output axis.
    """
    import numpy as np

    state = {"wte.weight": model.wte.params["table"], "wpe.weight": model.wpe.params["table"],
             "ln_f.weight": model.ln_f.params["gamma"], "ln_f.bias": model.ln_f.params["beta"]}
    for i, block in enumerate(model.blocks):
        a = block.attn.params
        parts = {"ln_1": (block.ln1.params["gamma"], block.ln1.params["beta"]),
                 "attn.c_attn": (np.concatenate([a["wq"], a["wk"], a["wv"]], axis=1),
                                 np.concatenate([a["bq"], a["bk"], a["bv"]])),
                 "attn.c_proj": (a["wo"], a["bo"]),
                 "ln_2": (block.ln2.params["gamma"], block.ln2.params["beta"]),
                 "mlp.c_fc": (block.ff1.params["w"], block.ff1.params["b"]),
                 "mlp.c_proj": (block.ff2.params["w"], block.ff2.params["b"])}
        for name, (weight, bias) in parts.items():
            state[f"h.{i}.{name}.weight"], state[f"h.{i}.{name}.bias"] = weight, bias
    return {name: np.array(value, dtype=np.float32) for name, value in state.items()}  # copies: trained apart


class Ours:
    """Our DecoderLM, trained by train_step and Adam, decoding with Decoding (greedy)."""

    def __init__(self, threads: int) -> None:
        self.models: dict[str, Any] = {}
        self.optimizer: Any = None

    def versions(self) -> str:
        import numpy

        return f"numpy {numpy.__version__}"

    def build(self, key: str, shape: dict, context: int) -> dict[str, np.ndarray]:
        """A model of ``shape`` with ``context`` positions (seed 0), kept as ``key``; its weights for the peer."""
        from toolkit.nn.language_model import DecoderLM

        model = DecoderLM(shape["vocab"], shape["dim"], shape["heads"], shape["layers"], shape["ffn"], 0.0, context,
                          eos_id=EOS_ID, seed=0)
        self.models[key] = model
        return gpt2_state(model)

    def optimize(self, key: str, lr: float) -> None:
        from toolkit.nn import Adam

        self.optimizer = Adam(self.models[key], lr)

    def train_step(self, key: str, ids: np.ndarray) -> tuple[float, float]:
        from toolkit.nn.language_model import train_step

        start = time.perf_counter()
        loss = train_step(self.models[key], ids)
        self.optimizer.step()  # also zeroes the gradients
        return float(loss), time.perf_counter() - start

    def generate(self, key: str, prompts: np.ndarray, new_tokens: int) -> tuple[list[list[int]], float]:
        import numpy as np

        from toolkit.nn.sampling import Decoding, Sampling

        start = time.perf_counter()
        rngs = [np.random.default_rng(i) for i in range(len(prompts))]
        decoding = Decoding(self.models[key], prompts.tolist(), Sampling(temperature=0), new_tokens, rngs,
                            forbidden=[EOS_ID])
        for _ in decoding:
            pass
        return [result.ids for result in decoding.results], time.perf_counter() - start

    def perplexity(self, model: str, data: str) -> dict:
        from toolkit import api

        return api.evaluate("generate", data, model=model)


class OursTraining(Ours):
    """Ours, in a process set up as `nlp-tool train` sets up its own (toolkit.training_process)."""

    def __init__(self, threads: int) -> None:
        from toolkit.training_process import set_up_training_process

        set_up_training_process()
        super().__init__(threads)


class Theirs:
    """The same model in PyTorch for training (written here, GPT-2's layout), and in transformers'
    GPT2LMHeadModel for generation, each loaded with our weights."""

    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.models: dict[str, Any] = {}
        self.optimizer: Any = None

    def versions(self) -> str:
        import torch
        import transformers

        return f"torch {torch.__version__} (threads={torch.get_num_threads()}) transformers {transformers.__version__}"

    def build(self, key: str, shape: dict, context: int, state: dict[str, np.ndarray], kind: str) -> None:
        import torch

        weights = {name: torch.from_numpy(value) for name, value in state.items()}
        if kind == "train":
            model = torch_gpt(shape, context)
            model.load_state_dict(weights, strict=True)
            self.models[key] = model.train()
        else:
            self.models[key] = hf_model(shape, context, weights)

    def optimize(self, key: str, lr: float) -> None:
        import torch

        self.optimizer = torch.optim.Adam(self.models[key].parameters(), lr=lr)

    def train_step(self, key: str, ids: np.ndarray) -> tuple[float, float]:
        import torch
        import torch.nn.functional as F

        start = time.perf_counter()
        batch = torch.from_numpy(ids)
        logits = self.models[key](batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item(), time.perf_counter() - start

    def generate(self, key: str, prompts: np.ndarray, new_tokens: int) -> tuple[list[list[int]], float]:
        import torch

        model = self.models[key]
        start = time.perf_counter()
        ids = torch.from_numpy(prompts)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 eos_token_id=EOS_ID, pad_token_id=model.config.pad_token_id)
        return out[:, prompts.shape[1]:].tolist(), time.perf_counter() - start


def torch_gpt(shape: dict, context: int) -> Any:
    """Our DecoderLM in PyTorch, with GPT-2's parameter names so that :func:`gpt2_state` loads into it."""
    import torch
    import torch.nn.functional as F

    class Conv1D(torch.nn.Module):
        """GPT-2's affine layer: y = x @ weight + bias, weight (in, out)."""

        def __init__(self, n_in: int, n_out: int):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.empty(n_in, n_out))
            self.bias = torch.nn.Parameter(torch.empty(n_out))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)

    class Block(torch.nn.Module):
        """Pre-norm causal self-attention and GELU (tanh) MLP, each added to the residual stream."""

        def __init__(self, dim: int, heads: int, ffn: int):
            super().__init__()
            self.heads = heads
            self.ln_1, self.ln_2 = torch.nn.LayerNorm(dim, eps=1e-5), torch.nn.LayerNorm(dim, eps=1e-5)
            self.attn = torch.nn.ModuleDict({"c_attn": Conv1D(dim, 3 * dim), "c_proj": Conv1D(dim, dim)})
            self.mlp = torch.nn.ModuleDict({"c_fc": Conv1D(dim, ffn), "c_proj": Conv1D(ffn, dim)})

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            B, T, D = x.shape
            q, k, v = self.attn["c_attn"](self.ln_1(x)).split(D, dim=2)
            q, k, v = (z.view(B, T, self.heads, D // self.heads).transpose(1, 2) for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, D)
            x = x + self.attn["c_proj"](a)
            return x + self.mlp["c_proj"](F.gelu(self.mlp["c_fc"](self.ln_2(x)), approximate="tanh"))

    class TorchGPT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = torch.nn.Embedding(shape["vocab"], shape["dim"]), torch.nn.Embedding(context,
                                                                                                      shape["dim"])
            self.h = torch.nn.ModuleList(Block(shape["dim"], shape["heads"], shape["ffn"])
                                         for _ in range(shape["layers"]))
            self.ln_f = torch.nn.LayerNorm(shape["dim"], eps=1e-5)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
            for block in self.h:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.T  # tied head, no bias

    return TorchGPT()


def hf_model(shape: dict, context: int, weights: dict) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers import logging as hf_logging

    hf_logging.set_verbosity_error()
    config = GPT2Config(vocab_size=shape["vocab"], n_positions=context, n_embd=shape["dim"], n_layer=shape["layers"],
                        n_head=shape["heads"], n_inner=shape["ffn"], activation_function="gelu_new",
                        layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=EOS_ID,
                        eos_token_id=EOS_ID, pad_token_id=PAD_ID, tie_word_embeddings=True)
    model = GPT2LMHeadModel(config)
    missing, unexpected = model.transformer.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"GPT-2 weights do not match: missing {missing}, unexpected {unexpected}")
    if model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr():
        raise RuntimeError("transformers' output layer is not tied to the token embedding")
    return model.eval()


# -- (a) training -------------------------------------------------------------------------------------------------


def training(args: argparse.Namespace, ours: Contender, theirs: Contender, shape: dict) -> None:
    import numpy as np

    state = ours.call("build", key="train", shape=shape, context=shape["context"])
    theirs.call("build", key="train", shape=shape, context=shape["context"], state=state, kind="train")
    for contender in (ours, theirs):
        contender.call("optimize", key="train", lr=args.lr)
    rng = np.random.default_rng(0)
    timed_turns = -(-args.steps // (TRAIN_BLOCK - 1))
    turns = [(args.warmup, False)] * (args.warmup > 0) + [(TRAIN_BLOCK, True)] * timed_turns
    batches = [rng.integers(0, shape["vocab"], (args.batch, shape["context"] + 1))
               for _ in range(sum(size for size, _ in turns))]
    steps = {"ours": ours, "torch": theirs}
    losses: dict[str, list[float]] = {name: [] for name in steps}
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    first = 0
    for size, timed in turns:
        for name, contender in steps.items():
            for i, ids in enumerate(batches[first:first + size]):
                loss, took = contender.call("train_step", key="train", ids=ids)
                losses[name].append(loss)
                if timed and i > 0:
                    seconds[name].append(took)
        first += size
    tokens = args.batch * shape["context"]
    speed = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    gap = abs(losses["ours"][0] - losses["torch"][0])
    print(f"(a) training: vocab {shape['vocab']}, dim {shape['dim']}, heads {shape['heads']}, layers {shape['layers']},"
          f" ffn {shape['ffn']}, context {shape['context']}, batch {args.batch}, random ids, Adam lr {args.lr:g},"
          f" dropout 0, {args.warmup} warm-up steps, then turns of {TRAIN_BLOCK} steps each, all but the first of a"
          f" turn timed ({len(seconds['ours'])} steps each; median step)")
    print(f"    loss at step 0: ours {losses['ours'][0]:.6f}, torch {losses['torch'][0]:.6f}, |diff| {gap:.1e}"
          f" ({'agree' if gap < 1e-4 else 'DIFFER'}); after step {len(batches)}: ours {losses['ours'][-1]:.6f},"
          f" torch {losses['torch'][-1]:.6f}")
    print()
    print("| training | tokens/s |")
    print("|---|---:|")
    for name, value in speed.items():
        print(f"| {name} | {value:,.0f} |")
    print(f"| ours / torch | **{speed['ours'] / speed['torch']:.2f}** |")
    print()


# -- (b) generation -----------------------------------------------------------------------------------------------


def first_difference(a: list[list[int]], b: list[list[int]]) -> str:
    for row, (x, y) in enumerate(zip(a, b)):
        if x != y:
            at = next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
            return f"no (row {row}, token {at})"
    return "yes"


def generation(args: argparse.Namespace, ours: Contender, theirs: Contender, label: str, shape: dict, context: int,
               batches: list[int]) -> list[str]:
    """Table rows of ours vs transformers at ``shape`` for each batch size."""
    import numpy as np

    state = ours.call("build", key=label, shape=shape, context=context)
    theirs.call("build", key=label, shape=shape, context=context, state=state, kind="generate")
    del state
    rng = np.random.default_rng(1)
    sides = {"ours": ours, "transformers": theirs}
    rows = []
    for batch in batches:
        # Ids from 4 up: not padding (0) nor end of text (3).
        prompts = rng.integers(4, shape["vocab"], (batch, args.prompt_tokens))
        # A warm-up run each, whose tokens are compared.
        outputs = {name: side.call("generate", key=label, prompts=prompts, new_tokens=args.new_tokens)[0]
                   for name, side in sides.items()}
        if any(len(ids) != args.new_tokens for out in outputs.values() for ids in out):
            raise RuntimeError("a contender did not generate exactly --new-tokens tokens")
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, side in sides.items():
                seconds[name].append(side.call("generate", key=label, prompts=prompts, new_tokens=args.new_tokens)[1])
        speed = {name: batch * args.new_tokens / statistics.median(s) for name, s in seconds.items()}
        rows.append(f"| {label} | {batch} | {speed['ours']:,.1f} | {speed['transformers']:,.1f} |"
                    f" **{speed['ours'] / speed['transformers']:.2f}** |"
                    f" {first_difference(outputs['ours'], outputs['transformers'])} |")
    return rows


# -- (c) perplexity -----------------------------------------------------------------------------------------------


def perplexity(ours: Contender, model: Path) -> None:
    """The default model's WikiText-2 test scores through the public API, or a line saying why there are none."""
    print("(c) WikiText-2 test perplexity of the default model")
    if not model.exists():
        print(f"    skipped: {model.relative_to(ROOT) if model.is_relative_to(ROOT) else model} does not exist"
              " (the default model is not trained yet)")
        return
    start = time.perf_counter()
    metrics = ours.call("perplexity", model=str(model), data=str(WIKITEXT_TEST))
    print(f"    {model.name} on {WIKITEXT_TEST.name} ({time.perf_counter() - start:.0f} s):")
    for key, value in metrics.items():
        print(f"    {key}: {value}")


def main() -> int:
    args = parse_args()
    ours, theirs = Contender(Ours, args.threads), Contender(Theirs, args.threads)
    try:
        print(f"threads={args.threads} each; ours ({ours.call('versions')}) and {theirs.call('versions')}, each in a"
              f" process of its own, taking turns; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')};"
              f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print()
        shape = {name: getattr(args, name) for name in ("vocab", "dim", "heads", "layers", "ffn", "context")}
        if not args.skip_training:
            trainer = Contender(OursTraining, args.threads)
            try:
                training(args, trainer, theirs, shape)
            finally:
                trainer.close()
        if not args.skip_generation:
            batches = [int(b) for b in args.gen_batches.split(",")]
            gen_context = max(args.gen_context, args.prompt_tokens + args.new_tokens)
            print(f"(b) generation: greedy, {args.prompt_tokens}-token random prompts, {args.new_tokens} new tokens,"
                  f" median of {args.repeats} runs, turn by turn; same greedy tokens = identical ids in every row")
            print()
            print("| shape | batch | ours tokens/s | transformers tokens/s | ours / transformers |"
                  " same greedy tokens |")
            print("|---|---:|---:|---:|---:|---|")
            label = f"default ({args.dim}d, {args.layers} layers, vocab {args.vocab}, context {gen_context})"
            for row in generation(args, ours, theirs, label, shape, gen_context, batches):
                print(row, flush=True)
            if not args.skip_gpt2_small:
                for row in generation(args, ours, theirs, "GPT-2 small (random weights)", GPT2_SMALL,
                                      GPT2_SMALL["context"], batches):
                    print(row, flush=True)
            print()
        if not args.skip_perplexity:
            perplexity(ours, args.model)
    finally:
        ours.close()
        theirs.close()
    # Other jobs' load slows ours and the peers alike only roughly: it is part of the record.
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
